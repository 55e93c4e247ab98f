//go:build tools

// This file pins the code generator's version in go.mod, so `make generate`
// gives the same gen/ on every machine.
package hookd

import _ "github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen"
