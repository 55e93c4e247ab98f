// Package inbound checks webhooks that providers send to hookd's ingest
// URLs: the source address, a static token, the freshness of a timestamp
// and an HMAC signature, configured one by one or through a provider
// preset (Stripe, GitHub, Shopify, Standard Webhooks). It also decides
// which headers of a received request are forwarded, which are redacted in
// rejection records, and the de-duplication key. It knows nothing of
// hookd's storage or API.
package inbound

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // providers sign with HMAC-SHA1 too (HMAC, not a bare hash)
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hookd/hookd/signature"
)

// Providers with a preset.
const (
	Stripe           = "stripe"
	GitHub           = "github"
	Shopify          = "shopify"
	StandardWebhooks = "standard_webhooks"
)

// DefaultTolerance is how far a signed timestamp may be from now when the
// endpoint does not say (the providers' own default).
const DefaultTolerance = 5 * time.Minute

// Config is how an inbound endpoint checks requests. A zero field checks
// nothing.
type Config struct {
	// AllowedNets, when non-nil, is the source address allow-list.
	AllowedNets []netip.Prefix
	// Static token: TokenHash is the SHA-256 of the expected value, read
	// from the header TokenHeader or else the query parameter TokenQuery.
	TokenHash   []byte
	TokenHeader string
	TokenQuery  string
	// Timestamp freshness: the header and the window.
	TimestampHeader string
	TimestampTTL    time.Duration
	// HMAC: with Provider set, that provider's scheme; otherwise an HMAC of
	// the raw body in HMACHeader, after HMACPrefix, as Algorithm (sha256,
	// sha1, sha512) and Encoding (hex, base64).
	Provider   string
	HMACSecret []byte
	HMACHeader string
	HMACPrefix string
	Algorithm  string
	Encoding   string
}

// Request is what a check looks at.
type Request struct {
	Header http.Header
	Query  url.Values
	Body   []byte
	Source netip.Addr
}

// Rejection is why a request was refused: the reason code recorded, the
// HTTP status and error code the provider gets, and a detail for people.
type Rejection struct {
	Reason string
	Status int
	Code   string
	Detail string
}

func (r *Rejection) Error() string { return r.Reason + ": " + r.Detail }

func reject(reason string, status int, code, format string, args ...any) *Rejection {
	return &Rejection{Reason: reason, Status: status, Code: code, Detail: fmt.Sprintf(format, args...)}
}

// CheckSource applies the address allow-list (before the body is read).
func (c Config) CheckSource(src netip.Addr) *Rejection {
	if c.AllowedNets == nil {
		return nil
	}
	src = src.Unmap()
	for _, n := range c.AllowedNets {
		if n.Contains(src) {
			return nil
		}
	}
	return reject("ip_not_allowed", http.StatusForbidden, "IP_NOT_ALLOWED", "source address %s is not in the endpoint's allow-list", src)
}

// Verify applies the token, timestamp and signature checks to r at now.
func (c Config) Verify(r Request, now time.Time) *Rejection {
	if c.TokenHash != nil {
		got := r.Header.Get(c.TokenHeader)
		if c.TokenHeader == "" || got == "" {
			if c.TokenQuery != "" {
				got = r.Query.Get(c.TokenQuery)
			}
		}
		sum := sha256.Sum256([]byte(got))
		if got == "" || subtle.ConstantTimeCompare(sum[:], c.TokenHash) != 1 {
			return reject("invalid_static_token", http.StatusUnauthorized, "INVALID_TOKEN", "the static token is missing or wrong")
		}
	}
	if c.TimestampHeader != "" {
		if rej := checkFresh(r.Header.Get(c.TimestampHeader), c.TimestampHeader, c.TimestampTTL, now); rej != nil {
			return rej
		}
	}
	if c.HMACSecret == nil {
		return nil
	}
	switch c.Provider {
	case Stripe:
		return c.verifyStripe(r, now)
	case StandardWebhooks:
		return c.verifyStandard(r, now)
	}
	got := strings.TrimSpace(r.Header.Get(c.HMACHeader))
	if got == "" {
		return reject("invalid_signature", http.StatusUnauthorized, "INVALID_SIGNATURE", "the signature header %s is missing", c.HMACHeader)
	}
	if c.HMACPrefix != "" {
		if !strings.HasPrefix(got, c.HMACPrefix) {
			return reject("invalid_signature", http.StatusUnauthorized, "INVALID_SIGNATURE", "the signature does not start with %q", c.HMACPrefix)
		}
		got = got[len(c.HMACPrefix):]
	}
	want := c.mac(r.Body)
	if !equalEncoded(got, want, c.Encoding) {
		return reject("invalid_signature", http.StatusUnauthorized, "INVALID_SIGNATURE", "the signature in %s does not match the body", c.HMACHeader)
	}
	return nil
}

