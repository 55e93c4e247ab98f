package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/hookd/hookd/gen"
)

// BenchmarkSendBodyValidation measures the validator's work on a send body
// with a 1 KB payload of 40 members: decoded as the validator decodes it
// (its syntax checked by jsonValid, the payload decoded only as far as its
// type) or in full by encoding/json, then checked against the schema.
func BenchmarkSendBodyValidation(b *testing.B) {
	spec, err := gen.GetSpec()
	if err != nil {
		b.Fatal(err)
	}
	schema := spec.Components.Schemas["SendRequest"]
	body := benchSendBody()
	for _, c := range []struct {
		name   string
		decode func([]byte, *openapi3.SchemaRef) (any, error)
	}{
		{"ForItsSchema", func(body []byte, schema *openapi3.SchemaRef) (any, error) {
			return strictJSONBody(bytes.NewReader(body), nil, schema, nil)
		}},
		{"InFullWithEncodingJSON", func(body []byte, _ *openapi3.SchemaRef) (any, error) {
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			var v any
			if err := dec.Decode(&v); err != nil {
				return nil, err
			}
			_, err := dec.Token()
			if !errors.Is(err, io.EOF) {
				return nil, errTrailingData
			}
			return v, nil
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				v, err := c.decode(body, schema)
				if err != nil {
					b.Fatal(err)
				}
				if err := schema.Value.VisitJSON(v, openapi3.VisitAsRequest()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchSendBody is a send body with a 1 KB payload of 40 members.
func benchSendBody() []byte {
	var members []string
	for i := range 40 {
		members = append(members, `"field_`+strings.Repeat("x", 3)+string(rune('a'+i%26))+`_`+string(rune('a'+i/26))+`":"`+strings.Repeat("v", 12)+`"`)
	}
	return []byte(`{"endpoint_id":"ep_0123456789abcdef0123456789abcdef","payload":{` + strings.Join(members, ",") + `},"idempotency_key":"k-1"}`)
}

// BenchmarkSendBodyBinding measures the handler's decode of the same body
// into its request type: decodeSend, or encoding/json as Echo's binder
// decodes it.
func BenchmarkSendBodyBinding(b *testing.B) {
	benchBinding(b, "DecodeSend", benchSendBody(), decodeSend)
}

// benchBinding measures decode against encoding/json, as Echo's binder
// decodes, on body.
func benchBinding[T any](b *testing.B, name string, body []byte, decode func([]byte) (T, bool)) {
	b.Run(name, func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, ok := decode(body); !ok {
				b.Fatal("not decoded")
			}
		}
	})
	b.Run("EncodingJSON", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var r T
			if err := json.NewDecoder(bytes.NewReader(body)).Decode(&r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchSendBatchBody is a batch send body of n sends like benchSendBody's.
func benchSendBatchBody(n int) []byte {
	items := make([]string, n)
	for i := range items {
		items[i] = string(benchSendBody())
	}
	return []byte(`{"messages":[` + strings.Join(items, ",") + `]}`)
}

// BenchmarkSendBatchBodyBinding measures the handler's decode of a batch
// of 100 such sends: decodeSendBatch, or encoding/json as Echo's binder
// decodes it.
func BenchmarkSendBatchBodyBinding(b *testing.B) {
	benchBinding(b, "DecodeSendBatch", benchSendBatchBody(100), decodeSendBatch)
}
