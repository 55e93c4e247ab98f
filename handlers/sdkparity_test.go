package handlers_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// The shapes below are what HookBridge's official SDKs decode from each
// outbound answer (hookbridge-go v1.5.0 types.go; hookbridge-php reads the
// same fields with strict PHP types; hookbridge-cli reads GET /v1/projects).
// They are written from those SDKs' declarations, not from openapi.yaml, so
// a spec change that an SDK would fail on fails here: a field it needs
// disappears, a whole-number field becomes fractional, a time stops being
// RFC 3339, a non-null field becomes null.

// jkind is the JSON type an SDK field decodes from.
type jkind int

const (
	jString jkind = iota
	jInt          // a whole number: Go int / PHP int refuse a fraction
	jNumber       // any number (float64)
	jBool
	jTime      // an RFC 3339 string (Go time.Time)
	jStringMap // an object of strings (map[string]string)
	jStrings   // an array of strings
	jObject    // an object with its own shape
	jObjects   // an array of objects with a shape
	jAny       // present, any JSON
)

// sdkField is one field an SDK reads. Optional fields (Go pointers with
// omitempty, PHP `?? null`) may be absent or null; the others must be
// present and non-null.
type sdkField struct {
	name     string
	kind     jkind
	optional bool
	sub      sdkShape
}

type sdkShape []sdkField

func must(name string, k jkind) sdkField { return sdkField{name: name, kind: k} }
func maybe(name string, k jkind) sdkField {
	return sdkField{name: name, kind: k, optional: true}
}
func object(name string, s sdkShape) sdkField { return sdkField{name: name, kind: jObject, sub: s} }
func objects(name string, s sdkShape) sdkField {
	return sdkField{name: name, kind: jObjects, sub: s}
}

// checkShape reports every way v breaks s, with JSON paths.
func checkShape(path string, v any, s sdkShape) []string {
	obj, ok := v.(map[string]any)
	if !ok {
		return []string{fmt.Sprintf("%s: want an object, got %T", path, v)}
	}
	var bad []string
	for _, f := range s {
		p := path + "." + f.name
		val, present := obj[f.name]
		if !present || val == nil {
			if !f.optional {
				bad = append(bad, p+": missing or null")
			}
			continue
		}
		bad = append(bad, checkKind(p, val, f)...)
	}
	return bad
}

func checkKind(p string, val any, f sdkField) []string {
	wrong := func() []string { return []string{fmt.Sprintf("%s: %v is not of the SDK's type %d", p, val, f.kind)} }
	switch f.kind {
	case jString:
		if _, ok := val.(string); !ok {
			return wrong()
		}
	case jInt:
		n, ok := val.(json.Number)
		if !ok || strings.ContainsAny(n.String(), ".eE") {
			return wrong()
		}
	case jNumber:
		if _, ok := val.(json.Number); !ok {
			return wrong()
		}
	case jBool:
		if _, ok := val.(bool); !ok {
			return wrong()
		}
	case jTime:
		s, ok := val.(string)
		if !ok {
			return wrong()
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return wrong()
		}
	case jStringMap:
		m, ok := val.(map[string]any)
		if !ok {
			return wrong()
		}
		for k, x := range m {
			if _, ok := x.(string); !ok {
				return []string{fmt.Sprintf("%s.%s: %v is not a string", p, k, x)}
			}
		}
	case jStrings:
		a, ok := val.([]any)
		if !ok {
			return wrong()
		}
		for i, x := range a {
			if _, ok := x.(string); !ok {
				return []string{fmt.Sprintf("%s[%d]: %v is not a string", p, i, x)}
			}
		}
	case jObject:
		return checkShape(p, val, f.sub)
	case jObjects:
		a, ok := val.([]any)
		if !ok {
			return wrong()
		}
		var bad []string
		for i, x := range a {
			bad = append(bad, checkShape(fmt.Sprintf("%s[%d]", p, i), x, f.sub)...)
		}
		return bad
	}
	return nil
}

