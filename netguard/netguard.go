// Package netguard decides which URLs and addresses hookd may deliver to.
//
// The same Policy checks endpoint URLs when they are created or changed
// (CheckURL) and, through its Resolver and CheckAddr, the addresses the
// delivery dialler connects to (package delivery), so a host that later
// resolves to a private address (DNS rebinding) is refused too. Tests inject
// the Resolver; production uses net.DefaultResolver.
package netguard

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Error kinds. Every error CheckURL returns wraps exactly one of them.
var (
	// ErrInvalidURL: not an absolute https:// URL of 12 to 2048 characters
	// with a valid host and port. API code INVALID_ENDPOINT.
	ErrInvalidURL = errors.New("invalid endpoint URL")
	// ErrBlocked: the host is, or resolves to, an address hookd never
	// delivers to. API code ENDPOINT_BLOCKED.
	ErrBlocked = errors.New("endpoint address is blocked")
	// ErrUnreachable: the host name does not resolve. API code
	// ENDPOINT_UNREACHABLE.
	ErrUnreachable = errors.New("endpoint host does not resolve")
)

// URL length bounds, in bytes.
const (
	MinURLLen = 12
	MaxURLLen = 2048
)

// DefaultLookupTimeout bounds one name resolution in CheckURL.
const DefaultLookupTimeout = 5 * time.Second

// Resolver resolves host names. *net.Resolver satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Policy is the set of delivery-safety rules. The zero value plus a Resolver
// is the production policy: https only, public addresses only.
type Policy struct {
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver Resolver
	// AllowHTTP allows http:// URLs (development only).
	AllowHTTP bool
	// AllowCIDRs lists prefixes that are allowed even though the rules below
	// block them, e.g. 127.0.0.1/32 for a local receiver (development only).
	// Every other blocked address stays blocked.
	AllowCIDRs []netip.Prefix
	// LookupTimeout bounds one resolution; zero means DefaultLookupTimeout.
	LookupTimeout time.Duration
}

// Development reports whether any development allowance is on.
func (p *Policy) Development() bool { return p.AllowHTTP || len(p.AllowCIDRs) > 0 }

func (p *Policy) resolver() Resolver {
	if p.Resolver == nil {
		return net.DefaultResolver
	}
	return p.Resolver
}

// CheckURL parses raw and applies every URL rule, resolving the host when it
// is a name. It returns the parsed URL, or an error wrapping ErrInvalidURL,
// ErrBlocked or ErrUnreachable whose text is safe to show the caller.
func (p *Policy) CheckURL(ctx context.Context, raw string) (*url.URL, error) {
	u, host, err := p.parse(raw)
	if err != nil {
		return nil, err
	}
	if addr, ok, err := parseIPHost(host); err != nil {
		return nil, err
	} else if ok {
		if err := p.CheckAddr(addr); err != nil {
			return nil, err
		}
		if canonical := addr.String(); addr.Is4() && canonical != host {
			// 0x5db8d822 and 93.184.216.34 are one address: accept only
			// the dotted quad, so duplicates are found and TLS names
			// match. (IPv6 spellings are unified by Normalize.)
			return nil, fmt.Errorf("%w: write the address as %s", ErrInvalidURL, canonical)
		}
		return u, nil
	}
	lower := strings.ToLower(strings.TrimSuffix(host, "."))
	if slices.Contains(strings.Split(lower, "."), "") {
		// "hooks.example.com.." would be checked as "hooks.example.com."
		// but dialled as itself, which never resolves.
		return nil, fmt.Errorf("%w: the host name %q has an empty label", ErrInvalidURL, host)
	}
	if isLocalhostName(lower) && len(p.AllowCIDRs) == 0 {
		// Loopback by definition (RFC 6761): refused without a lookup
		// unless a development allow-list could cover what it resolves to.
		return nil, fmt.Errorf("%w: %s is a loopback name", ErrBlocked, host)
	}
	timeout := p.LookupTimeout
	if timeout <= 0 {
		timeout = DefaultLookupTimeout
	}
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	addrs, err := p.resolver().LookupNetIP(lctx, "ip", lower)
	if err != nil || len(addrs) == 0 {
		return nil, fmt.Errorf("%w: %s does not resolve", ErrUnreachable, host)
	}
	if err := p.checkResolved(host, lower, addrs); err != nil {
		return nil, err
	}
	return u, nil
}

