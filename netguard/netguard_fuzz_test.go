package netguard

import (
	"context"
	"errors"
	"hash/fnv"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// FuzzCheckURL checks the URL rules on any text, for the production policy
// and a development one (http allowed, 127.0.0.1 and ::1 allowed). Host
// names resolve through hashResolver, which answers public, private,
// loopback, metadata, mapped and NAT64 addresses, several at once, or
// nothing. Every refusal wraps exactly one of the three error kinds. An
// accepted URL:
//   - is 12 to 2048 bytes with no blank, control character or fragment;
//   - is https (http too under the development policy), has a host, no
//     user information and a port of 1 to 65535 if any;
//   - names no address outside the public internet, by the independent
//     notPublic below: neither as a literal (IPv6 without zone, IPv4 only
//     as the dotted quad, never in inet_aton's decimal, octal or hex
//     spellings) nor through any address its name resolves to, unless the
//     development allow-list holds that address;
//   - round-trips: its String() is accepted again with the same Normalize,
//     and Normalize is idempotent.
//
// The production policy accepting a URL implies the development one does.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://hooks.example.com/webhooks",
		"https://93.184.216.34/hooks",
		"https://[2606:2800:220:1:248:1893:25c8:1946]:8443/x?a=b",
		"http://127.0.0.1:9000/hook",
		"https://2130706433/x",
		"https://0x7f.1/x",
		"https://0177.0.0.1/x",
		"https://[::ffff:127.0.0.1]/x",
		"https://[::ffff:0:a00:1]/x",
		"https://[64:ff9b::a9fe:a9fe]/x",
		"https://[fe80::1%25eth0]/x",
		"https://[2001:0:5db8:d822::f5ff:fffe]/x",
		"https://%31%32%37.0.0.1/x",
		"https://hooks.example.com/%zz",
		"https://hooks.example.com:0/x",
		"https://user:pw@hooks.example.com/x",
		"https://api.localhost./x",
		"https://xn--bcher-kva.example/\u00fc",
		"https://hooks.example.com/\xed\xa0\x80",
		"https://hooks.example.com./x#frag",
		"HTTPS://HOOKS.EXAMPLE.COM:443",
		"https://hooks.example.com:/x",
		"https://1.2.3.4.5/x",
		"https://a.b.c.0x10/x",
	} {
		f.Add(s)
	}
	ctx := context.Background()
	prod := &Policy{Resolver: &hashResolver{}}
	dev := &Policy{
		Resolver:   &hashResolver{},
		AllowHTTP:  true,
		AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")},
	}
	f.Fuzz(func(t *testing.T, raw string) {
		accepted := map[*Policy]bool{}
		for _, p := range []*Policy{prod, dev} {
			res := p.Resolver.(*hashResolver)
			res.reset()
			u, err := p.CheckURL(ctx, raw)
			accepted[p] = err == nil
			if err != nil {
				if u != nil {
					t.Fatalf("%q: error %v with a URL", raw, err)
				}
				kinds := 0
				for _, k := range []error{ErrInvalidURL, ErrBlocked, ErrUnreachable} {
					if errors.Is(err, k) {
						kinds++
					}
				}
				if kinds != 1 {
					t.Fatalf("%q: error %v wraps %d kinds", raw, err, kinds)
				}
				continue
			}
			checkAccepted(t, p, raw, u, res.answered())

			again := u.String()
			if len(again) > MaxURLLen {
				continue // re-escaping made it longer
			}
			u2, err := p.CheckURL(ctx, again)
			if err != nil {
				t.Fatalf("%q is accepted as %q, which is refused: %v", raw, again, err)
			}
			if Normalize(u2) != Normalize(u) {
				t.Fatalf("%q: Normalize %q, but of its String() %q: %q", raw, Normalize(u), again, Normalize(u2))
			}
			n, err := url.Parse(Normalize(u))
			if err != nil || Normalize(n) != Normalize(u) {
				t.Fatalf("%q: Normalize %q is not a fixed point (%v)", raw, Normalize(u), err)
			}
		}
		if accepted[prod] && !accepted[dev] {
			t.Fatalf("%q: production accepts what development refuses", raw)
		}
	})
}

// inetAtonish matches the hosts a C resolver takes for IPv4 addresses: one
// to four decimal, octal or hex numbers, and an optional final dot.
var inetAtonish = regexp.MustCompile(`(?i)^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$`)

