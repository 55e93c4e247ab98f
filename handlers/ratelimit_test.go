package handlers_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/handlers"
	"github.com/hookd/hookd/store"
)

// limited returns options whose server runs on clock, adjusted by more.
func limited(clock *clock, more func(*handlers.Server)) options {
	return options{server: func(s *handlers.Server) {
		s.LimitClock = clock.Now
		if more != nil {
			more(s)
		}
	}}
}

// getPlain fetches an unsecured, non-API path (no envelope to check).
func getPlain(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	readAll(t, resp)
	return resp.StatusCode
}

// clientFrom is a generated client whose connections come from local
// address from (any 127.0.0.0/8 address reaches the test server) and whose
// requests carry X-Forwarded-For xff when not empty.
func (e *env) clientFrom(key, from, xff string) *gen.ClientWithResponses {
	e.t.Helper()
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	tr := &http.Transport{DialContext: dialer.DialContext}
	e.t.Cleanup(tr.CloseIdleConnections)
	c, err := gen.NewClientWithResponses(e.url,
		gen.WithHTTPClient(&http.Client{Transport: &contractCheck{t: e.t, next: tr}}),
		gen.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			if key != "" {
				req.Header.Set("Authorization", "Bearer "+key)
			}
			if xff != "" {
				req.Header.Set("X-Forwarded-For", xff)
			}
			return nil
		}))
	require.NoError(e.t, err)
	return c
}

// listKeys makes one management request and returns its status, error code
// and Retry-After header.
func listKeys(t *testing.T, c *gen.ClientWithResponses) (int, string, string) {
	t.Helper()
	r, err := c.ListApiKeysWithResponse(context.Background())
	require.NoError(t, err)
	code := ""
	if r.JSON429 != nil {
		code = r.JSON429.Error.Code
	} else if r.JSON401 != nil {
		code = r.JSON401.Error.Code
	}
	return r.StatusCode(), code, r.HTTPResponse.Header.Get("Retry-After")
}

func send(t *testing.T, c *gen.ClientWithResponses, endpointID string) (int, string, string) {
	t.Helper()
	r, err := c.SendWebhookWithResponse(context.Background(), gen.SendRequest{EndpointId: endpointID, Payload: []byte(`{"n":1}`)})
	require.NoError(t, err)
	code := ""
	if r.JSON429 != nil {
		code = r.JSON429.Error.Code
		require.Equal(t, "send", (*r.JSON429.Error.Details)["scope"])
	}
	return r.StatusCode(), code, r.HTTPResponse.Header.Get("Retry-After")
}

func setLimits(t *testing.T, e *env, tn tenant, u store.ProjectSettings) {
	t.Helper()
	_, err := e.store.UpdateProjectSettings(context.Background(), tn.project.Name, u)
	require.NoError(t, err)
}

