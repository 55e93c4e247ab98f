package netguard

import (
	"context"
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/internal/fakedns"
)

// fakeResolver answers from a map; a missing name does not resolve.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	ss, ok := f[host]
	if !ok {
		return nil, errors.New("no such host")
	}
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	res := fakeResolver{
		"hooks.example.com": {"93.184.216.34"},
		"v6.example.com":    {"2606:2800:220:1:248:1893:25c8:1946"},
		"mixed.example.com": {"93.184.216.34", "10.1.2.3"},
		"meta.example.com":  {"169.254.169.254"},
		"empty.example.com": {},
	}
	p := &Policy{Resolver: res}
	cases := []struct {
		url  string
		want error
	}{
		{"https://hooks.example.com/webhooks", nil},
		{"https://93.184.216.34/hooks", nil},
		{"https://v6.example.com:8443/x", nil},
		{"https://[2606:2800:220:1:248:1893:25c8:1946]/x", nil},
		{"HTTPS://Hooks.Example.com/x", nil},
		{"http://hooks.example.com/x", ErrInvalidURL},
		{"ftp://hooks.example.com/x", ErrInvalidURL},
		{"https://a.b", ErrInvalidURL}, // 11 characters
		{"https://hooks.example.com/" + strings.Repeat("a", 2048), ErrInvalidURL},
		{"https:opaque-thing-here", ErrInvalidURL},
		{"https:///no-host/path", ErrInvalidURL},
		{"https://hooks.example.com:0/x", ErrInvalidURL},
		{"https://hooks.example.com:70000/x", ErrInvalidURL},
		{"https://1.2.3.256/x", ErrInvalidURL},
		{"https://[fe80::1%25eth0]/x", ErrInvalidURL},
		{"https://hooks .example.com/x", ErrInvalidURL},
		{"https://hooks.example.com/z z", ErrInvalidURL},
		{"https://hooks.example.com/x#frag", ErrInvalidURL},
		{"https://hooks.example.com/x\ty", ErrInvalidURL},
		{"https://nowhere.example.com/x", ErrUnreachable},
		{"https://empty.example.com/x", ErrUnreachable},
		{"https://mixed.example.com/x", ErrBlocked},
		{"https://meta.example.com/latest", ErrBlocked},
		{"https://localhost/x", ErrBlocked},
		{"https://api.localhost./x", ErrBlocked},
		{"https://hooks.example.com./x", nil},            // one trailing dot: the root
		{"https://hooks.example.com../x", ErrInvalidURL}, // checked as "hooks.example.com.", dialled as itself
		{"https://hooks..example.com/x", ErrInvalidURL},  // empty label
		{"https://.hooks.example.com/x", ErrInvalidURL},  // empty label
		{"https://./x/abcdefgh", ErrInvalidURL},          // the root alone
		{"https://127.0.0.1/x", ErrBlocked},
		{"https://127.1/x", ErrBlocked},
		{"https://2130706433/x", ErrBlocked},   // decimal 127.0.0.1
		{"https://0x7f000001/x", ErrBlocked},   // hex
		{"https://0177.0.0.1/x", ErrBlocked},   // octal
		{"https://0x7f.0.0.1/x", ErrBlocked},   // mixed
		{"https://017700000001/x", ErrBlocked}, // octal, one part
		{"https://10.0.0.1/x", ErrBlocked},
		{"https://172.16.5.4/x", ErrBlocked},
		{"https://172.31.255.255/x", ErrBlocked},
		{"https://192.168.1.1/x", ErrBlocked},
		{"https://100.64.0.1/x", ErrBlocked},
		{"https://198.18.0.1/x", ErrBlocked},
		{"https://169.254.169.254/x", ErrBlocked},
		{"https://224.0.0.1/x", ErrBlocked},
		{"https://240.0.0.1/x", ErrBlocked},
		{"https://255.255.255.255/x", ErrBlocked},
		{"https://0.0.0.0/x", ErrBlocked},
		{"https://[::1]/x", ErrBlocked},
		{"https://[::]/x", ErrBlocked},
		{"https://[::ffff:127.0.0.1]/x", ErrBlocked},            // IPv4-mapped
		{"https://[::ffff:7f00:1]/x", ErrBlocked},               // IPv4-mapped, hex
		{"https://[::10.0.0.1]/x", ErrBlocked},                  // IPv4-compatible
		{"https://[64:ff9b::a00:1]/x", ErrBlocked},              // NAT64 of 10.0.0.1
		{"https://[64:ff9b::5db8:d822]/x", nil},                 // NAT64 of a public address
		{"https://[2002:c0a8:0101::1]/x", ErrBlocked},           // 6to4 of 192.168.1.1
		{"https://[2002:5db8:d822::1]/x", nil},                  // 6to4 of a public address
		{"https://[2001:0:5db8:d822::f5ff:fffe]/x", ErrBlocked}, // Teredo, client 10.0.0.1
		{"https://[fd00::1]/x", ErrBlocked},
		{"https://[fe80::1]/x", ErrBlocked},
		{"https://[ff02::1]/x", ErrBlocked},
		{"https://8.8.8.8/x", nil},
		{"https://134744072/x", ErrInvalidURL},         // decimal 8.8.8.8: public, but spelled oddly
		{"https://0x5db8d822/hooks", ErrInvalidURL},    // hex 93.184.216.34
		{"https://093.184.216.34/x", ErrInvalidURL},    // octal first part
		{"https://[::ffff:0:127.0.0.1]/x", ErrBlocked}, // IPv4-translated
		{"https://[::ffff:0:a00:1]/x", ErrBlocked},     // IPv4-translated 10.0.0.1
		{"https://192.0.2.1/x", ErrBlocked},
		{"https://198.51.100.7/x", ErrBlocked},
		{"https://203.0.113.9/x", ErrBlocked},
		{"https://[2001:db8::1]/x", ErrBlocked},
		{"https://user:s3cret@93.184.216.34/x", ErrInvalidURL},
		{"https://user@hooks.example.com/x", ErrInvalidURL},
		{"https://[2606:2800:220:1:248:1893:25C8:1946]/x", nil}, // IPv6 case is unified by Normalize
	}
	for _, c := range cases {
		_, err := p.CheckURL(context.Background(), c.url)
		if c.want == nil {
			require.NoError(t, err, c.url)
			continue
		}
		require.ErrorIs(t, err, c.want, c.url)
	}
}

