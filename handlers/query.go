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

// rawQueryKey holds the query string as the client sent it.
const rawQueryKey = "hookd.rawQuery"

// keepRawQuery records the query string as received, before the validator
// rewrites the request from what it could parse.
func keepRawQuery(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Set(rawQueryKey, c.Request().URL.RawQuery)
		return next(c)
	}
}

// strictQuery refuses a request whose query string (as keepRawQuery saw it)
// does not parse, before a handler reads it. Go's URL parsing drops such
// pairs silently, so `delete-all?endpoint_id=<id>%zz` would otherwise run
// without its filter and delete every message of the project.
func strictQuery(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		raw, ok := c.Get(rawQueryKey).(string)
		if !ok {
			raw = c.Request().URL.RawQuery
		}
		if name, reason, bad := badQueryParam(raw); bad {
			msg := fmt.Sprintf("query parameter %q does not parse: %s", name, reason)
			if name == "" {
				msg = "the query string does not parse: " + reason
			}
			return &Error{Status: http.StatusBadRequest, Code: "INVALID_REQUEST", Message: msg,
				Details: map[string]any{"field": name, "rule": "syntax"}}
		}
		return next(c)
	}
}

// badQueryParam reports whether url.ParseQuery refuses raw (a URL's query,
// without "?"), in which case Go would drop part or all of it, with the
// name of the first pair it would drop as far as it can be read (none when
// the whole is refused, as for too many parameters) and why.
func badQueryParam(raw string) (name, reason string, bad bool) {
	_, err := url.ParseQuery(raw)
	if err == nil {
		return "", "", false
	}
	for rest := raw; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if n, reason, bad := badPair(pair); bad {
			return n, reason, true
		}
	}
	// Every pair parses, yet the whole does not (too many parameters):
	// Go would then read none of them.
	return "", err.Error(), true
}

// badPair reports why url.ParseQuery would drop one name=value pair.
func badPair(pair string) (name, reason string, bad bool) {
	if pair == "" {
		return "", "", false
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
	return "", "", false
}

// echoName shortens s to maxNameEcho runes for an error message.
func echoName(s string) string {
	if r := []rune(s); len(r) > maxNameEcho {
		return string(r[:maxNameEcho]) + "…"
	}
	return s
}
