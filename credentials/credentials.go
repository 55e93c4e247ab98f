// Package credentials makes the secrets hookd hands out: API keys (bearer
// tokens, stored only as a SHA-256 hash and a display prefix) and endpoint
// signing secrets (stored sealed, see package secrets).
package credentials

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"regexp"

	"github.com/hookd/hookd/ids"
)

// API key modes.
const (
	ModeLive = "live"
	ModeTest = "test"
)

// APIKeyRandomLen is the number of random [A-Za-z0-9] characters after the
// "hk_live_" or "hk_test_" prefix (about 190 bits).
const APIKeyRandomLen = 32

// PrefixLen is how many leading characters of an API key are kept for display.
const PrefixLen = 11

var apiKeyRE = regexp.MustCompile(`^hk_(live|test)_[A-Za-z0-9]{32,128}$`)

// NewAPIKey returns a new API key for mode (ModeLive or ModeTest; anything
// else is treated as ModeLive).
func NewAPIKey(mode string) string {
	if mode != ModeTest {
		mode = ModeLive
	}
	return "hk_" + mode + "_" + ids.RandomAlnum(APIKeyRandomLen)
}

// WellFormedAPIKey reports whether s has the shape of an API key. Malformed
// keys are refused without a database lookup.
func WellFormedAPIKey(s string) bool { return apiKeyRE.MatchString(s) }

// HashAPIKey is the form an API key is stored and looked up in: hex SHA-256.
// API keys carry 190 random bits, so a fast unsalted hash is safe here.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// DisplayPrefix is the first PrefixLen characters of key, safe to show.
func DisplayPrefix(key string) string {
	if len(key) < PrefixLen {
		return key
	}
	return key[:PrefixLen]
}

// NewSigningSecret returns "whsec_" + standard base64 of 24 random bytes
// (32 characters). The whole string is the HMAC key of the HookBridge scheme;
// the base64 part, decoded, is the key of Standard Webhooks.
func NewSigningSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// KeyHint is the last 4 characters of a signing secret.
func KeyHint(secret string) string {
	if len(secret) < 4 {
		return secret
	}
	return secret[len(secret)-4:]
}

// IngestTokenLen is how many random letters and digits an inbound
// endpoint's ingest token has (about 238 bits).
const IngestTokenLen = 40

// NewIngestToken returns a new ingest token. It is stored as its SHA-256
// (hex), like API keys: the token carries enough randomness for an
// unsalted hash.
func NewIngestToken() string { return ids.RandomAlnum(IngestTokenLen) }
