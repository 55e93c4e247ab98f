package handlers_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/internal/poll"
)

// received is one request a test receiver got.
type received struct {
	header http.Header
	body   []byte
	at     time.Time
}

// receiver is a real HTTP server on 127.0.0.1 that records what it gets and
// answers with handle (n is the 0-based index of the request).
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []received
	arrived chan struct{}
}

func newReceiver(t *testing.T, handle func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{arrived: make(chan struct{}, 1)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		n := len(rc.got)
		rc.got = append(rc.got, received{header: r.Header.Clone(), body: body, at: time.Now()})
		rc.mu.Unlock()
		select {
		case rc.arrived <- struct{}{}:
		default:
		}
		if handle != nil {
			handle(n, w, r)
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) url(path string) string { return rc.srv.URL + path }

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// waitFor waits until the receiver has n requests.
func (rc *receiver) waitFor(t *testing.T, n int, timeout time.Duration) []received {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if got := rc.requests(); len(got) >= n {
			return got
		}
		select {
		case <-rc.arrived:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("receiver got %d of %d requests in %s", len(rc.requests()), n, timeout)
		}
	}
}

// send posts a raw send request and returns the answer's status and data.
func (e *env) send(key string, body string) (int, gen.SendResult, gen.ErrorEnvelope) {
	e.t.Helper()
	status, env, raw := e.do(http.MethodPost, "/v1/webhooks/send", key, "application/json", []byte(body))
	var ok gen.SendEnvelope
	if status < 300 {
		require.NoError(e.t, json.Unmarshal(raw, &ok), string(raw))
	}
	return status, ok.Data, env
}

// waitStatus polls the message until it has the status.
func (e *env) waitStatus(id uuid.UUID, status gen.MessageStatus, timeout time.Duration) gen.Message {
	e.t.Helper()
	var m gen.Message
	poll.Until(e.t, timeout, func() bool {
		r, err := e.a.client.GetMessageWithResponse(context.Background(), id)
		require.NoError(e.t, err)
		require.Equal(e.t, http.StatusOK, r.StatusCode(), string(r.Body))
		m = r.JSON200.Data
		return m.Status == status
	}, func() string { return fmt.Sprintf("message %s is %s, want %s", id, m.Status, status) })
	return m
}

func (e *env) attempts(id uuid.UUID) []gen.Attempt {
	e.t.Helper()
	r, err := e.a.client.GetMessageAttemptsWithResponse(context.Background(), id)
	require.NoError(e.t, err)
	require.Equal(e.t, http.StatusOK, r.StatusCode())
	return r.JSON200.Data
}

// ownHMAC verifies a signature header with the test's own HMAC code, not
// hookd's signer.
func ownHMAC(secret, ts string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func TestDeliveryKeepsExactBytesAndSigns(t *testing.T) {
	t.Parallel()
	// PostgreSQL both ways: handed to a worker at send, and claimed.
	for _, name := range []string{"postgres", "postgres-claimed", "sqlite"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d, cfg := name, testEngineConfig()
			if name == "postgres-claimed" {
				d, cfg.NoHandoff = "postgres", true
			}
			e := setupWith(t, d, options{receivers: true, engine: cfg})
			rc := newReceiver(t, nil)
			r, err := e.a.client.CreateEndpointWithResponse(context.Background(), gen.CreateEndpointRequest{
				Url: rc.url("/hook"), Headers: &gen.Headers{"X-Tenant": "acme", "X-Shared": "endpoint"},
			})
			require.NoError(t, err)
			require.Equal(t, http.StatusCreated, r.StatusCode(), string(r.Body))
			ep := r.JSON201.Data

			// Unusual spacing, key order, a unicode escape, an integer above 2^53.
			payload := `{ "z":1,"a" :  "caf\u00e9",  "big": 9007199254740993123 ,"n":[ 1 ,2 ] }`
			status, res, _ := e.send(e.a.key, `{"endpoint_id":"`+ep.Id+`","payload":`+payload+`,"headers":{"X-Shared":"message"}}`)
			require.Equal(t, http.StatusAccepted, status)
			require.Equal(t, gen.MessageStatus("queued"), res.Status)

			got := rc.waitFor(t, 1, patience)[0]
			require.Equal(t, payload, string(got.body), "byte for byte")
			ts := got.header.Get("X-Webhook-Timestamp")
			require.Equal(t, ownHMAC(ep.SigningSecret, ts, got.body), got.header.Get("X-Webhook-Signature"))
			tsn, err := strconv.ParseInt(ts, 10, 64)
			require.NoError(t, err)
			require.WithinDuration(t, time.Now(), time.Unix(tsn, 0), time.Minute)
			require.Equal(t, res.MessageId.String(), got.header.Get("X-Webhook-Id"))
			require.Equal(t, "application/json", got.header.Get("Content-Type"))
			require.Equal(t, "hookd/test", got.header.Get("User-Agent"))
			require.Equal(t, "acme", got.header.Get("X-Tenant"))
			require.Equal(t, "message", got.header.Get("X-Shared"), "message headers win over endpoint headers")

			m := e.waitStatus(res.MessageId, "succeeded", patience)
			require.Equal(t, 1, m.AttemptCount)
			require.NotNil(t, m.DeliveredAt)
			require.Equal(t, len(payload), m.SizeBytes)
			sum := sha256.Sum256([]byte(payload))
			require.Equal(t, hex.EncodeToString(sum[:]), m.PayloadSha256)
			as := e.attempts(res.MessageId)
			require.Len(t, as, 1)
			require.Equal(t, 1, as[0].AttemptNo)
			require.Equal(t, 200, *as[0].ResponseStatus)
			require.Equal(t, gen.AttemptOutcome("success"), as[0].Outcome)
			require.Equal(t, "127.0.0.1", *as[0].ResolvedIp)
			require.NotNil(t, as[0].TtfbMs)
			require.NotEmpty(t, as[0].RequestHeaders["X-Webhook-Signature"])

			// With two active keys the header carries both signatures.
			k2, err := e.a.client.CreateSigningKeyWithResponse(context.Background(), ep.Id)
			require.NoError(t, err)
			status, res2, _ := e.send(e.a.key, `{"endpoint_id":"`+ep.Id+`","payload":{"second":true}}`)
			require.Equal(t, http.StatusAccepted, status)
			got = rc.waitFor(t, 2, patience)[1]
			ts = got.header.Get("X-Webhook-Timestamp")
			sigs := strings.Split(got.header.Get("X-Webhook-Signature"), ",")
			require.ElementsMatch(t, []string{ownHMAC(ep.SigningSecret, ts, got.body), ownHMAC(k2.JSON201.Data.SigningSecret, ts, got.body)}, sigs)
			e.waitStatus(res2.MessageId, "succeeded", patience)

			// hmac_enabled=false sends no signature.
			_, err = e.a.client.UpdateEndpointWithResponse(context.Background(), ep.Id, gen.UpdateEndpointRequest{HmacEnabled: ptr(false)})
			require.NoError(t, err)
			e.send(e.a.key, `{"endpoint_id":"`+ep.Id+`","payload":{"third":true}}`)
			got = rc.waitFor(t, 3, patience)[2]
			require.Empty(t, got.header.Get("X-Webhook-Signature"))
			require.NotEmpty(t, got.header.Get("X-Webhook-Id"))
		})
	}
}