// isLocalhostName reports whether name (lower-case, no trailing dot) is
// "localhost" or a name under it.
func isLocalhostName(name string) bool {
	return name == "localhost" || strings.HasSuffix(name, ".localhost")
}

// checkResolved applies the address rules to the addresses host resolved
// to: every one must be allowed. The one exception is a localhost name
// under a development allow-list: such a name commonly resolves to both
// 127.0.0.1 and ::1, and an allow-list naming only one of them must not
// refuse it, so it passes when at least one address is allowed and every
// other one is loopback. The dialler connects only to allowed addresses,
// so the loopback address left out is never used.
func (p *Policy) checkResolved(host, lower string, addrs []netip.Addr) error {
	var refused []netip.Addr
	allowed := 0
	for _, a := range addrs {
		if p.CheckAddr(a) != nil {
			refused = append(refused, a.Unmap())
		} else {
			allowed++
		}
	}
	if len(refused) == 0 {
		return nil
	}
	if isLocalhostName(lower) && allowed > 0 && !slices.ContainsFunc(refused, func(a netip.Addr) bool { return !a.IsLoopback() }) {
		return nil
	}
	return &ResolvedBlockedError{Host: host, Addrs: refused, AllowList: len(p.AllowCIDRs) > 0}
}

// ResolvedBlockedError is the ErrBlocked that CheckURL returns when a host
// name resolves to an address hookd does not deliver to. Its text names the
// host but not the addresses: what a name resolves to inside hookd's
// network is not the API caller's business (it would let callers map
// internal DNS). Addrs, the refused addresses, are for hookd's own log.
type ResolvedBlockedError struct {
	Host      string
	Addrs     []netip.Addr
	AllowList bool // a development allow-list (Policy.AllowCIDRs) was set
}

func (e *ResolvedBlockedError) Error() string {
	if e.AllowList {
		return fmt.Sprintf("%v: %s resolves to an address that is neither public nor in the development allow-list", ErrBlocked, e.Host)
	}
	return fmt.Sprintf("%v: %s resolves to an address that is not public", ErrBlocked, e.Host)
}

// Unwrap makes errors.Is(err, ErrBlocked) hold.
func (e *ResolvedBlockedError) Unwrap() error { return ErrBlocked }

func (p *Policy) parse(raw string) (*url.URL, string, error) {
	if len(raw) < MinURLLen || len(raw) > MaxURLLen {
		return nil, "", fmt.Errorf("%w: the URL must be %d to %d characters long", ErrInvalidURL, MinURLLen, MaxURLLen)
	}
	if strings.ContainsFunc(raw, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, "", fmt.Errorf("%w: the URL must not contain spaces or control characters (percent-encode them)", ErrInvalidURL)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "", fmt.Errorf("%w: the URL does not parse", ErrInvalidURL)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, "", fmt.Errorf("%w: a URL fragment (#…) is never sent to the receiver; remove it", ErrInvalidURL)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && p.AllowHTTP:
	case u.Scheme == "http":
		return nil, "", fmt.Errorf("%w: the URL must start with https://; http:// is accepted only for development, by a hookd started with --dev-allow-http", ErrInvalidURL)
	default:
		if p.AllowHTTP {
			return nil, "", fmt.Errorf("%w: the URL must start with https:// or http://", ErrInvalidURL)
		}
		return nil, "", fmt.Errorf("%w: the URL must start with https://", ErrInvalidURL)
	}
	if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return nil, "", fmt.Errorf("%w: the URL has no host", ErrInvalidURL)
	}
	if u.User != nil {
		// It would be stored and shown in plain text; use custom headers
		// for receiver authentication instead.
		return nil, "", fmt.Errorf("%w: credentials in the URL are not accepted; send them in a custom header", ErrInvalidURL)
	}
	if port := u.Port(); port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return nil, "", fmt.Errorf("%w: the port must be 1 to 65535", ErrInvalidURL)
		}
	}
	return u, u.Hostname(), nil
}