// TestDefaultRateLimitIs1000PerMinute: with no setting anywhere a project
// makes 1,000 management requests in a minute; the 1,001st answers 429
// BURST_LIMIT_EXCEEDED with Retry-After 1 (a token every 60 ms), another
// project is unaffected, and 60 ms later one request goes through again.
func TestDefaultRateLimitIs1000PerMinute(t *testing.T) {
	t.Parallel()
	clock := newClockAt(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	e := setupWith(t, "sqlite", limited(clock, nil))
	// Plain requests for speed; the 1,001st goes through the generated
	// client and the contract check.
	// The first 1,000 go straight into a router of the same server (same
	// limits), skipping the HTTP round trips that make this slow under the
	// race detector.
	router, err := handlers.NewRouter(e.server)
	require.NoError(t, err)
	for i := range 1000 {
		req := httptest.NewRequest(http.MethodGet, "/v1/api-keys", nil)
		req.Header.Set("Authorization", "Bearer "+e.a.key)
		rec := httptest.NewRecorder()
		router.ServeHTTP(rec, req)
		require.Equal(t, http.StatusOK, rec.Code, "request %d", i+1)
	}
	r, err := e.a.client.ListApiKeysWithResponse(context.Background())
	require.NoError(t, err)
	require.Equal(t, http.StatusTooManyRequests, r.StatusCode(), string(r.Body))
	require.Equal(t, "BURST_LIMIT_EXCEEDED", r.JSON429.Error.Code)
	require.Equal(t, "1", r.HTTPResponse.Header.Get("Retry-After"))
	require.Contains(t, r.JSON429.Error.Message, "1000 management API requests per minute")
	d := *r.JSON429.Error.Details
	require.InDelta(t, 1000, d["limit_per_minute"], 0)
	require.Equal(t, "management", d["scope"])

	status, _, _ := listKeys(t, e.b.client)
	require.Equal(t, http.StatusOK, status, "another project has its own bucket")

	clock.Advance(59 * time.Millisecond)
	status, _, _ = listKeys(t, e.a.client)
	require.Equal(t, http.StatusTooManyRequests, status)
	clock.Advance(time.Millisecond)
	status, _, _ = listKeys(t, e.a.client)
	require.Equal(t, http.StatusOK, status, "one token is back after 60 ms")
	status, _, _ = listKeys(t, e.a.client)
	require.Equal(t, http.StatusTooManyRequests, status)
}

// TestProjectRateLimit: a project's own limit (3 a minute here) replaces
// the default; Retry-After is the time until the next token, to the
// second; the window refills; the other project keeps the default; and
// the probes are never limited.
func TestProjectRateLimit(t *testing.T) {
	t.Parallel()
	forEachDialectOnClock(t, newClockAt(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)), func(c *clock) options { return limited(c, nil) }, func(t *testing.T, e *env, clock *clock) {
		setLimits(t, e, e.a, store.ProjectSettings{RateLimitPerMinute: ptr(3)})
		for range 3 {
			status, _, _ := listKeys(t, e.a.client)
			require.Equal(t, http.StatusOK, status)
		}
		status, code, retry := listKeys(t, e.a.client)
		require.Equal(t, http.StatusTooManyRequests, status)
		require.Equal(t, "BURST_LIMIT_EXCEEDED", code)
		require.Equal(t, "20", retry, "3 a minute: one every 20 s")

		// Every kind of management request counts, and is refused alike.
		ep, err := e.a.client.CreateEndpointWithResponse(context.Background(), gen.CreateEndpointRequest{Url: "https://hooks.example.com/x"})
		require.NoError(t, err)
		require.Equal(t, http.StatusTooManyRequests, ep.StatusCode())
		for _, path := range []string{"/healthz", "/readyz"} {
			status, _, _ := e.do(http.MethodGet, path, e.a.key, "", nil)
			require.Equal(t, http.StatusOK, status, path)
		}
		for _, path := range []string{"/openapi.json", "/openapi.yaml", "/docs/"} {
			require.Equal(t, http.StatusOK, getPlain(t, e.url+path), path)
		}
		for range 5 {
			status, _, _ := listKeys(t, e.b.client)
			require.Equal(t, http.StatusOK, status, "project b is not limited by a's use")
		}

		clock.Advance(19 * time.Second)
		_, _, retry = listKeys(t, e.a.client)
		require.Equal(t, "1", retry)
		clock.Advance(time.Second)
		status, _, _ = listKeys(t, e.a.client)
		require.Equal(t, http.StatusOK, status, "a token is back after 20 s")
		_, _, retry = listKeys(t, e.a.client)
		require.Equal(t, "20", retry)

		clock.Advance(time.Minute)
		for range 3 {
			status, _, _ := listKeys(t, e.a.client)
			require.Equal(t, http.StatusOK, status, "a whole minute refills the whole burst")
		}
		status, _, _ = listKeys(t, e.a.client)
		require.Equal(t, http.StatusTooManyRequests, status, "and no more than the burst")
	})
}

// TestChangedProjectLimitAppliesWithinTheCacheTTL: limits come with the
// cached API-key lookup, so a change in the database applies once the
// cache entry expires (AuthCacheTTL), without a restart.
func TestChangedProjectLimitAppliesWithinTheCacheTTL(t *testing.T) {
	t.Parallel()
	forEachDialectOnClock(t, newClockAt(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)), func(c *clock) options { return limited(c, nil) }, func(t *testing.T, e *env, clock *clock) {
		status, _, _ := listKeys(t, e.a.client) // caches the key with the default limit
		require.Equal(t, http.StatusOK, status)
		setLimits(t, e, e.a, store.ProjectSettings{RateLimitPerMinute: ptr(1)})
		status, _, _ = listKeys(t, e.a.client)
		require.Equal(t, http.StatusOK, status, "the cached lookup still has the default limit")

		clock.Advance(handlers.AuthCacheTTL + time.Millisecond)
		status, _, _ = listKeys(t, e.a.client)
		require.Equal(t, http.StatusOK, status)
		status, code, retry := listKeys(t, e.a.client)
		require.Equal(t, http.StatusTooManyRequests, status)
		require.Equal(t, "BURST_LIMIT_EXCEEDED", code)
		require.Equal(t, "60", retry)

		setLimits(t, e, e.a, store.ProjectSettings{RateLimitPerMinute: ptr(0)})
		clock.Advance(handlers.AuthCacheTTL + time.Millisecond)
		status, _, _ = listKeys(t, e.a.client)
		require.Equal(t, http.StatusOK, status, "0 is the server default (1000) again")
	})
}

