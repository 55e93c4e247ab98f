package inbound

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestForwardHeadersDropsHopByHopAndTheTokenHeader(t *testing.T) {
	h := http.Header{}
	h.Set("Connection", "keep-alive")
	h.Set("Transfer-Encoding", "chunked")
	h.Set("Host", "hooks.example.com")
	h.Set("Content-Length", "12")
	h.Set("X-Api-Token", "secret")
	h.Set("Content-Type", "application/json")
	h.Add("X-Multi", "a")
	h.Add("X-Multi", "b")
	got := ForwardHeaders(h, "x-api-token")
	require.Equal(t, map[string]string{"Content-Type": "application/json", "X-Multi": "a, b"}, got)
}

func TestRedactHeaders(t *testing.T) {
	got := RedactHeaders(map[string]string{
		"Authorization": "Bearer x", "Stripe-Signature": "t=1,v1=ab", "X-Custom-Secret-Name": "v", "X-Hub-Signature-256": "sha256=00",
		"X-My-Key": "k", "Content-Type": "application/json", "X-Github-Event": "ping",
	}, "X-My-Key")
	require.Equal(t, map[string]string{
		"Authorization": Redacted, "Stripe-Signature": Redacted, "X-Custom-Secret-Name": Redacted, "X-Hub-Signature-256": Redacted,
		"X-My-Key": Redacted, "Content-Type": "application/json", "X-Github-Event": "ping",
	}, got)
}

func TestIdempotencyKey(t *testing.T) {
	h := http.Header{}
	h.Set("X-Second", "two")
	require.Empty(t, IdempotencyKey(h, []string{"X-First"}))
	require.Equal(t, "x-second:two", IdempotencyKey(h, []string{"X-First", "X-Second"}), "the first present header wins")
	h.Set("X-First", strings.Repeat("v", 300))
	k := IdempotencyKey(h, []string{"X-First", "X-Second"})
	require.True(t, strings.HasPrefix(k, "x-first:sha256:"), k)
	require.Len(t, k, len("x-first:sha256:")+64)
}

func TestCheckSource(t *testing.T) {
	c := Config{AllowedNets: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::/32")}}
	require.Nil(t, c.CheckSource(netip.MustParseAddr("192.0.2.7")))
	require.Nil(t, c.CheckSource(netip.MustParseAddr("::ffff:192.0.2.7")), "a v4-mapped address is its v4 address")
	require.Nil(t, c.CheckSource(netip.MustParseAddr("2001:db8::1")))
	rej := c.CheckSource(netip.MustParseAddr("198.51.100.1"))
	require.NotNil(t, rej)
	require.Equal(t, http.StatusForbidden, rej.Status)
	require.Nil(t, Config{}.CheckSource(netip.MustParseAddr("198.51.100.1")), "no allow-list: every address")
}

func TestStaticTokenHeaderThenQuery(t *testing.T) {
	sum := sha256.Sum256([]byte("tok"))
	c := Config{TokenHash: sum[:], TokenHeader: "X-Token", TokenQuery: "token"}
	now := time.Now()
	h := http.Header{}
	h.Set("X-Token", "tok")
	require.Nil(t, c.Verify(Request{Header: h}, now))
	require.Nil(t, c.Verify(Request{Header: http.Header{}, Query: map[string][]string{"token": {"tok"}}}, now))
	rej := c.Verify(Request{Header: http.Header{}}, now)
	require.NotNil(t, rej)
	require.Equal(t, "invalid_static_token", rej.Reason)
}

func TestTimestampWindowBothWays(t *testing.T) {
	c := Config{TimestampHeader: "X-Ts", TimestampTTL: time.Minute}
	now := time.Unix(1_800_000_000, 0)
	rfc := now.UTC().Add(-30 * time.Second).Format(time.RFC3339)
	for ts, ok := range map[string]bool{"1800000000": true, "1799999941": true, "1799999939": false, "1800000061": false, "soon": false, "": false, rfc: true} {
		h := http.Header{}
		h.Set("X-Ts", ts)
		rej := c.Verify(Request{Header: h}, now)
		require.Equal(t, ok, rej == nil, "timestamp %q", ts)
	}
}

func TestStripeSignatureNeedsFreshTimestamp(t *testing.T) {
	c := Config{Provider: Stripe, HMACSecret: []byte("whsec_x")}
	body := []byte(`{"id":"evt"}`)
	old := time.Now().Add(-10 * time.Minute)
	ts := strconv.FormatInt(old.Unix(), 10)
	h := http.Header{}
	h.Set("Stripe-Signature", "t="+ts+",v1=00,v1="+hex.EncodeToString(c.mac([]byte(ts), []byte{'.'}, body)))
	require.Nil(t, c.Verify(Request{Header: h, Body: body}, old), "valid at its own time")
	rej := c.Verify(Request{Header: h, Body: body}, time.Now())
	require.NotNil(t, rej)
	require.Equal(t, "timestamp_expired", rej.Reason)
}
