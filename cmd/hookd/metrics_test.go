package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/internal/syncbuf"
)

// scrape GETs url and returns the status and body.
func scrape(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// loggedAddr is the addr attribute of the first JSON log line with msg.
func loggedAddr(t *testing.T, log, msg string) string {
	t.Helper()
	for _, line := range strings.Split(log, "\n") {
		var rec struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == msg {
			return rec.Addr
		}
	}
	t.Fatalf("no %q in the log:\n%s", msg, log)
	return ""
}

// TestMetricsListeners: metrics are served on the API listener by
// default, only on their own listener with --metrics-addr HOST:PORT, and
// nowhere with --metrics-addr off.
func TestMetricsListeners(t *testing.T) {
	t.Parallel()
	base := func(t *testing.T) []string {
		return []string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--log-format", "json"}
	}
	t.Run("Default", func(t *testing.T) {
		t.Parallel()
		addr, stop := startServe(t, base(t), env(nil), io.Discard)
		require.Equal(t, http.StatusOK, get(t, "http://"+addr+"/healthz", ""))
		status, body := scrape(t, "http://"+addr+"/metrics")
		require.Equal(t, http.StatusOK, status)
		require.Contains(t, body, "hookd_queue_depth 0")
		require.Contains(t, body, `hookd_http_requests_total{code="200",method="GET",route="/healthz"} 1`)
		require.Contains(t, body, "go_goroutines")
		require.NoError(t, stop())
	})
	t.Run("OwnListener", func(t *testing.T) {
		t.Parallel()
		logs := &syncbuf.Buffer{}
		addr, stop := startServeLogging(t, append(base(t), "--metrics-addr", "127.0.0.1:0"), env(nil), io.Discard, logs)
		status, _ := scrape(t, "http://"+addr+"/metrics")
		require.Equal(t, http.StatusNotFound, status, "not on the API listener")
		status, body := scrape(t, "http://"+loggedAddr(t, logs.String(), "serving metrics")+"/metrics")
		require.Equal(t, http.StatusOK, status)
		require.Contains(t, body, `hookd_http_requests_total{code="404",method="GET",route="unmatched"} 1`)
		require.NoError(t, stop())
	})
	t.Run("Off", func(t *testing.T) {
		t.Parallel()
		logs := &syncbuf.Buffer{}
		addr, stop := startServeLogging(t, base(t), env(map[string]string{"HOOKD_METRICS_ADDR": "off"}), io.Discard, logs)
		status, body := scrape(t, "http://"+addr+"/metrics")
		require.Equal(t, http.StatusNotFound, status)
		require.Contains(t, body, "NOT_FOUND")
		require.NotContains(t, logs.String(), "serving metrics")
		require.NoError(t, stop())
	})
}