// TestSendRateLimit: sends are not limited by default and do not use the
// management budget; a send limit set on the project (through the store,
// as `hookd project update` does) applies to sends only.
func TestSendRateLimit(t *testing.T) {
	t.Parallel()
	forEachDialectOnClock(t, newClockAt(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)), func(c *clock) options { return limited(c, func(s *handlers.Server) { s.RateLimitDefault = 2 }) }, func(t *testing.T, e *env, clock *clock) {
		ep := e.createEndpoint(e.a, "https://hooks.example.com/send") // management request 1 of 2
		for i := range 25 {
			status, _, _ := send(t, e.a.client, ep.Id)
			require.Equal(t, http.StatusAccepted, status, "send %d", i+1)
		}
		status, _, _ := listKeys(t, e.a.client)
		require.Equal(t, http.StatusOK, status, "sends did not use the management budget")
		status, code, retry := listKeys(t, e.a.client)
		require.Equal(t, http.StatusTooManyRequests, status)
		require.Equal(t, "BURST_LIMIT_EXCEEDED", code)
		require.Equal(t, "30", retry, "the server default applies: 2 a minute")

		setLimits(t, e, e.a, store.ProjectSettings{SendRateLimitPerMinute: ptr(2)})
		clock.Advance(handlers.AuthCacheTTL + time.Millisecond)
		for range 2 {
			status, _, _ := send(t, e.a.client, ep.Id)
			require.Equal(t, http.StatusAccepted, status)
		}
		status, code, retry = send(t, e.a.client, ep.Id)
		require.Equal(t, http.StatusTooManyRequests, status)
		require.Equal(t, "BURST_LIMIT_EXCEEDED", code)
		require.Equal(t, "30", retry)
		var n int
		require.NoError(t, e.store.DB().QueryRow("SELECT count(*) FROM messages WHERE project_id = '"+e.a.project.ID+"'").Scan(&n))
		require.Equal(t, 27, n, "the refused send stored nothing")

		epB := e.createEndpoint(e.b, "https://hooks.example.com/send")
		for range 5 {
			status, _, _ := send(t, e.b.client, epB.Id)
			require.Equal(t, http.StatusAccepted, status, "project b has no send limit")
		}
	})
}

// TestRepeatedFailedAuthenticationIsRateLimited: after 20 failed
// authentications in a minute from one address, that address gets 429
// RATE_LIMITED with Retry-After — even with a good key, which is not even
// looked up — while a good key from another address works, and the probes
// stay open.
func TestRepeatedFailedAuthenticationIsRateLimited(t *testing.T) {
	t.Parallel()
	forEachDialectOnClock(t, newClockAt(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)), func(c *clock) options { return limited(c, nil) }, func(t *testing.T, e *env, clock *clock) {
		bad := []string{"", "hk_live_short", "hk_live_" + strings.Repeat("A", 32), "hk_test_" + strings.Repeat("B", 32)}
		for i := range 20 {
			status, code, _ := listKeys(t, e.clientFrom(bad[i%len(bad)], "127.0.0.1", ""))
			require.Equal(t, http.StatusUnauthorized, status, "failure %d", i+1)
			require.Equal(t, "UNAUTHORIZED", code)
		}
		status, code, retry := listKeys(t, e.clientFrom(bad[2], "127.0.0.1", ""))
		require.Equal(t, http.StatusTooManyRequests, status)
		require.Equal(t, "RATE_LIMITED", code)
		require.Equal(t, "3", retry, "20 a minute: one more every 3 s")

		// The good key from the same address is refused before any lookup:
		// the key's last_used_at (written by a lookup) stays empty.
		status, code, _ = listKeys(t, e.clientFrom(e.a.key, "127.0.0.1", ""))
		require.Equal(t, http.StatusTooManyRequests, status)
		require.Equal(t, "RATE_LIMITED", code)
		var used int
		require.NoError(t, e.store.DB().QueryRow("SELECT count(*) FROM api_keys WHERE project_id = '"+e.a.project.ID+"' AND last_used_at IS NOT NULL").Scan(&used))
		require.Zero(t, used)

		status, _, _ = listKeys(t, e.clientFrom(e.a.key, "127.0.0.2", ""))
		require.Equal(t, http.StatusOK, status, "a good key from another address is unaffected")
		status, code, _ = listKeys(t, e.clientFrom(bad[2], "127.0.0.2", ""))
		require.Equal(t, http.StatusUnauthorized, status, "another address has its own count")
		require.Equal(t, "UNAUTHORIZED", code)
		for _, path := range []string{"/healthz", "/readyz"} {
			status, _, _ := e.do(http.MethodGet, path, "", "", nil)
			require.Equal(t, http.StatusOK, status, path)
		}
		require.Equal(t, http.StatusOK, getPlain(t, e.url+"/openapi.yaml"))

		clock.Advance(3 * time.Second)
		status, _, _ = listKeys(t, e.clientFrom(e.a.key, "127.0.0.1", ""))
		require.Equal(t, http.StatusOK, status, "after Retry-After the address may try again")
		status, _, _ = listKeys(t, e.clientFrom(bad[1], "127.0.0.1", ""))
		require.Equal(t, http.StatusUnauthorized, status)
		status, _, _ = listKeys(t, e.clientFrom(bad[1], "127.0.0.1", ""))
		require.Equal(t, http.StatusTooManyRequests, status, "that was the one failure the 3 s gave back")
	})
}

