package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
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
// space, and refuses, with a 400 INVALID_REQUEST naming it, a member that
// differs only in case from a property of schema (see foldedMember).
func strictJSONBody(body io.Reader, _ http.Header, schema *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	dec := json.NewDecoder(body)
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: err}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: errTrailingData}
	}
	if name, prop, found := foldedMember(v, schema); found {
		return nil, invalid("/"+name, "case", fmt.Sprintf("request body member %q: member names are case-sensitive; the property is %q", name, prop))
	}
	return v, nil
}

// foldedMember finds, in v decoded for schema, an object member whose name
// is not a property of its object's schema but equals one (prop) under
// strings.EqualFold, the rule by which encoding/json matches struct fields.
// The validator takes such a member for an unknown one and checks nothing,
// but the handlers bind the body again with encoding/json, which takes it
// for the property: {"payload":{},"PAYLOAD":"x"} would be sent with the
// payload "x". Objects whose schema declares no properties (payloads,
// header maps) are not looked into.
func foldedMember(v any, schema *openapi3.SchemaRef) (name, prop string, found bool) {
	if schema == nil || schema.Value == nil {
		return "", "", false
	}
	s := schema.Value
	switch v := v.(type) {
	case map[string]any:
		for _, name := range slices.Sorted(maps.Keys(v)) {
			if p, ok := s.Properties[name]; ok {
				if inner, prop, found := foldedMember(v[name], p); found {
					return name + "/" + inner, prop, true
				}
				continue
			}
			for _, prop := range slices.Sorted(maps.Keys(s.Properties)) {
				if strings.EqualFold(name, prop) {
					return name, prop, true
				}
			}
		}
	case []any:
		for i, item := range v {
			if inner, prop, found := foldedMember(item, s.Items); found {
				return fmt.Sprint(i) + "/" + inner, prop, true
			}
		}
	}
	return "", "", false
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
