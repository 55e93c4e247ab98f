package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/oapi-codegen/runtime"

	"github.com/hookd/hookd/gen"
)

// FuzzStrictJSONBody checks the request body decoder the validator uses, on
// any bytes, without a schema and with each request body schema of the API:
//   - it accepts exactly one JSON value with only white space around it
//     (json.Valid) that is valid UTF-8 and escapes no lone UTF-16
//     surrogate (those would decode with U+FFFD in their place), refusing
//     everything else with a ParseError;
//   - with a schema it also refuses, with a 400 INVALID_REQUEST naming the
//     member, exactly the objects holding a member that is not one of the
//     schema's properties but equals one ignoring case;
//   - what it accepts, bound the way the handlers bind it (encoding/json,
//     which matches member names ignoring case), gives the same request as
//     the validated value bound with exact names: the handler gets what the
//     validator checked.
func FuzzStrictJSONBody(f *testing.F) {
	for _, s := range []string{
		`{"endpoint_id":"ep_0123456789abcdef0123456789abcdef","payload":{"a":1}}`,
		`{"endpoint_id":"x","payload":{},"PAYLOAD":"not an object"}`,
		`{"payload":{},"idempotency_\u212aey":"kelvin sign"}`,
		`{"payload":{"PAYLOAD":1,"Payload":2}}`,
		`{"url":"https://hooks.example.com/x","URL":"https://10.0.0.1/x"}`,
		`{"message_ids":["0190a5b1-7c3e-7d4f-8a9b-0c1d2e3f4a5b"],"Message_IDs":[]}`,
		`{"mode":"test","Mode":"prod"}`,
		`{"a":1} xyz`,
		`{"a":1}{}`,
		` [1, 2.5e400, "\ud800", null, true] `,
		`"\ud800\udc00"`,
		"{\"a\":\"\xff\"}",
		"\ufeff{}",
		`{"a":`,
		``,
		strings.Repeat("[", 100) + strings.Repeat("]", 100),
	} {
		f.Add([]byte(s))
	}
	spec, err := gen.GetSpec()
	if err != nil {
		f.Fatal(err)
	}
	bodies := map[string]func() any{
		"SendRequest":           func() any { return new(gen.SendRequest) },
		"CreateEndpointRequest": func() any { return new(gen.CreateEndpointRequest) },
		"UpdateEndpointRequest": func() any { return new(gen.UpdateEndpointRequest) },
		"MessageIDList":         func() any { return new(gen.MessageIDList) },
		"CreateApiKeyRequest":   func() any { return new(gen.CreateApiKeyRequest) },
		"CreateExportRequest":   func() any { return new(gen.CreateExportRequest) },
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := strictJSONBody(bytes.NewReader(body), nil, nil, nil)
		var pe *openapi3filter.ParseError
		acceptable := json.Valid(body) && utf8.Valid(body) && loneSurrogate(body) < 0
		if (err == nil) != acceptable || (err != nil && !errors.As(err, &pe)) {
			t.Fatalf("%q: error %v, but json.Valid says %v, utf8.Valid %v, lone surrogate at %d",
				body, err, json.Valid(body), utf8.Valid(body), loneSurrogate(body))
		}
		if err != nil {
			return
		}
		for name, newBody := range bodies {
			schema := spec.Components.Schemas[name]
			v2, err := strictJSONBody(bytes.NewReader(body), nil, schema, nil)
			folded := foldedTopMember(body, schema.Value.Properties)
			if (err == nil) == (folded != "") {
				t.Fatalf("%s %q: error %v, but the member differing only in case is %q", name, body, err, folded)
			}
			if err != nil {
				var apiErr *Error
				if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest || apiErr.Code != "INVALID_REQUEST" ||
					apiErr.Details["field"] != "/"+folded {
					t.Fatalf("%s %q: error %#v does not name %q", name, body, err, folded)
				}
				continue
			}
			if !reflect.DeepEqual(v, v2) {
				t.Fatalf("%s %q: decodes as %#v without the schema and %#v with it", name, body, v, v2)
			}
			validated, handled := newBody(), newBody()
			if runtime.BindJSONValue(v, validated) != nil || json.Unmarshal(body, handled) != nil {
				continue // does not fit the request type; the validator refuses it
			}
			if a, b := canonical(t, validated), canonical(t, handled); !reflect.DeepEqual(a, b) {
				t.Fatalf("%s %q: the validator checked %v but the handler would get %v", name, body, a, b)
			}
		}
	})
}

// foldedTopMember returns a member name of the JSON object body that is not
// in props but equals one of them ignoring case, or "".
func foldedTopMember[T any](body []byte, props map[string]T) string {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return ""
	}
	best := ""
	for name := range top {
		if _, exact := props[name]; exact {
			continue
		}
		for prop := range props {
			if strings.EqualFold(name, prop) && (best == "" || name < best) {
				best = name
			}
		}
	}
	return best
}

// canonical is v as generic JSON, so two bindings compare by content (a
// json.RawMessage by its value, not its spelling).
func canonical(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
