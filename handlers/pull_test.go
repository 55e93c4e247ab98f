package handlers_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// The shapes HookBridge's Go SDK (v1.5.0 types.go) decodes from the pull
// answers, written from its declarations.
var (
	sdkPullCounts   = sdkShape{maybe("stored", jInt), maybe("fetched", jInt), maybe("delivered", jInt), maybe("total", jInt)}
	sdkPullTiming   = sdkShape{maybe("ingest_processing_ms", jInt), maybe("time_to_fetch_ms", jInt), maybe("time_to_ack_ms", jInt), maybe("total_lifecycle_ms", jInt)}
	sdkPullEndpoint = sdkShape{must("id", jString), maybe("name", jString), maybe("description", jString), must("mode", jString),
		must("ingest_url", jString), must("active", jBool), must("paused", jBool), maybe("retention_days", jInt),
		maybe("event_type_source", jString), maybe("event_type_path", jString), object("counts", sdkPullCounts),
		maybe("verify_static_token", jBool), maybe("token_header_name", jString), maybe("token_query_param", jString),
		maybe("verify_hmac", jBool), maybe("hmac_header_name", jString), maybe("timestamp_header_name", jString),
		maybe("timestamp_ttl_seconds", jInt), maybe("verify_ip_allowlist", jBool), maybe("allowed_cidrs", jStrings),
		maybe("ingest_response_code", jInt), maybe("idempotency_header_names", jStrings), must("created_at", jTime), must("updated_at", jTime)}
	sdkPullCreated = append(sdkShape{maybe("secret_token", jString)}, sdkPullEndpoint...)
	sdkPullSummary = sdkShape{must("id", jString), maybe("name", jString), must("active", jBool), must("paused", jBool),
		must("ingest_url", jString), must("created_at", jTime)}
	sdkPullEvent = sdkShape{must("id", jString), maybe("event_type", jString), must("status", jString), must("size_bytes", jInt),
		must("received_at", jTime), maybe("fetched_at", jTime), maybe("delivered_at", jTime), object("timing", sdkPullTiming),
		maybe("deleted_at", jTime)}
	sdkPullEventDetail = append(sdkShape{must("content_type", jString), must("payload", jAny), maybe("headers", jStringMap),
		maybe("deleted_by_user_id", jString), maybe("deleted_by_api_key_id", jString)}, sdkPullEvent...)
	sdkPullLog = sdkShape{must("event_id", jString), must("pull_endpoint_id", jString), maybe("endpoint_name", jString),
		maybe("event_type", jString), must("status", jString), must("size_bytes", jInt), must("received_at", jTime),
		maybe("fetched_at", jTime), maybe("delivered_at", jTime), object("timing", sdkPullTiming)}
	sdkPullTimeseries = sdkShape{must("window", jString), objects("buckets", sdkShape{must("timestamp", jTime), must("succeeded", jInt),
		must("stored", jInt), must("fetched", jInt), must("total", jInt)})}
	sdkEventDeleted     = sdkShape{must("event_id", jString), must("deleted_at", jTime), must("already_deleted", jBool)}
	sdkEventDeleteBatch = sdkShape{objects("results", sdkShape{must("event_id", jString), must("outcome", jString), maybe("deleted_at", jTime)}),
		must("deleted_count", jInt), must("already_deleted_count", jInt), must("not_found_count", jInt)}
	sdkEventDeleteAll = sdkShape{must("deleted", jInt), must("deleted_event_ids", jStrings)}
)

func num(t *testing.T, v any, path ...string) int {
	t.Helper()
	for _, p := range path {
		v = v.(map[string]any)[p]
	}
	n, err := strconv.Atoi(v.(json.Number).String())
	require.NoError(t, err)
	return n
}