func TestDeliveryOutcomes(t *testing.T) {
	t.Parallel()
	e := setupWith(t, "postgres", options{receivers: true, engine: testEngineConfig()})
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		return "http://" + addr + "/refused"
	}()
	cases := []struct {
		name       string
		handle     func(n int, w http.ResponseWriter, r *http.Request)
		url        string
		final      gen.MessageStatus
		attempts   int
		statuses   []int
		minDelays  []time.Duration // between consecutive attempts
		retryTypes []string
		errorLike  string
	}{
		{name: "500Then200", handle: func(n int, w http.ResponseWriter, _ *http.Request) {
			if n == 0 {
				w.WriteHeader(500)
			}
		}, final: "succeeded", attempts: 2, statuses: []int{500, 200}, minDelays: []time.Duration{300 * time.Millisecond}, retryTypes: []string{"slow", ""}},
		{name: "429WithRetryAfter", handle: func(n int, w http.ResponseWriter, _ *http.Request) {
			if n == 0 {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(429)
			}
		}, final: "succeeded", attempts: 2, statuses: []int{429, 200}, minDelays: []time.Duration{time.Second}, retryTypes: []string{"fast", ""}},
		{name: "HangsPastTimeout", handle: func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 0 {
				select {
				case <-r.Context().Done(): // the attempt timed out
				case <-time.After(patience):
				}
				return
			}
		}, final: "succeeded", attempts: 2, statuses: []int{0, 200}, errorLike: "timeout"},
		{name: "ConnectionRefused", url: closed, final: "failed_permanent", attempts: 3, statuses: []int{0, 0, 0},
			minDelays: []time.Duration{300 * time.Millisecond, 600 * time.Millisecond}, retryTypes: []string{"slow", "slow", ""}, errorLike: "connection error"},
		{name: "Gone410", handle: func(int, http.ResponseWriter, *http.Request) {}, final: "failed_permanent", attempts: 1, statuses: []int{410}},
		{name: "BadRequest400", handle: func(int, http.ResponseWriter, *http.Request) {}, final: "failed_permanent", attempts: 1, statuses: []int{400}},
		{name: "Redirect301NotFollowed", handle: func(int, http.ResponseWriter, *http.Request) {}, final: "failed_permanent", attempts: 1, statuses: []int{301}, errorLike: "redirects are not followed"},
		{name: "AlwaysFailsUsesBudget", handle: func(int, http.ResponseWriter, *http.Request) {}, final: "failed_permanent", attempts: 3, statuses: []int{503, 503, 503}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			handle := c.handle
			switch c.name {
			case "Gone410":
				handle = func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(410) }
			case "BadRequest400":
				handle = func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(400) }
			case "Redirect301NotFollowed":
				handle = func(_ int, w http.ResponseWriter, r *http.Request) {
					http.Redirect(w, r, "http://127.0.0.1:1/elsewhere", http.StatusMovedPermanently)
				}
			case "AlwaysFailsUsesBudget":
				handle = func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }
			}
			url := c.url
			if url == "" {
				url = newReceiver(t, handle).url("/" + c.name)
			}
			ep := e.createEndpoint(e.a, url)
			status, res, _ := e.send(e.a.key, `{"endpoint_id":"`+ep.Id+`","payload":{"case":"`+c.name+`"}}`)
			require.Equal(t, http.StatusAccepted, status)
			m := e.waitStatus(res.MessageId, c.final, patience)
			require.Equal(t, c.attempts, m.AttemptCount)
			as := e.attempts(res.MessageId)
			require.Len(t, as, c.attempts)
			for i, a := range as {
				require.Equal(t, i+1, a.AttemptNo)
				if c.statuses[i] == 0 {
					require.Nil(t, a.ResponseStatus)
					require.NotNil(t, a.ErrorText)
					require.Contains(t, *a.ErrorText, c.errorLike)
				} else {
					require.Equal(t, c.statuses[i], *a.ResponseStatus)
				}
				if i < len(c.retryTypes) {
					if c.retryTypes[i] == "" {
						require.Nil(t, a.RetryType)
					} else {
						require.Equal(t, gen.AttemptRetryType(c.retryTypes[i]), *a.RetryType)
					}
				}
				if i > 0 && i-1 < len(c.minDelays) {
					gap := a.StartedAt.Sub(as[i-1].StartedAt)
					require.GreaterOrEqual(t, gap, c.minDelays[i-1], "wait before attempt %d", i+1)
				}
			}
			if c.final == "failed_permanent" {
				require.NotNil(t, m.LastError)
			}
			if c.errorLike != "" && c.final == "failed_permanent" {
				require.Contains(t, *m.LastError, c.errorLike)
			}
		})
	}
}

