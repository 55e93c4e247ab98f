package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/internal/poll"
	"github.com/hookd/hookd/internal/tcpproxy"
	"github.com/hookd/hookd/internal/testdb"
	"github.com/hookd/hookd/secrets"
)

// TestLogFormatAuto: "auto" writes JSON unless stderr is a character
// device (a terminal); "text" and "json" are what they say.
func TestLogFormatAuto(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	newLogger(&Config{LogFormat: "auto", LogLevel: "info"}, &buf).Info("hello", "k", "v")
	require.True(t, json.Valid(bytes.TrimSpace(buf.Bytes())), buf.String())

	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	require.NoError(t, err)
	newLogger(&Config{LogFormat: "auto", LogLevel: "info"}, f).Info("hello")
	require.NoError(t, f.Close())
	b, err := os.ReadFile(f.Name())
	require.NoError(t, err)
	require.True(t, json.Valid(bytes.TrimSpace(b)), "a regular file gets JSON: %s", b)

	buf.Reset()
	newLogger(&Config{LogFormat: "text", LogLevel: "debug"}, &buf).Debug("hello", "k", "v")
	require.Contains(t, buf.String(), "level=DEBUG msg=hello k=v")
}

// flakyReceiver answers 500 to the first delivery of each message and 200
// to the next; with status set it always answers that.
func flakyReceiver(t *testing.T, status int) *httptest.Server {
	t.Helper()
	var mu sync.Mutex
	seen := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status != 0 {
			w.WriteHeader(status)
			return
		}
		id := r.Header.Get("X-Webhook-Id")
		mu.Lock()
		again := seen[id]
		seen[id] = true
		mu.Unlock()
		if !again {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// logLine is one parsed JSON log line and its raw text.
type logLine struct {
	raw    string
	fields map[string]any
}

func (l logLine) str(k string) string { s, _ := l.fields[k].(string); return s }

// TestLogsOverAFullScenario runs hookd as a child process at debug level
// with the default --log-format auto (its stderr is a pipe, so JSON) and
// its database behind a TCP proxy, and goes through endpoints, keys,
// deliveries that fail and succeed, refused deliveries, 4xx requests and a
// database outage (503). Then: every line is JSON; no line holds a signing
// secret, an API key (the 11-character display prefix aside), the master
// key or any part of a payload or message header; every API line carries
// its request id and every line about a message its message and endpoint
// ids.
func TestLogsOverAFullScenario(t *testing.T) {
	t.Parallel()
	dbURL := testdb.NewPostgres(t)
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	proxy := tcpproxy.Start(t, u.Host)
	u.Host = proxy.Addr()
	master := secrets.GenerateMasterKey("logs")
	marker := "MARKER" + ids.RandomAlnum(20)
	flaky, refusing := flakyReceiver(t, 0), flakyReceiver(t, http.StatusBadRequest)

	h := startChild(t, "--log-format", "auto", "--log-level", "debug", "--database-url", u.String(), "--master-key", master.String(),
		"--data-dir", t.TempDir(), "--dev-allow-http", "--dev-allow-cidrs", "127.0.0.1/32", "--poll-interval", "50ms",
		"--retry-slow", "100ms", "--max-attempts", "3", "--attempt-timeout", "2s", "--rescue-after", "3s")
	apiKey := keyRE.FindString(h.stdout.String())
	require.NotEmpty(t, apiKey)
	forbidden := []string{master.String(), master.String()[len(master.ID)+1:], marker}
	keys := []string{apiKey}

	type endpoint struct {
		ID            string `json:"id"`
		SigningSecret string `json:"signing_secret"`
	}
	var okEP, badEP endpoint
	require.Equal(t, http.StatusCreated, api(t, http.MethodPost, h.url("/v1/endpoints"), apiKey, `{"url":"`+flaky.URL+`/ok"}`, &okEP))
	require.Equal(t, http.StatusCreated, api(t, http.MethodPost, h.url("/v1/endpoints"), apiKey, `{"url":"`+refusing.URL+`/no"}`, &badEP))
	var sk endpoint
	require.Equal(t, http.StatusCreated, api(t, http.MethodPost, h.url("/v1/endpoints/"+okEP.ID+"/signing-keys"), apiKey, "", &sk))
	forbidden = append(forbidden, okEP.SigningSecret, badEP.SigningSecret, sk.SigningSecret)
	var ak struct {
		Key string `json:"key"`
	}
	require.Equal(t, http.StatusCreated, api(t, http.MethodPost, h.url("/v1/api-keys"), apiKey, `{"label":"logs"}`, &ak))
	require.NotEmpty(t, ak.Key)
	keys = append(keys, ak.Key)

	// Deliveries: 500 then 200 on one endpoint, 400 on the other.
	var msgs []string
	for i := range 4 {
		ep := okEP.ID
		if i%2 == 1 {
			ep = badEP.ID
		}
		var res struct {
			MessageID string `json:"message_id"`
		}
		body := fmt.Sprintf(`{"endpoint_id":"%s","payload":{"note":"%s","i":%d},"headers":{"X-Note":"%s"}}`, ep, marker, i, marker)
		require.Equal(t, http.StatusAccepted, api(t, http.MethodPost, h.url("/v1/webhooks/send"), ak.Key, body, &res))
		msgs = append(msgs, res.MessageID)
	}

	// Bad requests, each carrying a secret-like value or the marker.
	badKey := "hk_live_" + ids.RandomAlnum(32)
	keys = append(keys, badKey)
	require.Equal(t, http.StatusUnauthorized, api(t, http.MethodGet, h.url("/v1/endpoints"), badKey, "", nil))
	require.Equal(t, http.StatusBadRequest, api(t, http.MethodPost, h.url("/v1/webhooks/send"), apiKey, `{"endpoint_id":"`+okEP.ID+`","payload":"`+marker+`"}`, nil))
	require.Equal(t, http.StatusBadRequest, api(t, http.MethodPost, h.url("/v1/webhooks/send"), apiKey, `{"endpoint_id":"`+okEP.ID+`","payload":{"a":"`+marker+`"`, nil))
	require.Equal(t, http.StatusNotFound, api(t, http.MethodGet, h.url("/v1/messages/"+ids.NewUUID()), apiKey, "", nil))
	require.Equal(t, http.StatusNotFound, api(t, http.MethodGet, h.url("/v1/endpoints/ep_"+strings.Repeat("0", 32)), apiKey, "", nil))

	for i, id := range msgs {
		want := "succeeded"
		if i%2 == 1 {
			want = "failed_permanent"
		}
		poll.Until(t, patience, func() bool {
			var m struct{ Status string }
			return api(t, http.MethodGet, h.url("/v1/messages/"+id), apiKey, "", &m) == http.StatusOK && m.Status == want
		}, "message %d", i)
	}

	// A database outage: 503 for the API, then recovery.
	proxy.Cut()
	poll.Until(t, patience, func() bool {
		return api(t, http.MethodGet, h.url("/v1/endpoints"), apiKey, "", nil) == http.StatusServiceUnavailable
	}, "the API never answered 503")
	require.Equal(t, http.StatusServiceUnavailable, api(t, http.MethodPost, h.url("/v1/webhooks/send"), apiKey,
		`{"endpoint_id":"`+okEP.ID+`","payload":{"note":"`+marker+`"}}`, nil))
	proxy.Restore()
	poll.Until(t, patience, func() bool { return get(t, h.url("/readyz"), "") == http.StatusOK }, "not ready after the outage")

	// Every line is JSON; wait until the last expected ones are in.
	var lines []logLine
	var outageLevel string
	poll.Until(t, patience, func() bool {
		lines = lines[:0]
		attempts, outage := 0, false
		for _, raw := range strings.Split(strings.TrimSpace(h.stderr.String()), "\n") {
			var m map[string]any
			require.NoError(t, json.Unmarshal([]byte(raw), &m), "not JSON: %s", raw)
			l := logLine{raw: raw, fields: m}
			lines = append(lines, l)
			if l.str("msg") == "delivery attempt" {
				attempts++
			}
			if l.str("msg") == "request failed" && m["status"] == float64(503) {
				outageLevel = l.str("level")
				outage = true
			}
		}
		return attempts >= 6 && outage // 2×(500, 200) + 2×400
	}, "the last log lines never came")
	require.Equal(t, "WARN", outageLevel, "a 503 is a state, not a fault: warn, so ERROR lines stay worth an alert")

	apiLines, deliveryLines, queueLines := 0, 0, 0
	for _, l := range lines {
		for _, s := range forbidden {
			require.NotContains(t, l.raw, s)
		}
		for _, k := range keys {
			require.NotContains(t, l.raw, k)
			require.NotContains(t, l.raw, k[11:], "nothing of a key beyond its display prefix")
		}
		switch l.str("component") {
		case "api":
			apiLines++
			require.Regexp(t, `^req_`, l.str("request_id"), l.raw)
		case "delivery":
			if l.str("scope") == "queue" {
				queueLines++
				continue
			}
			deliveryLines++
			require.NotEmpty(t, l.str("message_id"), l.raw)
			require.NotEmpty(t, l.str("endpoint_id"), l.raw)
		}
	}
	t.Logf("%d lines: %d api, %d about messages, %d about the queue", len(lines), apiLines, deliveryLines, queueLines)
	require.GreaterOrEqual(t, apiLines, 20)
	require.GreaterOrEqual(t, deliveryLines, 6)
}
