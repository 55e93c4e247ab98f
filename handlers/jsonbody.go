package handlers

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/labstack/echo/v4"
)

var configureOnce sync.Once

// configureValidator sets kin-openapi's process-wide registries once: JSON
// bodies with anything after the value (`{"a":1} xyz`), which the default
// decoder lets through, are refused; `format: uuid` is checked (RFC 9562,
// so UUIDv7 ids pass), so a malformed message id in a path answers 404
// like any malformed id.
func configureValidator() {
	configureOnce.Do(func() {
		openapi3filter.RegisterBodyDecoder("application/json", strictJSONBody)
		openapi3.DefineStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC9562))
	})
}

var errTrailingData = errors.New("unexpected data after the JSON value")

// strictJSONBody decodes exactly one JSON value (numbers kept as
// json.Number, as kin-openapi's own decoder does) followed only by white
// space.
func strictJSONBody(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	dec := json.NewDecoder(body)
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: err}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: errTrailingData}
	}
	return v, nil
}

// lowerMediaType lower-cases the media type of a request's Content-Type,
// which is case-insensitive (RFC 9110) and which the validator reads
// lower-cased, so that Echo's binder, which compares it exactly, binds every
// body the validator accepted rather than answering an undocumented 415.
func lowerMediaType(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header
		if ct := h.Get(echo.HeaderContentType); ct != "" {
			base, params, hasParams := strings.Cut(ct, ";")
			lower := strings.ToLower(strings.TrimSpace(base))
			if hasParams {
				lower += ";" + params
			}
			h.Set(echo.HeaderContentType, lower)
		}
		return next(c)
	}
}