// TestDNSRebindingIsRefusedAtConnect: the name resolves to a public address
// when the endpoint is created and to 10.0.0.1 at delivery. The dialler
// refuses it, the attempt is recorded as permanent, and nothing is sent.
func TestDNSRebindingIsRefusedAtConnect(t *testing.T) {
	t.Parallel()
	e := setupWith(t, "sqlite", options{receivers: true, engine: testEngineConfig()})
	e.dns.Set("rebind.example.com", publicIP)
	ep := e.createEndpoint(e.a, "http://rebind.example.com:9/hook")
	e.dns.Set("rebind.example.com", "10.0.0.1")
	status, res, _ := e.send(e.a.key, `{"endpoint_id":"`+ep.Id+`","payload":{"x":1}}`)
	require.Equal(t, http.StatusAccepted, status)
	m := e.waitStatus(res.MessageId, "failed_permanent", patience)
	require.Equal(t, 1, m.AttemptCount)
	require.Contains(t, *m.LastError, "10.0.0.1")
	as := e.attempts(res.MessageId)
	require.Len(t, as, 1)
	require.Equal(t, gen.AttemptOutcome("permanent"), as[0].Outcome)
	require.Nil(t, as[0].ResolvedIp, "no connection was made")
	require.Nil(t, as[0].ResponseStatus)
	require.Contains(t, *as[0].ErrorText, "destination blocked")
}