// parseIPHost reads host as an IP literal. It accepts IPv6 literals and
// every IPv4 spelling a resolver would accept (decimal, octal and hex parts,
// one to four of them, as in inet_aton), so "2130706433" and "0x7f.1" are
// recognised as 127.0.0.1 rather than passed to DNS. ok is false when host
// is a name.
func parseIPHost(host string) (addr netip.Addr, ok bool, err error) {
	if strings.Contains(host, ":") {
		a, perr := netip.ParseAddr(host)
		if perr != nil || a.Zone() != "" {
			return netip.Addr{}, false, fmt.Errorf("%w: %q is not a valid IPv6 address", ErrInvalidURL, host)
		}
		return a, true, nil
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	last := labels[len(labels)-1]
	if !looksNumeric(last) {
		return netip.Addr{}, false, nil
	}
	// The host ends in a number, so it is an IPv4 address or nothing.
	a, valid := parseInetAton(labels)
	if !valid {
		return netip.Addr{}, false, fmt.Errorf("%w: %q is not a valid IPv4 address", ErrInvalidURL, host)
	}
	return a, true, nil
}

func looksNumeric(s string) bool {
	if s == "" {
		return false
	}
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		s = s[2:]
		for _, c := range s {
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return false
			}
		}
		return true
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func parseInetAton(parts []string) (netip.Addr, bool) {
	if len(parts) == 0 || len(parts) > 4 {
		return netip.Addr{}, false
	}
	nums := make([]uint64, len(parts))
	for i, p := range parts {
		if !looksNumeric(p) {
			return netip.Addr{}, false
		}
		base, digits := 10, p
		switch {
		case len(p) >= 2 && (p[:2] == "0x" || p[:2] == "0X"):
			base, digits = 16, p[2:]
			if digits == "" {
				digits = "0"
			}
		case len(p) > 1 && p[0] == '0':
			base, digits = 8, p[1:]
		}
		n, err := strconv.ParseUint(digits, base, 64)
		if err != nil {
			return netip.Addr{}, false
		}
		nums[i] = n
	}
	var v uint64
	for i, n := range nums[:len(nums)-1] {
		if n > 255 {
			return netip.Addr{}, false
		}
		v |= n << (8 * (3 - uint(i)))
	}
	lastBits := 8 * (5 - uint(len(nums)))
	lastN := nums[len(nums)-1]
	if lastN >= 1<<lastBits {
		return netip.Addr{}, false
	}
	v |= lastN
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(v)) //nolint:gosec // v < 2^32: every part was range-checked above
	return netip.AddrFrom4(b), true
}

var blockedV4 = mustPrefixes(
	"0.0.0.0/8",       // "this network", unspecified
	"10.0.0.0/8",      // private
	"100.64.0.0/10",   // CGNAT
	"127.0.0.0/8",     // loopback
	"169.254.0.0/16",  // link-local (cloud metadata)
	"172.16.0.0/12",   // private
	"192.0.0.0/24",    // IETF protocol assignments
	"192.0.2.0/24",    // documentation (TEST-NET-1)
	"192.168.0.0/16",  // private
	"198.18.0.0/15",   // benchmarking
	"198.51.100.0/24", // documentation (TEST-NET-2)
	"203.0.113.0/24",  // documentation (TEST-NET-3)
	"224.0.0.0/4",     // multicast
	"240.0.0.0/4",     // reserved, broadcast
)

