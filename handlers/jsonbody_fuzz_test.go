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

	"github.com/getkin/kin-openapi/openapi3"
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
//   - with a schema it decodes what it accepts as encoding/json does, but
//     for the objects the schema allows to be any object (payloads), which
//     it decodes as empty objects unless the schema sets defaults (which
//     the validator writes back into the body);
//   - what it accepts, bound the way the handlers bind it (encoding/json,
//     which matches member names ignoring case), gives the same request as
//     the validated value bound with exact names, but for those objects,
//     which are objects: the handler gets what the validator checked.
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
		"SendRequest":            func() any { return new(gen.SendRequest) },
		"CreateEndpointRequest":  func() any { return new(gen.CreateEndpointRequest) },
		"UpdateEndpointRequest":  func() any { return new(gen.UpdateEndpointRequest) },
		"MessageIDList":          func() any { return new(gen.MessageIDList) },
		"SendBatchRequest":       func() any { return new(gen.SendBatchRequest) },
		"PublishEventRequest":    func() any { return new(gen.PublishEventRequest) },
		"CreateApiKeyRequest":    func() any { return new(gen.CreateApiKeyRequest) },
		"CreateExportRequest":    func() any { return new(gen.CreateExportRequest) },
		"CreateEventTypeRequest": func() any { return new(gen.CreateEventTypeRequest) },
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
			want := v
			if !setsDefaults(schema) {
				want = blankFreeForm(v, schema)
			}
			if !reflect.DeepEqual(want, v2) {
				t.Fatalf("%s %q: decodes as %#v with the schema, not %#v", name, body, v2, want)
			}
			// The validator's verdict on what it decoded is its verdict on
			// the whole body.
			full, err := strictJSONBody(bytes.NewReader(body), nil, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			checked, err := strictJSONBody(bytes.NewReader(body), nil, schema, nil)
			if err != nil {
				t.Fatal(err)
			}
			fullErr := schema.Value.VisitJSON(full, openapi3.VisitAsRequest(), openapi3.MultiErrors())
			checkedErr := schema.Value.VisitJSON(checked, openapi3.VisitAsRequest(), openapi3.MultiErrors())
			if (fullErr == nil) != (checkedErr == nil) {
				t.Fatalf("%s %q: the schema says %v of the whole body, %v of what the validator decoded", name, body, fullErr, checkedErr)
			}
			validated, handled := newBody(), newBody()
			if runtime.BindJSONValue(v2, validated) != nil || json.Unmarshal(body, handled) != nil {
				continue // does not fit the request type; the validator refuses it
			}
			handledValue := canonical(t, handled)
			if !setsDefaults(schema) {
				handledValue = blankFreeForm(handledValue, schema)
			}
			if a, b := canonical(t, validated), handledValue; !reflect.DeepEqual(a, b) {
				t.Fatalf("%s %q: the validator checked %v but the handler would get %v", name, body, a, b)
			}
		}
	})
}

// blankFreeForm is v, decoded for schema, with every object that the
// schema allows to be any object replaced by an empty one.
func blankFreeForm(v any, ref *openapi3.SchemaRef) any {
	if ref == nil || ref.Value == nil {
		return v
	}
	switch v := v.(type) {
	case map[string]any:
		if freeForm(ref.Value) {
			return map[string]any{}
		}
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = blankFreeForm(x, ref.Value.Properties[k])
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = blankFreeForm(x, ref.Value.Items)
		}
		return out
	}
	return v
}

