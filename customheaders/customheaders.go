// Package customheaders checks the extra HTTP headers that endpoints (and,
// later, messages) add to every delivery.
package customheaders

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Limits on one header map.
const (
	MaxCount = 50
	MaxBytes = 8 * 1024 // names plus values
)

// ErrInvalid is wrapped by every error Validate returns (API code
// INVALID_HEADERS).
var ErrInvalid = errors.New("invalid headers")

// forbidden names are set by hookd itself or by the transport, or are
// hop-by-hop; a custom value would break delivery, signing or framing.
var forbidden = map[string]bool{
	"host": true, "authorization": true, "content-length": true,
	"content-type": true, "transfer-encoding": true, "connection": true,
	"keep-alive": true, "te": true, "trailer": true, "upgrade": true,
	"content-encoding": true, "expect": true, "user-agent": true,
	"proxy-authorization": true, "proxy-authenticate": true, "proxy-connection": true,
}

// forbiddenPrefixes cover hookd's signature headers in both schemes and
// proxy headers.
var forbiddenPrefixes = []string{"x-webhook-", "webhook-", "proxy-"}

// Validate checks h: at most MaxCount entries and MaxBytes in all, names that
// are HTTP tokens and not forbidden, values without control characters. The
// error wraps ErrInvalid and names the first offending header (in name
// order, so the answer is stable).
func Validate(h map[string]string) error {
	if len(h) > MaxCount {
		return fmt.Errorf("%w: at most %d headers are allowed, got %d", ErrInvalid, MaxCount, len(h))
	}
	names := make([]string, 0, len(h))
	total := 0
	for name, value := range h {
		names = append(names, name)
		total += len(name) + len(value)
	}
	if total > MaxBytes {
		return fmt.Errorf("%w: headers may hold at most %d bytes of names and values, got %d", ErrInvalid, MaxBytes, total)
	}
	sort.Strings(names)
	seen := make(map[string]bool, len(names))
	for _, name := range names {
		if !httpguts.ValidHeaderFieldName(name) {
			return fmt.Errorf("%w: %q is not a valid header name", ErrInvalid, name)
		}
		lower := strings.ToLower(name)
		if seen[lower] {
			return fmt.Errorf("%w: header %q is given twice (names are case-insensitive)", ErrInvalid, name)
		}
		seen[lower] = true
		if forbidden[lower] {
			return fmt.Errorf("%w: header %q is set by hookd and cannot be overridden", ErrInvalid, name)
		}
		for _, p := range forbiddenPrefixes {
			if strings.HasPrefix(lower, p) {
				return fmt.Errorf("%w: headers starting with %q are reserved", ErrInvalid, p)
			}
		}
		if !httpguts.ValidHeaderFieldValue(h[name]) {
			return fmt.Errorf("%w: the value of %q holds a control character", ErrInvalid, name)
		}
	}
	return nil
}