// TestClientAddressBehindTrustedProxies: X-Forwarded-For names the client
// only when the peer is a trusted proxy; IPv6 clients are counted by /64;
// without trusted proxies the header is ignored, so forging it does not
// escape the limit.
func TestClientAddressBehindTrustedProxies(t *testing.T) {
	t.Parallel()
	bad := "hk_live_" + strings.Repeat("C", 32)
	t.Run("Trusted", func(t *testing.T) {
		t.Parallel()
		e := setupWith(t, "sqlite", limited(newClockAt(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)), func(s *handlers.Server) {
			s.AuthFailureLimit = 2
			s.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		}))
		for _, xff := range []string{"198.51.100.7", "10.9.8.7, 198.51.100.7"} {
			status, _, _ := listKeys(t, e.clientFrom(bad, "127.0.0.1", xff))
			require.Equal(t, http.StatusUnauthorized, status)
		}
		status, code, _ := listKeys(t, e.clientFrom(bad, "127.0.0.1", "198.51.100.7"))
		require.Equal(t, http.StatusTooManyRequests, status)
		require.Equal(t, "RATE_LIMITED", code)
		status, _, _ = listKeys(t, e.clientFrom(e.a.key, "127.0.0.1", "198.51.100.8"))
		require.Equal(t, http.StatusOK, status, "another client behind the same proxy")
		// A peer that is not a trusted proxy is the client, whatever it forwards.
		status, _, _ = listKeys(t, e.clientFrom(e.a.key, "127.0.0.3", "198.51.100.7"))
		require.Equal(t, http.StatusOK, status)

		for _, xff := range []string{"2001:db8:1:2::1", "2001:db8:1:2::ffff"} {
			status, _, _ := listKeys(t, e.clientFrom(bad, "127.0.0.1", xff))
			require.Equal(t, http.StatusUnauthorized, status)
		}
		status, _, _ = listKeys(t, e.clientFrom(e.a.key, "127.0.0.1", "2001:db8:1:2::abcd"))
		require.Equal(t, http.StatusTooManyRequests, status, "one IPv6 /64 is one client")
		status, _, _ = listKeys(t, e.clientFrom(e.a.key, "127.0.0.1", "2001:db8:1:3::1"))
		require.Equal(t, http.StatusOK, status, "the next /64 is another")
	})
	t.Run("NotTrusted", func(t *testing.T) {
		t.Parallel()
		e := setupWith(t, "sqlite", limited(newClockAt(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)), func(s *handlers.Server) { s.AuthFailureLimit = 2 }))
		for _, xff := range []string{"198.51.100.1", "198.51.100.2"} {
			status, _, _ := listKeys(t, e.clientFrom(bad, "127.0.0.1", xff))
			require.Equal(t, http.StatusUnauthorized, status)
		}
		status, _, _ := listKeys(t, e.clientFrom(e.a.key, "127.0.0.1", "198.51.100.3"))
		require.Equal(t, http.StatusTooManyRequests, status, "a forged X-Forwarded-For does not change the client")
	})
	t.Run("Disabled", func(t *testing.T) {
		t.Parallel()
		e := setupWith(t, "sqlite", limited(newClockAt(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)), func(s *handlers.Server) { s.AuthFailureLimit = -1 }))
		for range 30 {
			status, _, _ := listKeys(t, e.clientFrom(bad, "127.0.0.1", ""))
			require.Equal(t, http.StatusUnauthorized, status)
		}
	})
}