// The SDKs' types, field by field.
var (
	sdkMeta     = sdkShape{must("request_id", jString)}
	sdkPageMeta = sdkShape{must("request_id", jString), must("has_more", jBool), maybe("next_cursor", jString)}
	sdkSend     = sdkShape{must("message_id", jString), must("status", jString)}
	sdkMessage  = sdkShape{
		must("id", jString), must("project_id", jString), must("endpoint_id", jString), must("status", jString),
		must("attempt_count", jInt), must("replay_count", jInt), must("content_type", jString), must("size_bytes", jInt),
		must("payload_sha256", jString), must("created_at", jTime), must("updated_at", jTime),
		maybe("idempotency_key", jString), maybe("next_attempt_at", jTime), maybe("last_error", jString),
		maybe("response_status", jInt), maybe("response_latency_ms", jInt), maybe("deleted_at", jTime),
	}
	sdkSummary = sdkShape{
		must("message_id", jString), must("endpoint", jString), must("status", jString), must("attempt_count", jInt),
		must("created_at", jTime), maybe("delivered_at", jTime), maybe("response_status", jInt),
		maybe("response_latency_ms", jInt), maybe("last_error", jString), maybe("deleted_at", jTime),
	}
	sdkDLQMessage = sdkShape{
		must("message_id", jString), must("endpoint", jString), must("attempt_count", jInt),
		maybe("last_error", jString), must("created_at", jTime), must("failed_at", jTime),
	}
	sdkMetrics = sdkShape{
		must("window", jString), must("total_messages", jInt), must("succeeded", jInt), must("failed", jInt),
		must("retries", jInt), must("success_rate", jNumber), must("avg_latency_ms", jInt),
	}
	sdkTimeseries = sdkShape{must("window", jString), objects("buckets", sdkShape{
		must("timestamp", jTime), must("succeeded", jInt), must("failed", jInt), must("retrying", jInt),
		must("total", jInt), must("avg_latency_ms", jInt),
	})}
	sdkAPIKey = sdkShape{
		must("key_id", jString), maybe("label", jString), must("prefix", jString), must("created_at", jTime),
		maybe("last_used_at", jTime),
	}
	sdkAPIKeyCreated = sdkShape{
		must("key_id", jString), must("key", jString), maybe("label", jString), must("prefix", jString),
		must("created_at", jTime),
	}
	sdkReplay    = sdkShape{must("message_id", jString), must("status", jString)}
	sdkReplayAll = sdkShape{must("replayed", jInt), must("failed", jInt), must("stuck", jInt),
		maybe("replayed_message_ids", jStrings), maybe("stuck_message_ids", jStrings)}
	sdkReplayBatch = sdkShape{must("replayed", jInt), must("failed", jInt), must("stuck", jInt),
		objects("results", sdkShape{must("message_id", jString), must("status", jString), maybe("error", jString)})}
	sdkEndpoint = sdkShape{
		must("id", jString), must("url", jString), maybe("description", jString), maybe("rate_limit_rps", jInt),
		maybe("burst", jInt), maybe("headers", jStringMap), must("paused", jBool), must("created_at", jTime),
		must("updated_at", jTime),
	}
	sdkEndpointSummary = sdkShape{must("id", jString), must("url", jString), maybe("description", jString),
		must("paused", jBool), must("created_at", jTime)}
	sdkEndpointCreated = sdkShape{
		must("id", jString), must("url", jString), maybe("description", jString), must("signing_key_id", jString),
		must("signing_secret", jString), must("key_hint", jString), must("created_at", jTime),
	}
	// PATCH: the Go SDK reads {id, updated}, the PHP SDK the endpoint.
	sdkEndpointUpdated = append(sdkShape{must("updated", jBool)}, sdkEndpoint...)
	sdkToggle          = sdkShape{must("id", jString), maybe("paused", jBool), maybe("deleted", jBool), maybe("messages_requeued", jInt)}
	sdkSigningKey      = sdkShape{must("id", jString), must("key_hint", jString), must("created_at", jTime)}
	sdkKeyCreated      = sdkShape{must("id", jString), must("signing_secret", jString), must("key_hint", jString), must("created_at", jTime)}
	sdkAttempt         = sdkShape{
		must("id", jString), must("attempt_no", jInt), must("created_at", jTime),
		maybe("response_status", jInt), maybe("response_latency_ms", jInt), maybe("processing_ms", jInt),
		maybe("error_text", jString), maybe("response_headers", jStringMap), maybe("retry_type", jString),
		maybe("retry_after_seconds", jInt), maybe("resolved_ip", jString), maybe("request_headers", jStringMap),
		maybe("dns_ms", jInt), maybe("tcp_connect_ms", jInt), maybe("tls_handshake_ms", jInt), maybe("ttfb_ms", jInt),
		maybe("transfer_ms", jInt), maybe("conn_reused", jBool), maybe("response_body_url", jString),
		maybe("response_body_truncated", jBool),
	}
	sdkExport = sdkShape{
		must("id", jString), must("project_id", jString), must("status", jString),
		must("filter_start_time", jTime), must("filter_end_time", jTime), maybe("filter_status", jString),
		maybe("filter_endpoint_id", jString), maybe("row_count", jInt), maybe("file_size_bytes", jInt),
		maybe("error_message", jString), maybe("started_at", jTime), maybe("completed_at", jTime),
		maybe("expires_at", jTime), must("created_at", jTime),
	}
	sdkDeleted     = sdkShape{must("message_id", jString), must("deleted_at", jTime), must("already_deleted", jBool)}
	sdkDeleteBatch = sdkShape{
		objects("results", sdkShape{must("message_id", jString), must("outcome", jString), maybe("deleted_at", jTime)}),
		must("deleted_count", jInt), must("already_deleted_count", jInt), must("not_found_count", jInt),
	}
	sdkDeleteAll = sdkShape{must("deleted", jInt), must("deleted_message_ids", jStrings), maybe("error", jAny)}
	sdkProject   = sdkShape{must("id", jString), must("name", jString)}
)