// blockedV6 holds the IANA IPv6 special-purpose ranges that are not
// globally reachable, plus ranges never used as destinations. The IPv6
// forms embedding an IPv4 address are checked by what they embed (blocked).
var blockedV6 = mustPrefixes(
	"::/128",         // unspecified
	"::1/128",        // loopback
	"64:ff9b:1::/48", // local-use NAT64
	"100::/64",       // discard
	"2001:2::/48",    // benchmarking (RFC 5180)
	"2001:10::/28",   // ORCHID, deprecated (RFC 4843)
	"2001:20::/28",   // ORCHIDv2 (RFC 7343): identifiers, never routed as destinations
	"2001:db8::/32",  // documentation
	"3fff::/20",      // documentation (RFC 9637)
	"5f00::/16",      // SRv6 segment identifiers (RFC 9602)
	"fc00::/7",       // unique local
	"fe80::/10",      // link-local
	"fec0::/10",      // site-local (deprecated)
	"ff00::/8",       // multicast
)

var (
	v4translated = netip.MustParsePrefix("::ffff:0:0:0/96") // IPv4-translated, RFC 2765
	nat64        = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour    = netip.MustParsePrefix("2002::/16")
	teredo       = netip.MustParsePrefix("2001::/32")
)

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// CheckAddr returns nil when hookd may connect to a, and an error wrapping
// ErrBlocked otherwise. Addresses inside AllowCIDRs are allowed.
func (p *Policy) CheckAddr(a netip.Addr) error {
	a = a.WithZone("")
	for _, pfx := range p.AllowCIDRs {
		if pfx.Contains(a) || pfx.Contains(a.Unmap()) {
			return nil
		}
	}
	if blocked(a) {
		return fmt.Errorf("%w: %s is not a public address", ErrBlocked, a.Unmap())
	}
	return nil
}

func blocked(a netip.Addr) bool {
	if !a.IsValid() {
		return true
	}
	a = a.Unmap() // IPv4-mapped ::ffff:a.b.c.d is a.b.c.d
	if a.Is4() {
		for _, p := range blockedV4 {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	for _, p := range blockedV6 {
		if p.Contains(a) {
			return true
		}
	}
	b := a.As16()
	var embedded []netip.Addr
	switch {
	case isZero(b[:12]): // IPv4-compatible ::a.b.c.d
		embedded = append(embedded, netip.AddrFrom4([4]byte(b[12:16])))
	case nat64.Contains(a), v4translated.Contains(a):
		embedded = append(embedded, netip.AddrFrom4([4]byte(b[12:16])))
	case sixToFour.Contains(a):
		embedded = append(embedded, netip.AddrFrom4([4]byte(b[2:6])))
	case teredo.Contains(a):
		server := netip.AddrFrom4([4]byte(b[4:8]))
		client := netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
		embedded = append(embedded, server, client)
	}
	for _, e := range embedded {
		if blocked(e) {
			return true
		}
	}
	return false
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// Normalize returns the form of u used to find duplicate endpoint URLs:
// scheme and host lower-cased, a default port and a trailing dot on the host
// dropped, an empty path made "/", the fragment dropped.
func Normalize(u *url.URL) string {
	n := *u
	n.Scheme = strings.ToLower(n.Scheme)
	host := strings.TrimSuffix(strings.ToLower(n.Hostname()), ".")
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.String() // one spelling per IPv6 address
	}
	port := n.Port()
	if (n.Scheme == "https" && port == "443") || (n.Scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	n.Host = host
	if n.Path == "" && n.RawPath == "" {
		n.Path = "/"
	}
	n.Fragment, n.RawFragment = "", ""
	return n.String()
}

// ParseCIDRs reads a comma-separated list of CIDR prefixes (a bare address
// is taken as a single-address prefix).
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("%q is not an address or CIDR prefix", f)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR prefix such as 127.0.0.1/32", f)
		}
		if (p.Addr().Is4() && p.Bits() < 8) || (p.Addr().Is6() && p.Bits() < 16) {
			return nil, fmt.Errorf("%q would allow far too much; list the hosts' own addresses", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
