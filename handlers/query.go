package handlers

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
)

// maxNameEcho bounds how much of a bad parameter's name an error repeats.
const maxNameEcho = 64

// strictQuery refuses a request whose query string does not parse, before
// anything else reads it. Go's URL parsing drops such pairs silently, so
// `delete-all?endpoint_id=<id>%zz` would otherwise run without its filter
// and delete every message of the project.
func strictQuery(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if name, reason, bad := badQueryParam(c.Request().URL.RawQuery); bad {
			return &Error{Status: http.StatusBadRequest, Code: "INVALID_REQUEST",
				Message: fmt.Sprintf("query parameter %q does not parse: %s", name, reason),
				Details: map[string]any{"field": name, "rule": "syntax"}}
		}
		return next(c)
	}
}

// badQueryParam reports the first pair of raw (a URL's query, without "?")
// that url.ParseQuery would drop: its name as far as it can be read, and
// why.
func badQueryParam(raw string) (name, reason string, bad bool) {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		key, value, _ := strings.Cut(pair, "=")
		n, err := url.QueryUnescape(key)
		if err != nil {
			return echoName(key), "bad %-escape in the name", true
		}
		if strings.Contains(pair, ";") {
			return echoName(n), "';' does not separate parameters; use '&' (or escape it as %3B)", true
		}
		if _, err := url.QueryUnescape(value); err != nil {
			return echoName(n), "bad %-escape in the value", true
		}
	}
	return "", "", false
}

// echoName shortens s to maxNameEcho runes for an error message.
func echoName(s string) string {
	if r := []rune(s); len(r) > maxNameEcho {
		return string(r[:maxNameEcho]) + "…"
	}
	return s
}