// TestLongAnswersAreCutAt64KB keeps the first 64 KB of an answer, valid
// UTF-8, and says it was truncated.
func TestLongAnswersAreCutAt64KB(t *testing.T) {
	t.Parallel()
	e := setupWith(t, "sqlite", options{receivers: true, engine: testEngineConfig()})
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("é", 60*1024))) // 120 KB of 2-byte runes
	})
	ep := e.createEndpoint(e.a, rc.url("/long"))
	_, res, _ := e.send(e.a.key, `{"endpoint_id":"`+ep.Id+`","payload":{}}`)
	e.waitStatus(res.MessageId, "succeeded", patience)
	a := e.attempts(res.MessageId)[0]
	require.True(t, a.ResponseBodyTruncated)
	require.LessOrEqual(t, len(*a.ResponseBody), 64*1024)
	require.Greater(t, len(*a.ResponseBody), 60*1024)
	require.True(t, utf8.ValidString(*a.ResponseBody))
}

// TestShutdownDrainsInFlightAttempts stops the engine while slow attempts
// are in flight: they finish and are recorded, and nothing is left in
// delivering.
func TestShutdownDrainsInFlightAttempts(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, options{receivers: true, engine: testEngineConfig()}, func(t *testing.T, e *env) {
		// The attempts are held until the stop begins, so all five are in
		// flight when it does (a receiver that merely took 400 ms could
		// answer before a slow machine got to the stop).
		stopping := make(chan struct{})
		rc := newReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
			select {
			case <-stopping:
			case <-r.Context().Done():
			}
		})
		ep := e.createEndpoint(e.a, rc.url("/drain"))
		var ids []uuid.UUID
		for i := range 5 {
			_, r, _ := e.send(e.a.key, fmt.Sprintf(`{"endpoint_id":"%s","payload":{"i":%d}}`, ep.Id, i))
			ids = append(ids, r.MessageId)
		}
		rc.waitFor(t, 5, patience) // all five attempts are in flight
		close(stopping)
		e.stopEngine()
		for _, id := range ids {
			r, err := e.a.client.GetMessageWithResponse(context.Background(), id)
			require.NoError(t, err)
			require.Equal(t, gen.MessageStatus("succeeded"), r.JSON200.Data.Status, "the attempt in flight finished and was recorded")
		}
		var delivering, leased int
		require.NoError(t, e.store.DB().QueryRow("SELECT count(*) FROM messages WHERE status = 'delivering'").Scan(&delivering))
		require.Zero(t, delivering)
		require.NoError(t, e.store.DB().QueryRow("SELECT count(*) FROM messages WHERE lease_token IS NOT NULL").Scan(&leased))
		require.Zero(t, leased, "no message is left leased (handed over at send or claimed)")
	})
}