func checkAccepted(t *testing.T, p *Policy, raw string, u *url.URL, resolved []netip.Addr) {
	t.Helper()
	if len(raw) < 12 || len(raw) > 2048 {
		t.Fatalf("%q: accepted at %d bytes", raw, len(raw))
	}
	for i := range len(raw) {
		if c := raw[i]; c <= ' ' || c == 0x7f || c == '#' {
			t.Fatalf("%q: accepted with byte %q", raw, c)
		}
	}
	if u.Scheme != "https" && (u.Scheme != "http" || !p.AllowHTTP) {
		t.Fatalf("%q: accepted with scheme %q", raw, u.Scheme)
	}
	if u.User != nil || u.Opaque != "" || u.Hostname() == "" || u.Fragment != "" {
		t.Fatalf("%q: accepted with user %v, opaque %q, host %q, fragment %q", raw, u.User, u.Opaque, u.Hostname(), u.Fragment)
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			t.Fatalf("%q: accepted with port %q", raw, port)
		}
	}
	host := u.Hostname()
	allowed := func(a netip.Addr) bool {
		for _, pfx := range p.AllowCIDRs {
			if pfx.Contains(a) || pfx.Contains(a.Unmap()) {
				return true
			}
		}
		return !notPublic(a)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" || !allowed(a) || (a.Is4() && a.String() != host) {
			t.Fatalf("%q: accepted with address %s", raw, host)
		}
		if len(resolved) > 0 {
			t.Fatalf("%q: the address literal %s was resolved", raw, host)
		}
		return
	}
	if inetAtonish.MatchString(host) {
		t.Fatalf("%q: accepted host %q, an IPv4 address in another spelling, as a name", raw, host)
	}
	lower := strings.ToLower(strings.TrimSuffix(host, "."))
	if (lower == "localhost" || strings.HasSuffix(lower, ".localhost")) && len(p.AllowCIDRs) == 0 {
		// Under a development allow-list a localhost name is looked up and
		// its addresses checked like any other's.
		t.Fatalf("%q: accepted a loopback name", raw)
	}
	if len(resolved) == 0 {
		t.Fatalf("%q: accepted a name that did not resolve", raw)
	}
	for _, a := range resolved {
		if !allowed(a) {
			t.Fatalf("%q: accepted although %s resolves to %s", raw, host, a)
		}
	}
}

// notPublic reports whether a is an address hookd must never deliver to,
// from the standard library's classification and the embedding rules in
// the package documentation; it does not use the package's own tables.
func notPublic(a netip.Addr) bool {
	if !a.IsValid() || a.Zone() != "" {
		return true
	}
	u := a.Unmap()
	for _, x := range []netip.Addr{a, u} {
		if x.IsLoopback() || x.IsPrivate() || x.IsUnspecified() || x.IsLinkLocalUnicast() ||
			x.IsMulticast() || x.IsLinkLocalMulticast() || x.IsInterfaceLocalMulticast() {
			return true
		}
	}
	if u.Is4() {
		b := u.As4()
		return b[0] == 0 || b[0] >= 240 || // "this network", reserved, broadcast
			(b[0] == 100 && b[1]&0xc0 == 64) // CGNAT 100.64.0.0/10
	}
	b := a.As16()
	var v4 []byte
	switch {
	case allZero(b[:12]): // IPv4-compatible
		v4 = b[12:]
	case allZero(b[:8]) && b[8] == 0xff && b[9] == 0xff && allZero(b[10:12]): // IPv4-translated ::ffff:0:a.b.c.d
		v4 = b[12:]
	case b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && allZero(b[4:12]): // NAT64 64:ff9b::/96
		v4 = b[12:]
	case b[0] == 0x20 && b[1] == 0x02: // 6to4
		v4 = b[2:6]
	}
	return v4 != nil && notPublic(netip.AddrFrom4([4]byte(v4)))
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// hashResolver answers every name from a fixed menu chosen by the name's
// hash, and records what it answered since reset.
type hashResolver struct {
	mu   sync.Mutex
	last []netip.Addr
}

var menu = [][]string{
	{"93.184.216.34"},
	{"2606:2800:220:1:248:1893:25c8:1946"},
	{"93.184.216.34", "10.1.2.3"},
	{"169.254.169.254"},
	{"127.0.0.1"},
	{"::1"},
	{"::ffff:10.0.0.1"},
	{"64:ff9b::a9fe:a9fe"},
	{"2001:db8::1"},
	{"8.8.8.8", "2001:4860:4860::8888"},
	{},
	nil, // does not resolve
}

func (r *hashResolver) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = nil
}

func (r *hashResolver) answered() []netip.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

