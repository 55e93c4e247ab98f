package handlers

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hookd/hookd/ids"
)

// FuzzDecodeCursor checks the pagination cursor on any text, for the lists
// keyed by endpoint ids and by UUIDs:
//   - "" is the first page; anything else is either an id that passes the
//     list's check or a 400 INVALID_REQUEST on the cursor, never a panic or
//     another error;
//   - an accepted cursor's id re-encodes to a cursor that decodes to the
//     same id (other spellings of a position, such as padding bits, extra
//     members or member-name case, decode to the same id and are harmless:
//     only the checked id reaches the store);
//   - encodeCursor gives URL-safe text, and decodeCursor inverts it for
//     every valid id and, with a check that accepts anything, for every
//     UTF-8 string.
func FuzzDecodeCursor(f *testing.F) {
	for _, s := range []string{
		"",
		encodeCursor("ep_0123456789abcdef0123456789abcdef"),
		encodeCursor("0190a5b1-7c3e-7d4f-8a9b-0c1d2e3f4a5b"),
		encodeCursor("{0190a5b1-7c3e-7d4f-8a9b-0c1d2e3f4a5b}"),
		encodeCursor("urn:uuid:0190a5b1-7c3e-7d4f-8a9b-0c1d2e3f4a5b"),
		base64.RawURLEncoding.EncodeToString([]byte(`{"id":"ep_0123456789abcdef0123456789abcdef","x":1}`)),
		base64.RawURLEncoding.EncodeToString([]byte(`{"ID":"ep_0123456789abcdef0123456789abcdef"}`)),
		base64.RawURLEncoding.EncodeToString([]byte(`{"id":"\ud800"}`)),
		base64.RawURLEncoding.EncodeToString([]byte(`{"id":null}`)),
		base64.RawURLEncoding.EncodeToString([]byte(`[]`)),
		base64.StdEncoding.EncodeToString([]byte(`{"id":"ep_0123456789abcdef0123456789abcdef"}`)),
		"eyJpZCI6ImVwXzAxMjM0NTY3ODlhYmNkZWYwMTIzNDU2Nzg5YWJjZGVmIn0%3D",
		"!!!!",
		"ep_0123456789abcdef0123456789abcdef",
	} {
		f.Add(s)
	}
	checks := map[string]func(string) bool{"endpoint": ids.ValidEndpoint, "uuid": validUUID}
	f.Fuzz(func(t *testing.T, raw string) {
		for name, valid := range checks {
			id, err := decodeCursor(&raw, valid)
			if raw == "" {
				if id != "" || err != nil {
					t.Fatalf("empty cursor: %q, %v", id, err)
				}
				continue
			}
			if err != nil {
				var apiErr *Error
				if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest || apiErr.Code != "INVALID_REQUEST" {
					t.Fatalf("%s cursor %q: error %v is not 400 INVALID_REQUEST", name, raw, err)
				}
				if id != "" {
					t.Fatalf("%s cursor %q: error with id %q", name, raw, id)
				}
			} else {
				if !valid(id) {
					t.Fatalf("%s cursor %q: accepted id %q fails the check", name, raw, id)
				}
				re := encodeCursor(id)
				if again, err := decodeCursor(&re, valid); err != nil || again != id {
					t.Fatalf("%s cursor %q: id %q re-encodes to %q, which decodes to %q, %v", name, raw, id, re, again, err)
				}
			}

			// The fuzzed text as an id.
			c := encodeCursor(raw)
			if strings.Trim(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
				t.Fatalf("encodeCursor(%q) = %q is not URL-safe", raw, c)
			}
			got, err := decodeCursor(&c, valid)
			if valid(raw) && (err != nil || got != raw) {
				t.Fatalf("%s id %q: its cursor %q decodes to %q, %v", name, raw, c, got, err)
			}
			if !valid(raw) && err == nil && got == raw {
				t.Fatalf("%s id %q fails the check but its cursor is accepted", name, raw)
			}
		}
		c := encodeCursor(raw)
		got, err := decodeCursor(&c, func(string) bool { return true })
		if utf8.ValidString(raw) && (err != nil || got != raw) {
			t.Fatalf("%q: its cursor %q decodes to %q, %v", raw, c, got, err)
		}
	})
}
