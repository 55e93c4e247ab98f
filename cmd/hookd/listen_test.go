package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/internal/poll"
	"github.com/hookd/hookd/internal/syncbuf"

	"github.com/hookd/hookd/signature"
)

func TestListenPrintsDeliveriesAndChecksSignatures(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	out := &syncbuf.Buffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- listen(ctx, []string{"--addr", "127.0.0.1:0", "--secrets", secret, "--status", "202"}, env(nil), out, &syncbuf.Buffer{}, ready)
	}()
	addr := <-ready

	post := func(sig string) int {
		body := `{"event":"ping"}`
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/hook", strings.NewReader(body))
		require.NoError(t, err)
		ts := time.Now().Unix()
		req.Header.Set(signature.HeaderID, "01935abc-def0-7123-4567-890abcdef012")
		req.Header.Set(signature.HeaderTimestamp, strconv.FormatInt(ts, 10))
		if sig == "" {
			sig = signature.Header(ts, []byte(body), secret)
		}
		req.Header.Set(signature.HeaderSignature, sig)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	// The same, signed the Standard Webhooks way.
	postStandard := func(sig string) int {
		body := `{"event":"pong"}`
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/hook", strings.NewReader(body))
		require.NoError(t, err)
		ts := time.Now().Unix()
		id := "01935abc-def0-7123-4567-890abcdef013"
		req.Header.Set(signature.StandardHeaderID, id)
		req.Header.Set(signature.StandardHeaderTimestamp, strconv.FormatInt(ts, 10))
		if sig == "" {
			sig, err = signature.StandardHeader(id, ts, []byte(body), secret)
			require.NoError(t, err)
		}
		req.Header.Set(signature.StandardHeaderSignature, sig)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, 202, post(""))
	require.Equal(t, 202, post("sha256=00"))
	require.Equal(t, 202, postStandard(""))
	require.Equal(t, 202, postStandard("v1,AAAA"))
	cancel()
	require.NoError(t, <-done)

	text := out.String()
	require.Contains(t, text, "signature: valid, hookbridge scheme")
	require.Contains(t, text, "signature: INVALID, hookbridge scheme")
	require.Contains(t, text, "signature: valid, standard webhooks scheme")
	require.Contains(t, text, "signature: INVALID, standard webhooks scheme")
	require.Contains(t, text, `{"event":"ping"}`)
	require.Contains(t, text, `{"event":"pong"}`)
	require.Contains(t, text, "Webhook-Id: 01935abc-def0-7123-4567-890abcdef013")
	require.Contains(t, text, "01935abc-def0-7123-4567-890abcdef012")
	require.Equal(t, 4, strings.Count(text, "answered 202"))
}

// TestListenPrintsEveryHeader: after X-Webhook-Id, X-Webhook-Timestamp and
// User-Agent, every other request header of a delivery is printed, sorted
// by name, with the values of credential-looking headers masked but for
// their last 4 characters.
func TestListenPrintsEveryHeader(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncbuf.Buffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- listen(ctx, []string{"--addr", "127.0.0.1:0"}, env(nil), out, &syncbuf.Buffer{}, ready)
	}()
	addr := <-ready

	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/hook", strings.NewReader(`{}`))
	require.NoError(t, err)
	req.Header.Set("User-Agent", "hookd/test")
	req.Header.Set(signature.HeaderID, "01935abc-def0-7123-4567-890abcdef012")
	req.Header.Set(signature.HeaderTimestamp, "1795664119")
	req.Header.Set(signature.HeaderSignature, "sha256=00ff")
	req.Header.Set("X-Tenant", "acme")
	req.Header.Add("X-Tenant", "second value")
	req.Header.Set("A-First", "1")
	req.Header.Set("X-Api-Key", "sk_live_abcdefghijklmnopQRST")
	req.Header.Set("Authorization", "Bearer abcdefghijklmnopWXYZ")
	req.Header.Set("X-Auth-Pin", "1234")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	cancel()
	require.NoError(t, <-done)

	var lines []string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(l, "   ") && strings.Contains(l, ": ") && !strings.HasPrefix(l, "   signature:") && !strings.HasPrefix(l, "   body") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	require.Equal(t, []string{
		"X-Webhook-Id: 01935abc-def0-7123-4567-890abcdef012",
		"X-Webhook-Timestamp: 1795664119",
		"User-Agent: hookd/test",
		"A-First: 1",
		"Accept-Encoding: gzip", // Go's client asks for it
		"Authorization: Bearer ****WXYZ (masked, 20 characters)",
		"Content-Length: 2",
		"Content-Type: application/json",
		"X-Api-Key: ****QRST (masked, 28 characters)",
		"X-Auth-Pin: **** (masked, 4 characters)",
		"X-Tenant: acme",
		"X-Tenant: second value",
		"X-Webhook-Signature: sha256=00ff",
	}, lines)
	require.NotContains(t, out.String(), "abcdefghijklmnop", "no credential is printed whole")
}

// TestListenHeaderValuesCannotDriveTheTerminal: control characters in a
// header value (which no HTTP client of hookd's sends, but anything can)
// are printed escaped.
func TestListenHeaderValuesCannotDriveTheTerminal(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	printHeaders(&out, http.Header{"X-Evil": {"a\x1b[2Jb"}, "X-Token": {"\x1b[2J\x1b[2J\x1b[2J"}})
	require.NotContains(t, out.String(), "\x1b")
	require.Contains(t, out.String(), `X-Evil: "a\x1b[2Jb"`)
}