func (c Config) newHash() func() hash.Hash {
	switch c.Algorithm {
	case "sha1":
		return sha1.New
	case "sha512":
		return sha512.New
	}
	return sha256.New
}

func (c Config) mac(parts ...[]byte) []byte {
	m := hmac.New(c.newHash(), c.HMACSecret)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// equalEncoded compares a received signature (hex, case-insensitive, or
// standard or URL-safe base64) with want in constant time.
func equalEncoded(got string, want []byte, encoding string) bool {
	var raw []byte
	var err error
	if encoding == "base64" {
		raw, err = base64.StdEncoding.DecodeString(got)
		if err != nil {
			raw, err = base64.URLEncoding.DecodeString(got)
		}
	} else {
		raw, err = hex.DecodeString(strings.ToLower(got))
	}
	return err == nil && hmac.Equal(raw, want)
}

func checkFresh(value, header string, ttl time.Duration, now time.Time) *Rejection {
	if ttl <= 0 {
		ttl = DefaultTolerance
	}
	if value == "" {
		return reject("timestamp_expired", http.StatusUnauthorized, "TIMESTAMP_EXPIRED", "the timestamp header %s is missing", header)
	}
	var ts time.Time
	if secs, err := strconv.ParseInt(value, 10, 64); err == nil {
		ts = time.Unix(secs, 0)
	} else if t, err := time.Parse(time.RFC3339, value); err == nil {
		ts = t
	} else {
		return reject("timestamp_expired", http.StatusUnauthorized, "TIMESTAMP_EXPIRED", "the timestamp in %s is neither Unix seconds nor RFC 3339", header)
	}
	if d := now.Sub(ts); d > ttl || d < -ttl {
		return reject("timestamp_expired", http.StatusUnauthorized, "TIMESTAMP_EXPIRED", "the timestamp in %s is %s from now, beyond %s", header, d.Round(time.Second), ttl)
	}
	return nil
}

// verifyStripe checks Stripe-Signature: "t=<unix>,v1=<hex>[,v1=...]", an
// HMAC-SHA256 of "<t>.<body>".
func (c Config) verifyStripe(r Request, now time.Time) *Rejection {
	h := r.Header.Get("Stripe-Signature")
	var ts string
	var sigs []string
	for _, part := range strings.Split(h, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	if ts == "" || len(sigs) == 0 {
		return reject("invalid_signature", http.StatusUnauthorized, "INVALID_SIGNATURE", "Stripe-Signature is missing or has no t= and v1=")
	}
	if rej := checkFresh(ts, "Stripe-Signature t=", c.TimestampTTL, now); rej != nil {
		return rej
	}
	want := c.mac([]byte(ts), []byte{'.'}, r.Body)
	for _, s := range sigs {
		if equalEncoded(s, want, "hex") {
			return nil
		}
	}
	return reject("invalid_signature", http.StatusUnauthorized, "INVALID_SIGNATURE", "no v1 signature in Stripe-Signature matches the body")
}

// verifyStandard checks a Standard Webhooks (or Svix) signature.
func (c Config) verifyStandard(r Request, now time.Time) *Rejection {
	h := r.Header
	if h.Get(signature.StandardHeaderID) == "" && h.Get("Svix-Id") != "" {
		h = h.Clone()
		h.Set(signature.StandardHeaderID, h.Get("Svix-Id"))
		h.Set(signature.StandardHeaderTimestamp, h.Get("Svix-Timestamp"))
		h.Set(signature.StandardHeaderSignature, h.Get("Svix-Signature"))
	}
	ttl := c.TimestampTTL
	if ttl <= 0 {
		ttl = DefaultTolerance
	}
	if err := signature.VerifyStandard(h, r.Body, []string{string(c.HMACSecret)}, ttl, now); err != nil {
		return reject("invalid_signature", http.StatusUnauthorized, "INVALID_SIGNATURE", "%s", strings.TrimPrefix(err.Error(), "signature: "))
	}
	return nil
}

// Preset is what a provider preset fills in: the signature header and its
// encoding, and the header that identifies a delivery (for
// de-duplication; "" when the provider sends none).
type Preset struct {
	HMACHeader, HMACPrefix, Encoding, IdempotencyHeader string
}

// Presets are the providers hookd knows.
var Presets = map[string]Preset{
	Stripe:           {HMACHeader: "Stripe-Signature", Encoding: "hex"},
	GitHub:           {HMACHeader: "X-Hub-Signature-256", HMACPrefix: "sha256=", Encoding: "hex", IdempotencyHeader: "X-GitHub-Delivery"},
	Shopify:          {HMACHeader: "X-Shopify-Hmac-Sha256", Encoding: "base64", IdempotencyHeader: "X-Shopify-Webhook-Id"},
	StandardWebhooks: {HMACHeader: "webhook-signature", Encoding: "base64", IdempotencyHeader: "webhook-id"},
}

// hopByHop are headers of one connection, never forwarded.
var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true, "Proxy-Authorization": true, "Proxy-Connection": true,
	"Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Host": true, "Content-Length": true,
	"Accept-Encoding": true,
}

// ForwardHeaders are the headers of a received request that are kept and
// forwarded: all but hop-by-hop ones, Host, Content-Length,
// Accept-Encoding and the names in drop (the static token's header).
// Repeated headers are joined with ", ".
func ForwardHeaders(h http.Header, drop ...string) map[string]string {
	skip := map[string]bool{}
	for _, d := range drop {
		if d != "" {
			skip[http.CanonicalHeaderKey(d)] = true
		}
	}
	out := make(map[string]string, len(h))
	for k, vs := range h {
		ck := http.CanonicalHeaderKey(k)
		if hopByHop[ck] || skip[ck] || len(vs) == 0 {
			continue
		}
		out[ck] = strings.Join(vs, ", ")
	}
	return out
}

// Redacted is the value that replaces secrets in rejection records.
const Redacted = "[REDACTED]"

// RedactHeaders is h with credentials and signatures replaced by Redacted:
// the names in secret (the endpoint's token and signature headers),
// Authorization, Cookie, and any name that mentions a signature, token,
// secret, password, HMAC or API key.
func RedactHeaders(h map[string]string, secret ...string) map[string]string {
	named := map[string]bool{"Authorization": true, "Proxy-Authorization": true, "Cookie": true, "Set-Cookie": true}
	for _, s := range secret {
		if s != "" {
			named[http.CanonicalHeaderKey(s)] = true
		}
	}
	out := make(map[string]string, len(h))
	for k, v := range h {
		lk := strings.ToLower(k)
		if named[http.CanonicalHeaderKey(k)] || strings.Contains(lk, "signature") || strings.Contains(lk, "token") ||
			strings.Contains(lk, "secret") || strings.Contains(lk, "password") || strings.Contains(lk, "hmac") ||
			strings.Contains(lk, "api-key") || strings.Contains(lk, "apikey") {
			v = Redacted
		}
		out[k] = v
	}
	return out
}

// maxKeyValue bounds the header value kept in a de-duplication key; a
// longer one is replaced by its SHA-256.
const maxKeyValue = 200

// IdempotencyKey is the de-duplication key of a request: the first of
// names present in h, as "<name>:<value>" ("" when none is).
func IdempotencyKey(h http.Header, names []string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			// Hashed when long, or not text a database column takes.
			if len(v) > maxKeyValue || !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
				sum := sha256.Sum256([]byte(v))
				v = "sha256:" + hex.EncodeToString(sum[:])
			}
			return strings.ToLower(n) + ":" + v
		}
	}
	return ""
}

// SecretAAD is the associated data an inbound endpoint's sealed HMAC
// secret is bound to, so it cannot be moved to another endpoint's row.
func SecretAAD(endpointID string) []byte { return []byte("inbound-hmac/" + endpointID) }

// maxEventType bounds an event type read from a request.
const maxEventType = 200

// EventType reads a received webhook's event type: from the header path
// (source "header"), or from the JSON body at the dot path (source
// "body"), such as "type" or "data.object.type"; "" when it is not there
// or not a string or number.
func EventType(source, path string, h http.Header, body []byte) string {
	var v string
	switch source {
	case "header":
		v = h.Get(path)
	case "body":
		var doc any
		if json.Unmarshal(body, &doc) != nil {
			return ""
		}
		for _, k := range strings.Split(path, ".") {
			obj, ok := doc.(map[string]any)
			if !ok {
				return ""
			}
			doc = obj[k]
		}
		switch x := doc.(type) {
		case string:
			v = x
		case float64:
			v = strconv.FormatFloat(x, 'f', -1, 64)
		}
	}
	if len(v) > maxEventType {
		v = v[:maxEventType]
	}
	return strings.ReplaceAll(strings.ToValidUTF8(v, ""), "\x00", "")
}