// data wraps a data shape in the success envelope.
func data(s sdkShape) sdkShape { return sdkShape{object("data", s), object("meta", sdkMeta)} }

// dataList is a list in data with page meta.
func dataList(s sdkShape, m sdkShape) sdkShape {
	return sdkShape{objects("data", s), object("meta", m)}
}

// sdkCall sends one request and checks the answer's status and its shape.
func (e *env) sdkCall(t *testing.T, method, path, body string, wantStatus int, shape sdkShape) map[string]any {
	t.Helper()
	ct := ""
	if body != "" {
		ct = "application/json"
	}
	status, _, raw := e.do(method, path, e.a.key, ct, []byte(body))
	require.Equal(t, wantStatus, status, string(raw))
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v map[string]any
	require.NoError(t, dec.Decode(&v), string(raw))
	require.Empty(t, checkShape("$", v, shape), string(raw))
	return v
}

func str(v any, path ...string) string {
	for _, p := range path {
		v = v.(map[string]any)[p]
	}
	return v.(string)
}

// TestSDKShapes calls every outbound operation the way HookBridge's SDKs
// do and checks each answer against the SDKs' types.
func TestSDKShapes(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, slowRetries(), func(t *testing.T, e *env) {
		ok := newReceiver(t, nil)
		failing := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
		gone := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) })
		// A port nothing listens on: attempts get no answer.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		deadURL := "http://" + l.Addr().String() + "/dead"
		require.NoError(t, l.Close())

		var ep, epFail, epGone, epDead string
		t.Run("CreateEndpoint", func(t *testing.T) {
			v := e.sdkCall(t, http.MethodPost, "/v1/endpoints", `{"url":"`+ok.url("/ok")+`","headers":{"X-Tenant":"acme"}}`, http.StatusCreated, data(sdkEndpointCreated))
			ep = str(v, "data", "id")
			epFail = str(e.sdkCall(t, http.MethodPost, "/v1/endpoints", `{"url":"`+failing.url("/f")+`"}`, http.StatusCreated, data(sdkEndpointCreated)), "data", "id")
			epGone = str(e.sdkCall(t, http.MethodPost, "/v1/endpoints", `{"url":"`+gone.url("/g")+`"}`, http.StatusCreated, data(sdkEndpointCreated)), "data", "id")
			epDead = str(e.sdkCall(t, http.MethodPost, "/v1/endpoints", `{"url":"`+deadURL+`"}`, http.StatusCreated, data(sdkEndpointCreated)), "data", "id")
		})
		t.Run("Endpoints", func(t *testing.T) {
			e.sdkCall(t, http.MethodGet, "/v1/endpoints?limit=2", "", http.StatusOK, dataList(sdkEndpointSummary, sdkPageMeta))
			e.sdkCall(t, http.MethodGet, "/v1/endpoints/"+ep, "", http.StatusOK, data(sdkEndpoint))
			v := e.sdkCall(t, http.MethodPatch, "/v1/endpoints/"+ep, `{"description":"orders"}`, http.StatusOK, data(sdkEndpointUpdated))
			require.Equal(t, "orders", str(v, "data", "description"))
			require.Equal(t, ok.url("/ok"), str(v, "data", "url"))
			e.sdkCall(t, http.MethodPost, "/v1/endpoints/"+epGone+"/pause", "", http.StatusOK, data(sdkToggle))
			e.sdkCall(t, http.MethodPost, "/v1/endpoints/"+epGone+"/resume", "", http.StatusOK, data(sdkToggle))
		})
		t.Run("SigningKeys", func(t *testing.T) {
			v := e.sdkCall(t, http.MethodPost, "/v1/endpoints/"+ep+"/signing-keys", "", http.StatusCreated, data(sdkKeyCreated))
			e.sdkCall(t, http.MethodGet, "/v1/endpoints/"+ep+"/signing-keys", "", http.StatusOK, dataList(sdkSigningKey, sdkMeta))
			status, _, _ := e.do(http.MethodDelete, "/v1/endpoints/"+ep+"/signing-keys/"+str(v, "data", "id"), e.a.key, "", nil)
			require.Equal(t, http.StatusNoContent, status)
			e.sdkCall(t, http.MethodPost, "/v1/endpoints/"+ep+"/rotate-secret", "", http.StatusCreated, data(sdkKeyCreated))
		})

		send := func(t *testing.T, endpoint string, n int) string {
			v := e.sdkCall(t, http.MethodPost, "/v1/webhooks/send", fmt.Sprintf(`{"endpoint_id":"%s","payload":{"n":%d}}`, endpoint, n), http.StatusAccepted, data(sdkSend))
			return str(v, "data", "message_id")
		}
		var delivered, retrying, dead, noAnswer string
		t.Run("Send", func(t *testing.T) {
			delivered = send(t, ep, 1)
			retrying = send(t, epFail, 2)
			dead = send(t, epGone, 3)
			noAnswer = send(t, epDead, 4)
			e.waitStatus(uuid.MustParse(delivered), "succeeded", 10*time.Second)
			e.waitStatus(uuid.MustParse(retrying), "pending_retry", 10*time.Second)
			e.waitStatus(uuid.MustParse(dead), "failed_permanent", 10*time.Second)
			e.waitStatus(uuid.MustParse(noAnswer), "pending_retry", 10*time.Second)
		})
		t.Run("Message", func(t *testing.T) {
			for _, id := range []string{delivered, retrying, dead, noAnswer} {
				e.sdkCall(t, http.MethodGet, "/v1/messages/"+id, "", http.StatusOK, data(sdkMessage))
			}
			v := e.sdkCall(t, http.MethodGet, "/v1/messages/"+noAnswer, "", http.StatusOK, data(sdkMessage))
			require.Nil(t, v["data"].(map[string]any)["response_latency_ms"], "no answer, no latency")
		})
		t.Run("Attempts", func(t *testing.T) {
			attempts := sdkShape{objects("data", sdkAttempt), object("meta", sdkShape{must("request_id", jString), must("has_more", jBool)})}
			for _, id := range []string{delivered, retrying, dead, noAnswer} {
				v := e.sdkCall(t, http.MethodGet, "/v1/messages/"+id+"/attempts", "", http.StatusOK, attempts)
				require.Len(t, v["data"], 1)
			}
			v := e.sdkCall(t, http.MethodGet, "/v1/messages/"+noAnswer+"/attempts", "", http.StatusOK, attempts)
			a := v["data"].([]any)[0].(map[string]any)
			require.Nil(t, a["response_latency_ms"], "no answer, no latency")
			require.NotEmpty(t, a["error_text"])
			v = e.sdkCall(t, http.MethodGet, "/v1/messages/"+delivered+"/attempts", "", http.StatusOK, attempts)
			a = v["data"].([]any)[0].(map[string]any)
			require.NotNil(t, a["response_latency_ms"])
			require.NotNil(t, a["ttfb_ms"])
			require.Contains(t, a["timings"], "ttfb_ms", "sub-millisecond timings stay available")
		})
		t.Run("RetryNowAndCancel", func(t *testing.T) {
			e.sdkCall(t, http.MethodPost, "/v1/messages/"+noAnswer+"/cancel", "", http.StatusOK, sdkShape{must("message", jString), object("data", sdkMessage)})
			e.sdkCall(t, http.MethodPost, "/v1/messages/"+retrying+"/retry-now", "", http.StatusOK, sdkShape{must("message", jString), object("data", sdkMessage)})
		})
		t.Run("Lists", func(t *testing.T) {
			e.sdkCall(t, http.MethodGet, "/v1/logs?limit=2", "", http.StatusOK, dataList(sdkSummary, sdkPageMeta))
			v := e.sdkCall(t, http.MethodGet, "/v1/dlq/messages", "", http.StatusOK, data(sdkShape{
				objects("messages", sdkDLQMessage), must("has_more", jBool), maybe("next_cursor", jString)}))
			require.Len(t, v["data"].(map[string]any)["messages"], 2, "the 410 and the cancelled message")
			e.sdkCall(t, http.MethodGet, "/v1/metrics?window=24h", "", http.StatusOK, data(sdkMetrics))
			e.sdkCall(t, http.MethodGet, "/v1/metrics/timeseries?window=1h", "", http.StatusOK, data(sdkTimeseries))
		})
		t.Run("Replays", func(t *testing.T) {
			e.sdkCall(t, http.MethodPost, "/v1/messages/"+delivered+"/replay", "", http.StatusOK, sdkShape{must("message", jString), object("data", sdkReplay)})
			e.sdkCall(t, http.MethodPost, "/v1/dlq/replay/"+dead, "", http.StatusOK, sdkShape{must("message", jString), object("data", sdkReplay)})
			e.sdkCall(t, http.MethodPost, "/v1/messages/replay-all?status=failed_permanent&limit=10", "", http.StatusOK, sdkShape{must("message", jString), object("data", sdkReplayAll)})
			e.sdkCall(t, http.MethodPost, "/v1/messages/replay-batch", `{"message_ids":["`+noAnswer+`"]}`, http.StatusOK, sdkShape{must("message", jString), object("data", sdkReplayBatch)})
		})
		t.Run("APIKeys", func(t *testing.T) {
			v := e.sdkCall(t, http.MethodPost, "/v1/api-keys", `{"mode":"test","label":"ci"}`, http.StatusCreated, data(sdkAPIKeyCreated))
			e.sdkCall(t, http.MethodGet, "/v1/api-keys", "", http.StatusOK, dataList(sdkAPIKey, sdkMeta))
			status, _, raw := e.do(http.MethodDelete, "/v1/api-keys/"+str(v, "data", "key_id"), e.a.key, "", nil)
			require.Less(t, status, 300, string(raw))
		})
		t.Run("Exports", func(t *testing.T) {
			now := time.Now().UTC()
			body := fmt.Sprintf(`{"start_time":%q,"end_time":%q}`, now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
			v := e.sdkCall(t, http.MethodPost, "/v1/exports", body, http.StatusCreated, data(sdkExport))
			e.sdkCall(t, http.MethodGet, "/v1/exports", "", http.StatusOK, dataList(sdkExport, sdkPageMeta))
			e.sdkCall(t, http.MethodGet, "/v1/exports/"+str(v, "data", "id"), "", http.StatusOK, data(sdkExport))
		})
		t.Run("Project", func(t *testing.T) {
			v := e.sdkCall(t, http.MethodGet, "/v1/projects", "", http.StatusOK, data(sdkProject))
			require.Equal(t, e.a.project.ID, str(v, "data", "id"))
			require.Equal(t, e.a.project.Name, str(v, "data", "name"))
		})
		t.Run("Deletes", func(t *testing.T) {
			first := e.sdkCall(t, http.MethodDelete, "/v1/messages/"+dead, "", http.StatusOK, data(sdkDeleted))
			again := e.sdkCall(t, http.MethodDelete, "/v1/messages/"+dead, "", http.StatusOK, data(sdkDeleted))
			require.Equal(t, true, again["data"].(map[string]any)["already_deleted"])
			require.Equal(t, str(first, "data", "deleted_at"), str(again, "data", "deleted_at"), "a repeat reports the first delete")

			foreign := send(t, ep, 5)
			unknown := "01935abc-def0-7123-8567-890abcdef012"
			v := e.sdkCall(t, http.MethodPost, "/v1/messages/delete-batch",
				fmt.Sprintf(`{"message_ids":[%q,%q,%q,%q]}`, noAnswer, dead, unknown, noAnswer), http.StatusOK, data(sdkDeleteBatch))
			d := v["data"].(map[string]any)
			require.Equal(t, json.Number("1"), d["deleted_count"])
			require.Equal(t, json.Number("1"), d["already_deleted_count"])
			require.Equal(t, json.Number("1"), d["not_found_count"])
			results := d["results"].([]any)
			require.Len(t, results, 3)
			for i, want := range [][2]string{{noAnswer, "deleted"}, {dead, "already_deleted"}, {unknown, "not_found"}} {
				r := results[i].(map[string]any)
				require.Equal(t, want[0], r["message_id"])
				require.Equal(t, want[1], r["outcome"])
			}
			require.Nil(t, results[2].(map[string]any)["deleted_at"])

			// Another project's message is not_found and stays.
			e.a, e.b = e.b, e.a
			v = e.sdkCall(t, http.MethodPost, "/v1/messages/delete-batch", fmt.Sprintf(`{"message_ids":[%q]}`, foreign), http.StatusOK, data(sdkDeleteBatch))
			e.a, e.b = e.b, e.a
			require.Equal(t, json.Number("1"), v["data"].(map[string]any)["not_found_count"])
			e.sdkCall(t, http.MethodGet, "/v1/messages/"+foreign, "", http.StatusOK, data(sdkMessage))

			e.sdkCall(t, http.MethodPost, "/v1/messages/delete-all?endpoint_id="+ep, "", http.StatusOK, data(sdkDeleteAll))
		})
	})
}

