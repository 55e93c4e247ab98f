package handlers

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
)

var strictJSONOnce sync.Once

// useStrictJSON makes the validator refuse JSON bodies with anything after
// the value (`{"a":1} xyz`), which the default decoder lets through. The
// registry is process-wide, so this runs once.
func useStrictJSON() {
	strictJSONOnce.Do(func() {
		openapi3filter.RegisterBodyDecoder("application/json", strictJSONBody)
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