func (r *hashResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	h := fnv.New32a()
	_, _ = h.Write([]byte(host))
	ss := menu[h.Sum32()%uint32(len(menu))]
	if ss == nil {
		return nil, errors.New("no such host")
	}
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last = append(r.last, out...)
	return out, nil
}

// FuzzCheckAddr checks CheckAddr on any 4- or 16-byte address and zone: it
// never allows an address the independent notPublic refuses; the zone never
// matters; an IPv4 address and its IPv4-mapped, IPv4-translated, NAT64 and
// 6to4 forms are all allowed or all blocked; and an address inside
// AllowCIDRs, in either family's spelling, is always allowed.
func FuzzCheckAddr(f *testing.F) {
	for _, s := range []string{"93.184.216.34", "127.0.0.1", "169.254.169.254", "100.64.0.1", "255.255.255.255", "0.0.0.0",
		"::", "::1", "::ffff:10.0.0.1", "::10.0.0.1", "64:ff9b::a00:1", "2002:c0a8:101::1", "2001:0:5db8:d822::f5ff:fffe",
		"fe80::1", "ff02::1", "2001:db8::1", "2606:2800:220:1:248:1893:25c8:1946"} {
		f.Add(netip.MustParseAddr(s).AsSlice(), "eth0")
	}
	f.Add([]byte{1, 2, 3}, "")
	p := &Policy{}
	f.Fuzz(func(t *testing.T, b []byte, zone string) {
		a, ok := netip.AddrFromSlice(b)
		if !ok {
			return
		}
		err := p.CheckAddr(a)
		if err != nil && !errors.Is(err, ErrBlocked) {
			t.Fatalf("%s: %v does not wrap ErrBlocked", a, err)
		}
		if err == nil && notPublic(a) {
			t.Fatalf("%s is allowed", a)
		}
		if zoned := a.WithZone(zone); (p.CheckAddr(zoned) == nil) != (err == nil) {
			t.Fatalf("%s: the zone %q changes the answer", a, zone)
		}
		if a.Is4() {
			v4 := a.As4()
			for _, form := range []string{"::ffff:0:0", "::ffff:0:0:0", "64:ff9b::", "2002::"} {
				e := netip.MustParseAddr(form).As16()
				if form == "2002::" {
					copy(e[2:6], v4[:])
				} else {
					copy(e[12:], v4[:])
				}
				embedded := netip.AddrFrom16(e)
				if (p.CheckAddr(embedded) == nil) != (err == nil) {
					t.Fatalf("%s is allowed=%v, but as %s allowed=%v", a, err == nil, embedded, p.CheckAddr(embedded) == nil)
				}
			}
		}
		self := netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		allow := &Policy{AllowCIDRs: []netip.Prefix{self}}
		if err := allow.CheckAddr(a); err != nil {
			t.Fatalf("%s is blocked although AllowCIDRs holds %s: %v", a, self, err)
		}
	})
}

// FuzzParseCIDRs checks the development allow-list parser: every accepted
// prefix is valid, masked, no wider than /8 (IPv4) or /16 (IPv6), and one per
// non-empty entry; and the list printed back parses to the same prefixes.
func FuzzParseCIDRs(f *testing.F) {
	for _, s := range []string{"127.0.0.1/32, ::1", "10.0.0.0/8", "10.1.2.3/8", "0.0.0.0/0", "::/0", "::/16", "fe80::1%eth0",
		"::ffff:127.0.0.1/128", "::ffff:0:0/96", "1.2.3.4/33", "1.2.3.4/-1", "1.2.3.4/08", ",,", " , 127.1 ", "2130706433", "\xed\xa0\x80/8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := ParseCIDRs(s)
		if err != nil {
			return
		}
		entries := 0
		for _, e := range strings.Split(s, ",") {
			if strings.TrimSpace(e) != "" {
				entries++
			}
		}
		if len(ps) != entries {
			t.Fatalf("%q: %d entries gave %d prefixes", s, entries, len(ps))
		}
		printed := make([]string, len(ps))
		for i, p := range ps {
			if !p.IsValid() || p != p.Masked() || (p.Addr().Is4() && p.Bits() < 8) || (p.Addr().Is6() && p.Bits() < 16) {
				t.Fatalf("%q: accepted prefix %s", s, p)
			}
			printed[i] = p.String()
		}
		again, err := ParseCIDRs(strings.Join(printed, ","))
		if err != nil {
			t.Fatalf("%q: printed as %q, which does not parse: %v", s, printed, err)
		}
		for i := range ps {
			if again[i] != ps[i] {
				t.Fatalf("%q: printed as %q, which parses as %v", s, printed, again)
			}
		}
	})
}
