package handlers

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDecodeSendTakesPlainBodies: the fast path is taken for the bodies
// clients send (the fuzz target below checks only what it decodes), and it
// knows every member of the request.
func TestDecodeSendTakesPlainBodies(t *testing.T) {
	for _, b := range [][]byte{[]byte(sendSeeds[0]), []byte(sendSeeds[1]), benchSendBody()} {
		_, ok := decodeSend(b)
		require.True(t, ok, "%s", b)
	}
	// A member the spec adds reaches decodeSend's default case, which
	// leaves the body to encoding/json; this says to decode it here too.
	require.ElementsMatch(t, []string{"endpoint_id", "payload", "headers", "idempotency_key", "ordering_key", "retention_hours"}, sendFields,
		"gen.SendRequest's members are the ones decodeSend decodes")

	for _, b := range [][]byte{[]byte(sendBatchSeeds[0]), []byte(sendBatchSeeds[1]), benchSendBatchBody(100)} {
		_, ok := decodeSendBatch(b)
		require.True(t, ok, "%s", b)
	}
	r, ok := decodeSendBatch(benchSendBatchBody(100))
	require.True(t, ok)
	require.Len(t, r.Messages, 100)
	for _, m := range r.Messages {
		// Each payload points into the body: an append must not reach the next.
		require.Equal(t, len(m.Payload), cap(m.Payload))
	}
	require.ElementsMatch(t, []string{"messages"}, sendBatchFields, "gen.SendBatchRequest's members are the ones decodeSendBatch decodes")
	// What it leaves to encoding/json.
	for _, b := range []string{`{"messages":null}`, `{"messages":[null]}`, `{"messages":[{}],"messages":[{}]}`, `{"Messages":[]}`,
		`{"messages":[{"Payload":{}}]}`, `{"messages":[{"payload":[1]}]}`, `[]`, `{"messages":[]} x`} {
		_, ok := decodeSendBatch([]byte(b))
		require.False(t, ok, "%s", b)
	}
}

// sendSeeds are send bodies, plain and tricky.
var sendSeeds = []string{
	`{"endpoint_id":"ep_1","payload":{"a":[1,{"b":null}]}}`,
	` {"endpoint_id" : "ep_1" , "payload" : { } , "headers" : {"X-A":"b"}, "idempotency_key":"k", "ordering_key":"o", "retention_hours": 24, "other": [1] } `,
	`{"payload":{},"payload":{"a":1}}`, `{"headers":{"A":"1"},"headers":{"B":"2"}}`, `{"Payload":{}}`, `{"PAYLOAD":{"a":1},"payload":{}}`,
	`{"retention_hours":1.5}`, `{"retention_hours":1e2}`, `{"retention_hours":-0}`, `{"retention_hours":99999999999999999999}`,
	`{"endpoint_id":"a\"b"}`, `{"endpoint_id":null}`, `{"idempotency_key":null}`, `{"payload":null}`, `{"payload":[1]}`,
	`{"idempotency_\u212aey":"k"}`, `{"\u0070ayload":{}}`, `{"endpoint_id":1}`, `[]`, `{"a":1} x`, `{`, "{\"endpoint_id\":\"\xff\"}",
}

// FuzzDecodeSend: on any bytes, decodeSend either leaves the body to
// encoding/json or gives exactly the request encoding/json decodes (as
// Echo's binder does) from it.
func FuzzDecodeSend(f *testing.F) {
	fuzzAgainstEncodingJSON(f, sendSeeds, decodeSend)
}

// fuzzAgainstEncodingJSON: on any bytes, decode either says no (!ok) or
// gives exactly what encoding/json decodes from them.
func fuzzAgainstEncodingJSON[T any](f *testing.F, seeds []string, decode func([]byte) (T, bool)) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := decode(b)
		if !ok {
			return
		}
		var want T
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("%q: decoded what encoding/json refuses (%v)", b, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: decoded %#v, encoding/json %#v", b, got, want)
		}
	})
}

// sendBatchSeeds are batch send bodies, plain and tricky, and every send
// seed as the one message of a batch.
var sendBatchSeeds = append([]string{
	`{"messages":[{"endpoint_id":"ep_1","payload":{"a":1}},{"endpoint_id":"ep_2","payload":{},"idempotency_key":"k"}]}`,
	` { "other" : {"messages":1}, "messages" : [ ] } `,
	`{"messages":null}`, `{"messages":[null]}`, `{"messages":[{"endpoint_id":"a"}],"messages":[{"payload":{}}]}`,
	`{"Messages":[{}]}`, `{"messages":{}}`, `{"messages":[1]}`, `{"messages":[{"headers":{"A":"1"},"headers":{"B":"2"}}]}`,
	`{"m\u0065ssages":[]}`, `{"messag\u00e9s":[]}`, `{"messages":[{}]`,
}, func() []string {
	var out []string
	for _, s := range sendSeeds {
		out = append(out, `{"messages":[`+s+`]}`)
	}
	return out
}()...)

// FuzzDecodeSendBatch: on any bytes, decodeSendBatch either leaves the
// body to encoding/json or gives exactly the request encoding/json decodes
// from it.
func FuzzDecodeSendBatch(f *testing.F) {
	fuzzAgainstEncodingJSON(f, sendBatchSeeds, decodeSendBatch)
}
