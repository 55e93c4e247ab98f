// Package handlers implements hookd's HTTP API: the generated strict server
// interface (gen.StrictServerInterface), the Echo router that validates every
// request against the embedded openapi.yaml before a handler runs, API-key
// authentication, and the one place (errors.go) where errors become the
// API's error envelope.
//
// Handlers take and return generated types only; they never touch
// echo.Context. Expected failures come back from the store and the rule
// packages as sentinel errors, which handlers return unchanged; the error
// handler maps each to its status and code.
package handlers