func TestDevelopmentAllowList(t *testing.T) {
	t.Parallel()
	cidrs, err := ParseCIDRs("127.0.0.1/32, ::1")
	require.NoError(t, err)
	p := &Policy{Resolver: fakeResolver{}, AllowHTTP: true, AllowCIDRs: cidrs}
	require.True(t, p.Development())

	for _, ok := range []string{"http://127.0.0.1:9000/hook", "https://127.0.0.1/x", "http://[::1]:9000/x"} {
		_, err := p.CheckURL(context.Background(), ok)
		require.NoError(t, err, ok)
	}
	for _, blocked := range []string{"http://127.0.0.2/x", "http://10.0.0.1/x", "http://169.254.169.254/x"} {
		_, err := p.CheckURL(context.Background(), blocked)
		require.ErrorIs(t, err, ErrBlocked, blocked)
	}
	_, err = p.CheckURL(context.Background(), "ftp://127.0.0.1/x")
	require.ErrorIs(t, err, ErrInvalidURL)

	_, err = ParseCIDRs("127.0.0.1/33")
	require.Error(t, err)
	_, err = ParseCIDRs("nonsense")
	require.Error(t, err)
	_, err = ParseCIDRs("0.0.0.0/0")
	require.Error(t, err, "an allow-list of everything is refused")
	_, err = ParseCIDRs("::/0")
	require.Error(t, err)
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	same := []string{
		"https://hooks.example.com/",
		"HTTPS://HOOKS.example.com:443/",
		"https://hooks.example.com",
		"https://hooks.example.com./",
	}
	for _, s := range same {
		u, err := url.Parse(s)
		require.NoError(t, err)
		require.Equal(t, "https://hooks.example.com/", Normalize(u), s)
	}
	v6a, _ := url.Parse("https://[2606:2800::0001]/x")
	v6b, _ := url.Parse("https://[2606:2800::1]:443/x")
	require.Equal(t, Normalize(v6a), Normalize(v6b))
	u, _ := url.Parse("https://hooks.example.com:8443/A?b=1")
	require.Equal(t, "https://hooks.example.com:8443/A?b=1", Normalize(u), "path and query case kept")
}

