package customheaders

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"
)

// Redacted replaces a custom header's value wherever hookd records a
// request (attempt records, logs): the values are often receivers' tokens.
const Redacted = "[redacted]"

// Sealer seals and opens values under master keys; *secrets.Keyring is one.
type Sealer interface {
	Seal(plaintext, aad []byte) (keyID string, sealed []byte)
	Open(keyID string, sealed, aad []byte) ([]byte, error)
}

// aad binds sealed headers to their endpoint, so a sealed value copied to
// another row does not open.
func aad(endpointID string) []byte { return []byte("endpoint-headers:" + endpointID) }

// Seal seals h (as JSON) for the endpoint under kr's active master key. An
// empty or nil h seals to nothing: keyID "" and sealed nil.
func Seal(kr Sealer, endpointID string, h map[string]string) (keyID string, sealed []byte) {
	if len(h) == 0 {
		return "", nil
	}
	pt, _ := json.Marshal(h) // a map of strings always marshals
	keyID, sealed = kr.Seal(pt, aad(endpointID))
	clear(pt)
	return keyID, sealed
}

// Open returns the headers Seal sealed for the endpoint; nil sealed opens
// to an empty map. The error names the master key when it is not held or
// the value does not authenticate.
func Open(kr Sealer, endpointID, keyID string, sealed []byte) (map[string]string, error) {
	h := map[string]string{}
	if sealed == nil {
		return h, nil
	}
	pt, err := kr.Open(keyID, sealed, aad(endpointID))
	if err != nil {
		return nil, fmt.Errorf("custom headers of endpoint %s (master key %s): %w", endpointID, keyID, err)
	}
	defer clear(pt)
	if err := json.Unmarshal(pt, &h); err != nil {
		return nil, fmt.Errorf("custom headers of endpoint %s: %w", endpointID, err)
	}
	return h, nil
}

// Redact returns a copy of recorded with the value of every header named in
// custom (compared case-insensitively, as HTTP does) replaced by Redacted.
func Redact(recorded, custom map[string]string) map[string]string {
	out := maps.Clone(recorded)
	if len(custom) == 0 {
		return out
	}
	names := make(map[string]bool, len(custom))
	for name := range custom {
		names[canonical(name)] = true
	}
	for name := range out {
		if names[canonical(name)] {
			out[name] = Redacted
		}
	}
	return out
}

// canonical is the form two spellings of one header name share.
func canonical(name string) string { return strings.ToLower(name) }