// TestListenReadsItsOwnEnvironmentVariables: listen's flags are read from
// HOOKD_LISTEN_ADDR, HOOKD_LISTEN_SECRETS, HOOKD_LISTEN_STATUS and
// HOOKD_LISTEN_TOLERANCE, as its --help says, never from serve's HOOKD_ADDR
// (a shell set up for serve must not move the receiver onto hookd's port).
func TestListenReadsItsOwnEnvironmentVariables(t *testing.T) {
	t.Parallel()
	var help strings.Builder
	require.NoError(t, run(context.Background(), []string{"listen", "--help"}, env(nil), &help, io.Discard))
	for _, v := range []string{"[HOOKD_LISTEN_ADDR]", "[HOOKD_LISTEN_SECRETS]", "[HOOKD_LISTEN_STATUS]", "[HOOKD_LISTEN_TOLERANCE]"} {
		require.Contains(t, help.String(), v)
	}
	require.NotContains(t, help.String(), "[HOOKD_ADDR]")
	require.NotContains(t, help.String(), "[HOOKD_STATUS]")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	out := &syncbuf.Buffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	vars := env(map[string]string{
		"HOOKD_LISTEN_ADDR": "127.0.0.1:0", "HOOKD_LISTEN_STATUS": "418", "HOOKD_LISTEN_SECRETS": secret, "HOOKD_LISTEN_TOLERANCE": "0",
		// serve's variables, which listen must ignore (both are invalid here).
		"HOOKD_ADDR": "not an address", "HOOKD_STATUS": "999",
	})
	go func() { done <- listen(ctx, nil, vars, out, &syncbuf.Buffer{}, ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("listen did not start: %v", err)
	}
	body := `{"event":"ping"}`
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/hook", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set(signature.HeaderID, "01935abc-def0-7123-4567-890abcdef012")
	req.Header.Set(signature.HeaderTimestamp, "1000000000") // long ago: tolerance 0 turns the check off
	req.Header.Set(signature.HeaderSignature, signature.Header(1000000000, []byte(body), secret))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusTeapot, resp.StatusCode)
	cancel()
	require.NoError(t, <-done)
	require.Contains(t, out.String(), "signature: valid")

	err = listen(context.Background(), nil, env(map[string]string{"HOOKD_LISTEN_STATUS": "99"}), io.Discard, io.Discard, nil)
	require.ErrorIs(t, err, errUsage)
	require.ErrorContains(t, err, "HOOKD_LISTEN_STATUS")
}

// TestListenInbound runs `hookd listen --inbound` against a running hookd:
// webhooks received at a cli-mode endpoint are printed and forwarded to a
// local URL with their headers and exact bytes.
func TestListenInbound(t *testing.T) {
	t.Parallel()
	stdout := &syncbuf.Buffer{}
	addr, stop := startServe(t, []string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, env(nil), stdout)
	defer func() { require.NoError(t, stop()) }()
	apiKey := keyRE.FindString(stdout.String())
	require.NotEmpty(t, apiKey)
	var ie struct {
		ID         string `json:"id"`
		ReceiveURL string `json:"receive_url"`
	}
	require.Equal(t, http.StatusCreated, api(t, http.MethodPost, "http://"+addr+"/v1/inbound-endpoints", apiKey, `{"mode":"cli","name":"laptop"}`, &ie))

	type got struct {
		header http.Header
		body   []byte
	}
	local := make(chan got, 4)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		local <- got{r.Header.Clone(), b}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer rc.Close()

	ctx, cancel := context.WithCancel(context.Background())
	out := &syncbuf.Buffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- listen(ctx, []string{"--inbound", ie.ID, "--api-url", "http://" + addr, "--api-key", apiKey, "--forward-to", rc.URL + "/hooks"},
			env(nil), out, &syncbuf.Buffer{}, ready)
	}()
	defer func() { cancel(); require.NoError(t, <-done) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("listen ended: %v", err)
	case <-time.After(patience):
		t.Fatal("listen did not start")
	}

	for _, body := range [][]byte{[]byte(`{"id":"evt_1","type":"ping"}`), {0xff, 0x00, '<', '\n'}} {
		req, err := http.NewRequest(http.MethodPost, ie.ReceiveURL, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("X-Provider-Event", "ping")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		select {
		case g := <-local:
			require.Equal(t, body, g.body, "forwarded byte for byte")
			require.Equal(t, "ping", g.header.Get("X-Provider-Event"))
			require.Equal(t, "application/octet-stream", g.header.Get("Content-Type"))
			require.Empty(t, g.header.Get("Accept-Encoding"), "only the webhook's own headers are added")
		case <-time.After(patience):
			t.Fatalf("the webhook was not forwarded:\n%s", out)
		}
	}
	poll.Until(t, patience, func() bool { return strings.Count(out.String(), "forwarded to "+rc.URL+"/hooks: 202") == 2 }, out.String)
	require.Contains(t, out.String(), "X-Provider-Event: ping")
}
