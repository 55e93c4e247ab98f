package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/hookd/hookd/internal/poll"
	"github.com/hookd/hookd/internal/syncbuf"
)

// TestTracingExportsOverOTLP: with --otlp-endpoint, `hookd serve` sends
// its spans (API requests, the commit, the attempt) to an OTLP/HTTP
// collector by the time it has stopped, as service hookd, and with
// --trace-header the receiver gets the attempt's traceparent.
func TestTracingExportsOverOTLP(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	spans := map[string]int{}
	services := map[string]bool{}
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var req coltrace.ExportTraceServiceRequest
		if err != nil || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" || proto.Unmarshal(body, &req) != nil {
			http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, rs := range req.ResourceSpans {
			for _, a := range rs.GetResource().GetAttributes() {
				if a.Key == "service.name" {
					services[a.GetValue().GetStringValue()] = true
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					spans[s.Name]++
				}
			}
		}
		// (No keep-alive: the exporter keeps idle connections after its
		// shutdown, and the leak check at the end must not wait on them.)
		w.Header().Set("Connection", "close")
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		_, _ = w.Write(out)
	}))
	t.Cleanup(collector.Close)
	var tpMu sync.Mutex
	var traceparents []string
	receiver := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		tpMu.Lock()
		traceparents = append(traceparents, r.Header.Get("Traceparent"))
		tpMu.Unlock()
	}))
	t.Cleanup(receiver.Close)

	stdout := &syncbuf.Buffer{}
	addr, stop := startServe(t, []string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--log-format", "json",
		"--dev-allow-http", "--dev-allow-cidrs", "127.0.0.1/32", "--otlp-endpoint", collector.URL + "/v1/traces", "--trace-header"}, env(nil), stdout)
	key := keyRE.FindString(stdout.String())
	require.NotEmpty(t, key)
	base := "http://" + addr
	var ep struct {
		ID string `json:"id"`
	}
	require.Equal(t, http.StatusCreated, api(t, http.MethodPost, base+"/v1/endpoints", key, `{"url":"`+receiver.URL+`/traced"}`, &ep))
	require.Equal(t, http.StatusAccepted, api(t, http.MethodPost, base+"/v1/webhooks/send", key, `{"endpoint_id":"`+ep.ID+`","payload":{"a":1}}`, nil))
	poll.Until(t, patience, func() bool {
		tpMu.Lock()
		defer tpMu.Unlock()
		return len(traceparents) == 1
	}, "the delivery arrives")
	require.Equal(t, http.StatusOK, get(t, base+"/healthz", ""))
	require.Equal(t, http.StatusOK, get(t, base+"/readyz", ""))
	require.NoError(t, stop()) // flushes the spans

	tpMu.Lock()
	require.Regexp(t, `^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`, traceparents[0])
	tpMu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	require.True(t, services["hookd"], "service.name hookd: %v", services)
	require.Equal(t, 1, spans["POST /v1/endpoints"], "%v", spans)
	require.Equal(t, 1, spans["POST /v1/webhooks/send"], "%v", spans)
	require.Equal(t, 1, spans["hookd.commit"], "%v", spans)
	require.Equal(t, 1, spans["hookd.attempt"], "%v", spans)
	require.Zero(t, spans["GET /healthz"]+spans["GET /readyz"], "probes are not traced: %v", spans)
}