// TestPullEndpoints calls every pull method of HookBridge's Go SDK the way
// it does, checks each answer against its types (and the spec), and
// follows events through stored, fetched and delivered.
func TestPullEndpoints(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, options{receivers: true, engine: testEngineConfig()}, func(t *testing.T, e *env) {
		v := e.sdkCall(t, http.MethodPost, "/v1/pull-endpoints", `{"name":"orders","retention_days":3,"event_type_source":"body","event_type_path":"type",
			"idempotency_header_names":["X-Delivery"],"verify_static_token":true,"token_header_name":"X-Token","token_value":"t0k"}`,
			http.StatusCreated, data(sdkPullCreated))
		id, ingestURL := str(v, "data", "id"), str(v, "data", "ingest_url")
		require.Equal(t, "pull", str(v, "data", "mode"))
		require.NotEmpty(t, str(v, "data", "secret_token"))
		e.sdkCall(t, http.MethodGet, "/v1/pull-endpoints?limit=5", "", http.StatusOK, dataList(sdkPullSummary, sdkPageMeta))

		var evs []string
		for i, typ := range []string{"order.created", "order.paid", "order.created"} {
			a := ingest(t, ingestURL, []byte(`{"type":"`+typ+`","n":`+strconv.Itoa(i)+`}`),
				map[string]string{"Content-Type": "application/json", "X-Token": "t0k", "X-Delivery": "d" + strconv.Itoa(i)})
			require.Equal(t, http.StatusOK, a.status, a.raw)
			evs = append(evs, a.messageID(t))
		}
		dup := ingest(t, ingestURL, []byte(`{"type":"order.created","n":0}`), map[string]string{"X-Token": "t0k", "X-Delivery": "d0"})
		require.Equal(t, evs[0], dup.messageID(t), "a repeat is the same event")
		require.Equal(t, http.StatusUnauthorized, ingest(t, ingestURL, []byte(`{}`), nil).status, "the static token is checked")

		got := e.sdkCall(t, http.MethodGet, "/v1/pull-endpoints/"+id, "", http.StatusOK, data(sdkPullEndpoint))
		require.Equal(t, 3, num(t, got, "data", "counts", "stored"))
		require.Equal(t, 3, num(t, got, "data", "retention_days"))

		list := e.sdkCall(t, http.MethodGet, "/v1/pull-endpoints/"+id+"/events?event_type=order.created&limit=10", "", http.StatusOK,
			dataList(sdkPullEvent, sdkPageMeta))["data"].([]any)
		require.Len(t, list, 2)
		require.Equal(t, evs[0], list[0].(map[string]any)["id"], "oldest first")
		require.Equal(t, "stored", list[0].(map[string]any)["status"])
		page1 := e.sdkCall(t, http.MethodGet, "/v1/pull-endpoints/"+id+"/events?limit=2", "", http.StatusOK, dataList(sdkPullEvent, sdkPageMeta))
		page2 := e.sdkCall(t, http.MethodGet, "/v1/pull-endpoints/"+id+"/events?limit=2&cursor="+str(page1, "meta", "next_cursor"), "", http.StatusOK,
			dataList(sdkPullEvent, sdkPageMeta))
		require.Equal(t, evs[2], page2["data"].([]any)[0].(map[string]any)["id"])

		// A preview leaves the event stored; a fetch marks it fetched.
		p := e.sdkCall(t, http.MethodGet, "/v1/pull-endpoints/"+id+"/events/"+evs[0]+"?preview=true", "", http.StatusOK, data(sdkPullEventDetail))
		require.Equal(t, "stored", str(p, "data", "status"))
		require.Equal(t, "order.created", str(p, "data", "payload", "type"), "a JSON body comes back as JSON")
		f := e.sdkCall(t, http.MethodGet, "/v1/pull-endpoints/"+id+"/events/"+evs[0], "", http.StatusOK, data(sdkPullEventDetail))
		require.Equal(t, "fetched", str(f, "data", "status"))
		require.Equal(t, "application/json", str(f, "data", "content_type"))
		require.NotContains(t, f["data"].(map[string]any)["headers"], "X-Token", "the static token header is not kept")

		ack := e.sdkCall(t, http.MethodPost, "/v1/pull-endpoints/"+id+"/events/ack", `{"event_ids":["`+evs[0]+`","`+evs[1]+`"]}`, http.StatusOK,
			data(sdkShape{must("acknowledged", jInt)}))
		require.Equal(t, 2, num(t, ack, "data", "acknowledged"))
		again := e.sdkCall(t, http.MethodPost, "/v1/pull-endpoints/"+id+"/events/ack", `{"event_ids":["`+evs[0]+`"]}`, http.StatusOK,
			data(sdkShape{must("acknowledged", jInt)}))
		require.Equal(t, 0, num(t, again, "data", "acknowledged"), "acknowledging twice counts once")
		d := e.sdkCall(t, http.MethodGet, "/v1/pull-endpoints/"+id+"/events/"+evs[0], "", http.StatusOK, data(sdkPullEventDetail))
		require.Equal(t, "delivered", str(d, "data", "status"))
		require.NotNil(t, d["data"].(map[string]any)["timing"].(map[string]any)["total_lifecycle_ms"])
		stored := e.sdkCall(t, http.MethodGet, "/v1/pull-endpoints/"+id+"/events?status=stored", "", http.StatusOK, dataList(sdkPullEvent, sdkPageMeta))
		require.Len(t, stored["data"], 1, "at least once: what is not acknowledged stays")

		logs := e.sdkCall(t, http.MethodGet, "/v1/pull-logs?pull_endpoint_id="+id+"&limit=10", "", http.StatusOK, dataList(sdkPullLog, sdkPageMeta))
		require.Len(t, logs["data"], 3)
		require.Equal(t, "orders", logs["data"].([]any)[0].(map[string]any)["endpoint_name"])
		m := e.sdkCall(t, http.MethodGet, "/v1/pull-metrics?window=1h&pull_endpoint_id="+id, "", http.StatusOK, data(sdkMetrics))
		require.Equal(t, 3, num(t, m, "data", "total_messages"))
		require.Equal(t, 2, num(t, m, "data", "succeeded"))
		e.sdkCall(t, http.MethodGet, "/v1/pull-metrics/timeseries?window=24h", "", http.StatusOK, data(sdkPullTimeseries))

		// Held events are never forwarded.
		msg, err := e.a.client.GetInboundMessageWithResponse(t.Context(), uuid.MustParse(evs[2]))
		require.NoError(t, err)
		require.Zero(t, msg.JSON200.Data.AttemptCount)

		e.sdkCall(t, http.MethodPatch, "/v1/pull-endpoints/"+id, `{"description":"the orders feed","retention_days":10}`, http.StatusOK, data(sdkPullEndpoint))
		e.sdkCall(t, http.MethodPost, "/v1/pull-endpoints/"+id+"/pause", "", http.StatusOK, data(sdkToggle))
		paused := ingest(t, ingestURL, []byte(`{}`), map[string]string{"X-Token": "t0k"})
		require.Equal(t, http.StatusServiceUnavailable, paused.status)
		e.sdkCall(t, http.MethodPost, "/v1/pull-endpoints/"+id+"/resume", "", http.StatusOK, data(sdkToggle))

		de := e.sdkCall(t, http.MethodDelete, "/v1/pull-endpoints/"+id+"/events/"+evs[0], "", http.StatusOK, data(sdkEventDeleted))
		require.Equal(t, false, de["data"].(map[string]any)["already_deleted"])
		b := e.sdkCall(t, http.MethodPost, "/v1/pull-endpoints/"+id+"/events/delete-batch", `{"message_ids":["`+evs[0]+`","`+evs[1]+`","`+uuid.Must(uuid.NewV7()).String()+`"]}`,
			http.StatusOK, data(sdkEventDeleteBatch))
		require.Equal(t, 1, num(t, b, "data", "deleted_count"))
		require.Equal(t, 1, num(t, b, "data", "already_deleted_count"))
		require.Equal(t, 1, num(t, b, "data", "not_found_count"))
		all := e.sdkCall(t, http.MethodPost, "/v1/pull-endpoints/"+id+"/events/delete-all?status=stored&limit=10", "", http.StatusOK, data(sdkEventDeleteAll))
		require.Equal(t, []any{evs[2]}, all["data"].(map[string]any)["deleted_event_ids"])

		// Isolation and modes: another project's, and an inbound route's, view of a pull endpoint is 404.
		status, _, _ := e.do(http.MethodGet, "/v1/pull-endpoints/"+id, e.b.key, "", nil)
		require.Equal(t, http.StatusNotFound, status)
		status, _, _ = e.do(http.MethodGet, "/v1/pull-endpoints/"+id+"/events", e.b.key, "", nil)
		require.Equal(t, http.StatusNotFound, status)
		status, _, _ = e.do(http.MethodGet, "/v1/inbound-endpoints/"+id, e.a.key, "", nil)
		require.Equal(t, http.StatusNotFound, status)
		fwd := e.createInbound(t, `{"url":"`+newReceiver(t, nil).url("/x")+`"}`)
		status, _, _ = e.do(http.MethodGet, "/v1/pull-endpoints/"+fwd.Id.String(), e.a.key, "", nil)
		require.Equal(t, http.StatusNotFound, status)
		status, _, _ = e.do(http.MethodPost, "/v1/pull-endpoints", e.a.key, "application/json", []byte(`{"event_type_source":"body"}`))
		require.Equal(t, http.StatusBadRequest, status, "a source needs a path")

		e.sdkCall(t, http.MethodDelete, "/v1/pull-endpoints/"+id, "", http.StatusOK, data(sdkToggle))
		require.Equal(t, http.StatusUnauthorized, ingest(t, ingestURL, []byte(`{}`), map[string]string{"X-Token": "t0k"}).status)
	})
}