// TestPayloadsAreFreeForm: the payload of a send, of each item of a batch
// and of a published event is decoded for validation only as far as its
// type; the header maps beside them are decoded in full.
func TestPayloadsAreFreeForm(t *testing.T) {
	spec, err := gen.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	schemas := spec.Components.Schemas
	for _, name := range []string{"SendRequest", "PublishEventRequest", "SendBatchRequest"} {
		if setsDefaults(schemas[name]) {
			t.Errorf("%s sets defaults: its payloads would be decoded in full", name)
		}
	}
	if !setsDefaults(schemas["CreateEventTypeRequest"]) {
		t.Error("CreateEventTypeRequest sets a default (archived)")
	}
	for _, name := range []string{"SendRequest", "PublishEventRequest"} {
		if !freeForm(schemas[name].Value.Properties["payload"].Value) {
			t.Errorf("%s's payload is not free-form", name)
		}
	}
	if !freeForm(schemas["SendBatchRequest"].Value.Properties["messages"].Value.Items.Value.Properties["payload"].Value) {
		t.Error("a batch item's payload is not free-form")
	}
	if freeForm(schemas["SendRequest"].Value.Properties["headers"].Value) {
		t.Error("headers have rules of their own")
	}
	v, err := valueFor(json.RawMessage(`{"endpoint_id":"ep_1","payload":{"a":[1,2,{"b":null}]},"headers":{"X-A":"b"}}`), schemas["SendRequest"])
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"endpoint_id": "ep_1", "payload": map[string]any{}, "headers": map[string]any{"X-A": "b"}}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("decoded as %#v, want %#v", v, want)
	}
	v, err = valueFor(json.RawMessage(`{"payload":"not an object","retention_hours":1.5e1}`), schemas["SendRequest"])
	if err != nil {
		t.Fatal(err)
	}
	want = map[string]any{"payload": "not an object", "retention_hours": json.Number("1.5e1")}
	if !reflect.DeepEqual(v, want) {
		t.Errorf("decoded as %#v, want %#v: what is not an object is decoded in full", v, want)
	}
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

// TestOnlyShapes: a member of an object schema is decoded only as far as
// its type when nothing beside the properties could apply to it.
func TestOnlyShapes(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData([]byte(`
openapi: 3.0.3
info: {title: t, version: "1"}
paths: {}
components:
  schemas:
    Plain:
      type: object
      required: [payload]
      properties:
        payload: {type: object}
    WithAllOf:
      type: object
      properties:
        payload: {type: object}
      allOf:
        - properties:
            payload: {type: object, required: [order_id]}
    WithNot:
      type: object
      properties:
        payload: {type: object}
      not:
        properties:
          payload: {type: object, required: [forbidden]}
    UniqueItems:
      type: array
      uniqueItems: true
      items:
        type: object
        properties:
          payload: {type: object}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		schema, body string
	}{
		{"Plain", `{"payload":{"order_id":1}}`},
		{"WithAllOf", `{"payload":{"order_id":1}}`},
		{"WithAllOf", `{"payload":{"other":1}}`},
		{"WithNot", `{"payload":{"forbidden":1}}`},
		{"WithNot", `{"payload":{"allowed":1}}`},
		{"UniqueItems", `[{"payload":{"a":1}},{"payload":{"a":2}}]`},
		{"UniqueItems", `[{"payload":{"a":1}},{"payload":{"a":1}}]`},
	} {
		schema := doc.Components.Schemas[c.schema]
		full, err := decodeAll(json.RawMessage(c.body))
		if err != nil {
			t.Fatal(err)
		}
		v, err := valueFor(json.RawMessage(c.body), schema)
		if err != nil {
			t.Fatal(err)
		}
		fullErr, vErr := schema.Value.VisitJSON(full, openapi3.VisitAsRequest()), schema.Value.VisitJSON(v, openapi3.VisitAsRequest())
		if (fullErr == nil) != (vErr == nil) {
			t.Errorf("%s %s: %v on the whole body, %v on what valueFor decoded", c.schema, c.body, fullErr, vErr)
		}
	}
	if !onlyShapes(doc.Components.Schemas["Plain"].Value) || onlyShapes(doc.Components.Schemas["WithAllOf"].Value) ||
		onlyShapes(doc.Components.Schemas["UniqueItems"].Value) {
		t.Error("onlyShapes misjudges")
	}
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