// TestCheckShapeCatches proves the shape check fails on what the SDKs fail
// on, so TestSDKShapes can fail.
func TestCheckShapeCatches(t *testing.T) {
	t.Parallel()
	decode := func(s string) any {
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		var v any
		require.NoError(t, dec.Decode(&v))
		return v
	}
	shape := sdkShape{must("id", jString), must("created_at", jTime), maybe("ttfb_ms", jInt), maybe("headers", jStringMap)}
	require.Empty(t, checkShape("$", decode(`{"id":"a","created_at":"2026-01-02T03:04:05Z","ttfb_ms":3,"headers":{"a":"b"}}`), shape))
	for _, bad := range []string{
		`{"created_at":"2026-01-02T03:04:05Z"}`,                          // missing
		`{"id":null,"created_at":"2026-01-02T03:04:05Z"}`,                // null where the SDK needs a value
		`{"id":"a","created_at":""}`,                                     // not a time
		`{"id":"a","created_at":"2026-01-02T03:04:05Z","ttfb_ms":0.454}`, // a fraction in an int
		`{"id":1,"created_at":"2026-01-02T03:04:05Z"}`,                   // a number for a string
		`{"id":"a","created_at":"2026-01-02T03:04:05Z","headers":{"a":["b"]}}`,
	} {
		require.NotEmpty(t, checkShape("$", decode(bad), shape), bad)
	}
}
