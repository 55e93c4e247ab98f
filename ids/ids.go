// Package ids makes and checks hookd's public identifiers.
//
// Endpoints, signing keys and API keys carry a type prefix and 32 lowercase
// hex digits (a UUIDv7 without dashes, so ids sort by creation time);
// projects, messages and attempts are UUIDv7 strings with dashes; request
// ids are "req_" and 24 random letters and digits.
package ids

import (
	"crypto/rand"
	"encoding/hex"
	"regexp"

	"github.com/google/uuid"
)

// Prefixes of the prefixed id kinds.
const (
	EndpointPrefix   = "ep_"
	SigningKeyPrefix = "sk_"
	APIKeyPrefix     = "key_"
	RequestPrefix    = "req_"
)

var (
	endpointRE   = regexp.MustCompile(`^ep_[a-f0-9]{32}$`)
	signingKeyRE = regexp.MustCompile(`^sk_[a-f0-9]{32}$`)
	apiKeyRE     = regexp.MustCompile(`^key_[a-f0-9]{32}$`)
)

// NewEndpoint returns a new endpoint id, "ep_" + 32 hex digits.
func NewEndpoint() string { return EndpointPrefix + hex32() }

// NewSigningKey returns a new signing key id, "sk_" + 32 hex digits.
func NewSigningKey() string { return SigningKeyPrefix + hex32() }

// NewAPIKey returns a new API key id, "key_" + 32 hex digits.
func NewAPIKey() string { return APIKeyPrefix + hex32() }

// NewUUID returns a new UUIDv7 string (with dashes), used for projects,
// messages and attempts.
func NewUUID() string { return uuid.Must(uuid.NewV7()).String() }

// ValidEndpoint reports whether s is a well-formed endpoint id.
func ValidEndpoint(s string) bool { return endpointRE.MatchString(s) }

// ValidSigningKey reports whether s is a well-formed signing key id.
func ValidSigningKey(s string) bool { return signingKeyRE.MatchString(s) }

// ValidAPIKey reports whether s is a well-formed API key id.
func ValidAPIKey(s string) bool { return apiKeyRE.MatchString(s) }

// NewRequest returns a new request id: "req_" + 24 random letters and digits.
func NewRequest() string { return RequestPrefix + RandomAlnum(24) }

// hex32 is a UUIDv7 without its dashes: time-ordered and unique.
func hex32() string {
	u := uuid.Must(uuid.NewV7())
	return hex.EncodeToString(u[:])
}

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// RandomAlnum returns n characters drawn uniformly from [A-Za-z0-9] with
// crypto/rand (rejection sampling, so no character is more likely).
func RandomAlnum(n int) string {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/2)
	for len(out) < n {
		_, _ = rand.Read(buf) // crypto/rand.Read never fails on supported platforms.
		for _, b := range buf {
			if b >= 248 { // 248 = 4*62: keep the draw uniform.
				continue
			}
			out = append(out, alnum[int(b)%len(alnum)])
			if len(out) == n {
				break
			}
		}
	}
	return string(out)
}
