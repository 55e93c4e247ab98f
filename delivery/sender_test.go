package delivery

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/internal/fakedns"
	"github.com/hookd/hookd/netguard"
)

// TestSenderIgnoresProxyVariables: with HTTP_PROXY and HTTPS_PROXY set, an
// attempt still goes straight to the receiver (whose address the dialler
// checked), never through the proxy. The receiver is named by a host name,
// not 127.0.0.1: Go never proxies loopback addresses anyway.
func TestSenderIgnoresProxyVariables(t *testing.T) {
	var proxied, received atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		proxied.Add(1)
		w.WriteHeader(http.StatusTeapot)
	}))
	defer proxy.Close()
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		received.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("HTTPS_PROXY", proxy.URL)
	t.Setenv("NO_PROXY", "")

	dns := fakedns.New()
	dns.Set("receiver.example.com", "127.0.0.1")
	s, err := NewSender(SenderOptions{Policy: &netguard.Policy{Resolver: dns, AllowHTTP: true,
		AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}})
	require.NoError(t, err)
	u, err := url.Parse(receiver.URL)
	require.NoError(t, err)
	res := s.Do(context.Background(), Request{URL: "http://receiver.example.com:" + u.Port() + "/hook", Body: []byte(`{}`),
		Headers: http.Header{"Content-Type": {"application/json"}}, Timeout: 5 * time.Second})
	require.NoError(t, res.Err)
	require.Equal(t, http.StatusNoContent, res.Status)
	require.Equal(t, int32(1), received.Load())
	require.Zero(t, proxied.Load(), "the proxy variables were used")
}

// TestSenderDialsLocalhostOnlyUnderTheAllowList: the per-connection check
// treats a localhost endpoint like any other name. Under a development
// allow-list of 127.0.0.1/32 it connects to 127.0.0.1, skipping the ::1
// the name also resolves to; a process started without the allow-list
// refuses the same endpoint at connect time (it may have been created while
// the allow-list was on).
func TestSenderDialsLocalhostOnlyUnderTheAllowList(t *testing.T) {
	var received atomic.Int32
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		received.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()
	u, err := url.Parse(receiver.URL)
	require.NoError(t, err)
	target := "http://localhost:" + u.Port() + "/hooks"
	dns := fakedns.New()
	dns.Set("localhost", "::1", "127.0.0.1")
	send := func(p *netguard.Policy) Result {
		s, err := NewSender(SenderOptions{Policy: p})
		require.NoError(t, err)
		defer s.CloseIdle()
		return s.Do(context.Background(), Request{URL: target, Body: []byte(`{}`),
			Headers: http.Header{"Content-Type": {"application/json"}}, Timeout: 5 * time.Second})
	}

	dev := &netguard.Policy{Resolver: dns, AllowHTTP: true, AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}
	_, err = dev.CheckURL(context.Background(), target)
	require.NoError(t, err, "the endpoint is accepted under the allow-list")
	res := send(dev)
	require.NoError(t, res.Err)
	require.Equal(t, http.StatusNoContent, res.Status)
	require.Equal(t, "127.0.0.1", res.ResolvedIP)
	require.Equal(t, int32(1), received.Load())

	res = send(&netguard.Policy{Resolver: dns, AllowHTTP: true})
	require.True(t, res.Blocked, "without the allow-list localhost is refused at connect time: %v", res.Err)
	require.Zero(t, res.Status)
	require.Equal(t, int32(1), received.Load(), "nothing reached the receiver")
}