// TestUnroutedIPv6RangesAreBlocked: IANA special-purpose IPv6 ranges that
// are not routed on the internet are refused, first and last address,
// while their public neighbours stay allowed.
func TestUnroutedIPv6RangesAreBlocked(t *testing.T) {
	t.Parallel()
	p := &Policy{Resolver: fakeResolver{}}
	blocked := map[string][]string{
		"2001:2::/48 benchmarking":    {"2001:2::", "2001:2:0:ffff:ffff:ffff:ffff:ffff"},
		"2001:10::/28 ORCHID":         {"2001:10::1", "2001:1f:ffff:ffff:ffff:ffff:ffff:ffff"},
		"2001:20::/28 ORCHIDv2":       {"2001:20::1", "2001:2f:ffff:ffff:ffff:ffff:ffff:ffff"},
		"3fff::/20 documentation":     {"3fff::1", "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff"},
		"5f00::/16 SRv6 identifiers":  {"5f00::1", "5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		"2001:db8::/32 documentation": {"2001:db8::1"},
	}
	for name, addrs := range blocked {
		for _, a := range addrs {
			require.ErrorIs(t, p.CheckAddr(netip.MustParseAddr(a)), ErrBlocked, "%s: %s", name, a)
			_, err := p.CheckURL(context.Background(), "https://["+a+"]/x")
			require.ErrorIs(t, err, ErrBlocked, "%s: %s", name, a)
		}
	}
	for _, a := range []string{
		"2001:1::1",    // PCP anycast, globally reachable
		"2001:2:1::1",  // just past benchmarking
		"2001:3::1",    // AMT, globally reachable
		"2001:30::1",   // DRIP, globally reachable
		"2001:f::1",    // just before ORCHID
		"3fff:1000::1", // just past 3fff::/20
		"2a00:1450::1", // an ordinary public address
	} {
		require.NoError(t, p.CheckAddr(netip.MustParseAddr(a)), a)
	}
}

// TestHTTPRefusalSaysHowToAllowIt: a new user's first http:// endpoint is
// refused with the flag that allows it for development.
func TestHTTPRefusalSaysHowToAllowIt(t *testing.T) {
	t.Parallel()
	p := &Policy{Resolver: fakeResolver{"hooks.example.com": {"93.184.216.34"}}}
	_, err := p.CheckURL(context.Background(), "http://hooks.example.com/x")
	require.ErrorIs(t, err, ErrInvalidURL)
	require.Contains(t, err.Error(), "https://")
	require.Contains(t, err.Error(), "--dev-allow-http")
	_, err = p.CheckURL(context.Background(), "ftp://hooks.example.com/x")
	require.ErrorIs(t, err, ErrInvalidURL)
	require.NotContains(t, err.Error(), "--dev-allow-http", "http would not help an ftp:// URL")
}

// TestBlockedNameErrorHidesTheAddress: the error a caller sees names the
// host but not what it resolved to (that would map internal DNS for
// anyone with an API key); the address is on the error for the log.
func TestBlockedNameErrorHidesTheAddress(t *testing.T) {
	t.Parallel()
	dns := fakedns.New()
	dns.Set("internal.example.com", "93.184.216.34", "10.0.0.5")
	cidrs, err := ParseCIDRs("127.0.0.1/32")
	require.NoError(t, err)
	for _, p := range []*Policy{{Resolver: dns}, {Resolver: dns, AllowHTTP: true, AllowCIDRs: cidrs}} {
		_, err := p.CheckURL(context.Background(), "https://internal.example.com/x")
		require.ErrorIs(t, err, ErrBlocked)
		require.Contains(t, err.Error(), "internal.example.com resolves to an address that is")
		require.NotContains(t, err.Error(), "10.0.0.5")
		require.NotContains(t, err.Error(), "93.184.216.34")
		var rb *ResolvedBlockedError
		require.ErrorAs(t, err, &rb)
		require.Equal(t, []netip.Addr{netip.MustParseAddr("10.0.0.5")}, rb.Addrs)
		require.Equal(t, len(p.AllowCIDRs) > 0, strings.Contains(err.Error(), "development allow-list"))
	}
	// An address the caller wrote is theirs to see.
	_, err = (&Policy{Resolver: dns}).CheckURL(context.Background(), "https://10.0.0.5/x")
	require.ErrorIs(t, err, ErrBlocked)
	require.Contains(t, err.Error(), "10.0.0.5")
}

// TestLocalhostUnderTheAllowList: without a development allow-list a
// localhost name is refused before any lookup; with one, it is resolved and
// its addresses are checked like any other name's, except that loopback
// addresses the allow-list leaves out do not refuse it while another of its
// addresses is allowed (localhost is commonly both 127.0.0.1 and ::1).
func TestLocalhostUnderTheAllowList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dns := fakedns.New()
	// A public answer: if the name were looked up without an allow-list,
	// it would pass. It must not be looked up.
	dns.Set("localhost", "93.184.216.34")
	for _, p := range []*Policy{{Resolver: dns}, {Resolver: dns, AllowHTTP: true}} {
		for _, raw := range []string{"https://localhost/x", "https://LocalHost./x", "https://api.localhost/x"} {
			_, err := p.CheckURL(ctx, raw)
			require.ErrorIs(t, err, ErrBlocked, raw)
			require.Contains(t, err.Error(), "loopback name", raw)
		}
	}

	cidrs, err := ParseCIDRs("127.0.0.1/32")
	require.NoError(t, err)
	dev := &Policy{Resolver: dns, AllowHTTP: true, AllowCIDRs: cidrs}
	cases := []struct {
		name  string
		addrs []string // what localhost resolves to; none: it does not resolve
		want  error
	}{
		{"v4 only", []string{"127.0.0.1"}, nil},
		{"v4-mapped", []string{"::ffff:127.0.0.1"}, nil}, // what Go's resolver returns from /etc/hosts
		{"v4 and v6", []string{"::1", "127.0.0.1"}, nil},
		{"v6 only, not allowed", []string{"::1"}, ErrBlocked},
		{"another loopback address", []string{"127.0.0.2"}, ErrBlocked},
		{"a private address beside the allowed one", []string{"127.0.0.1", "10.0.0.1"}, ErrBlocked},
		{"a public address", []string{"93.184.216.34"}, nil},
		{"does not resolve", nil, ErrUnreachable},
	}
	for _, c := range cases {
		dns.Set("localhost", c.addrs...)
		for _, raw := range []string{"http://localhost:9000/hooks", "http://LOCALHOST.:9000/hooks"} {
			_, err := dev.CheckURL(ctx, raw)
			if c.want == nil {
				require.NoError(t, err, "%s: %s", c.name, raw)
			} else {
				require.ErrorIs(t, err, c.want, "%s: %s", c.name, raw)
			}
		}
	}
	dns.Set("api.localhost", "127.0.0.1", "::1")
	_, err = dev.CheckURL(ctx, "http://api.localhost:9000/hooks")
	require.NoError(t, err)

	// Any other name gets no such leniency: every address must be allowed.
	dns.Set("dev.example.com", "127.0.0.1", "::1")
	_, err = dev.CheckURL(ctx, "http://dev.example.com:9000/hooks")
	require.ErrorIs(t, err, ErrBlocked)
}