// TestWorkerLimitHolds: with 3 workers and no per-endpoint cap in the way,
// sends handed straight to workers and claims from the queue together never
// run more than 3 attempts at once, and every message is delivered exactly
// once — with handoff on (PostgreSQL) and off, and on SQLite (claims only).
// (The engine's slot accounting itself, which keeps a claim and a handoff
// from taking the same free worker, is not observable here: extra attempts
// would wait for a worker goroutine rather than run.)
func TestWorkerLimitHolds(t *testing.T) {
	t.Parallel()
	for _, handoff := range []bool{true, false} {
		cfg := testEngineConfig()
		cfg.Workers, cfg.EndpointConcurrency, cfg.NoHandoff = 3, 100, !handoff
		// The first attempts wait for each other (below): they must not
		// time out meanwhile.
		cfg.AttemptTimeout, cfg.Lease = time.Minute, 2*time.Minute
		t.Run(fmt.Sprintf("handoff=%v", handoff), func(t *testing.T) {
			t.Parallel()
			forEachDialectWith(t, options{receivers: true, engine: cfg}, func(t *testing.T, e *env) {
				var mu sync.Mutex
				running, most := 0, 0
				// Attempts are held until the engine has had all its workers
				// busy at once (the first three wait for each other; later
				// ones go straight through), so the test knows the workers ran
				// in parallel, and the limit is tested while all are taken,
				// instead of hoping a 20 ms pause in the receiver made them
				// overlap.
				full := make(chan struct{})
				rc := newReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
					mu.Lock()
					running++
					most = max(most, running)
					if running == cfg.Workers {
						select {
						case <-full:
						default:
							close(full)
						}
					}
					mu.Unlock()
					select {
					case <-full:
					case <-r.Context().Done():
					}
					mu.Lock()
					running--
					mu.Unlock()
				})
				ep := e.createEndpoint(e.a, rc.url("/cap"))
				const senders, each = 10, 10
				var wg sync.WaitGroup
				type answer struct {
					status int
					err    error
				}
				answers := make(chan answer, senders*each)
				for s := range senders {
					wg.Go(func() { // no require here: it must run on the test goroutine
						for i := range each {
							r, err := e.a.client.SendWebhookWithResponse(context.Background(), gen.SendRequest{
								EndpointId: ep.Id, Payload: []byte(fmt.Sprintf(`{"s":%d,"i":%d}`, s, i))})
							if err != nil {
								answers <- answer{err: err}
								continue
							}
							answers <- answer{status: r.StatusCode()}
						}
					})
				}
				wg.Wait()
				close(answers)
				for a := range answers {
					require.NoError(t, a.err)
					require.Equal(t, http.StatusAccepted, a.status)
				}
				got := rc.waitFor(t, senders*each, patience)
				seen := map[string]int{}
				for _, r := range got {
					seen[r.header.Get("X-Webhook-Id")]++
				}
				require.Len(t, seen, senders*each)
				for id, n := range seen {
					require.Equal(t, 1, n, "message %s delivered once", id)
				}
				mu.Lock()
				defer mu.Unlock()
				require.Equal(t, 3, most, "attempts at once: all the workers, never more")
			})
		})
	}
}
