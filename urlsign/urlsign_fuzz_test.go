package urlsign_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/hookd/hookd/urlsign"
)

// FuzzVerify checks signed-link verification against the scheme as
// documented, computed here with crypto/hmac rather than through Sign:
//   - on any link, Verify is nil exactly when sig is the hex HMAC-SHA256,
//     under one of the signer's keys, of "<resource>\n<expires>" and now is
//     before expires; ErrExpired when only the time is wrong; otherwise
//     ErrBadSignature;
//   - a link made by Sign verifies until, and not from, its expiry;
//   - it is bound to its resource and expiry: no other (resource, expires)
//     pair and no other key accepts it.
func FuzzVerify(f *testing.F) {
	f.Add([]byte("key-1"), []byte("old"), "res-1", int64(1700000300), "0895c90c164551c374415de9bc5ee0f48c0b12bb87694c4987509c39c7d35b5a", int64(1700000000), "res-1\n1700000300", int64(0))
	f.Add([]byte(""), []byte(nil), "", int64(0), "", int64(0), "", int64(-1))
	f.Add([]byte("k"), []byte("k\x00"), "x1\n5", int64(10), "ZZ", int64(9), "x1", int64(5))
	f.Add([]byte("k"), []byte("k2"), "0190a5b1-7c3e-7d4f-8a9b-0c1d2e3f4a5b", int64(-9223372036854775808), "%zz", int64(9223372036854775807), "0190A5B1-7C3E-7D4F-8A9B-0C1D2E3F4A5B", int64(-9223372036854775808))
	f.Add(bytes.Repeat([]byte("long key "), 20), []byte("k2"), "r\xed\xa0\x80", int64(1), "0x00", int64(1), "r\ufffd", int64(1))
	f.Fuzz(func(t *testing.T, key, also []byte, resource string, expires int64, sig string, nowUnix int64, resource2 string, expires2 int64) {
		s := urlsign.New(key, also)
		now := time.Unix(nowUnix, 0)

		// The link as given.
		agree(t, s, [][]byte{key, also}, resource, expires, sig, now)

		// A genuine link.
		genuine := s.Sign(resource, time.Unix(expires, 0))
		want := error(nil)
		if nowUnix >= expires {
			want = urlsign.ErrExpired
		}
		if err := s.Verify(resource, expires, genuine, now); !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Fatalf("Sign(%q, %d) = %s; Verify at %d = %v, want %v", resource, expires, genuine, nowUnix, err, want)
		}
		if err := urlsign.New(also, key).Verify(resource, expires, genuine, time.Unix(expires-1, 0)); expires != -1<<63 && err != nil {
			t.Fatalf("a link signed with the old key does not verify after rotation: %v", err)
		}

		// Bound to its resource and expiry, and to the keys.
		// ("<resource>\n<expires>" is unambiguous: expires has no newline.)
		if resource2 != resource || expires2 != expires {
			if err := s.Verify(resource2, expires2, genuine, now); !errors.Is(err, urlsign.ErrBadSignature) {
				t.Fatalf("the link for (%q, %d) passes as (%q, %d): %v", resource, expires, resource2, expires2, err)
			}
		}
		stranger := sha256.Sum256(append(append([]byte("stranger\n"), key...), also...))
		if err := urlsign.New(stranger[:]).Verify(resource, expires, genuine, now); !errors.Is(err, urlsign.ErrBadSignature) {
			t.Fatalf("a signer without the key accepts the link: %v", err)
		}
	})
}

// agree fails t unless s.Verify gives the answer the documented scheme
// gives for a signer holding keys.
func agree(t *testing.T, s *urlsign.Signer, keys [][]byte, resource string, expires int64, sig string, now time.Time) {
	t.Helper()
	got := s.Verify(resource, expires, sig, now)
	want := expected(keys, resource, expires, sig, now)
	if !errors.Is(got, want) || (want == nil) != (got == nil) {
		t.Fatalf("Verify(%q, %d, %q, now %d) = %v, want %v", resource, expires, sig, now.Unix(), got, want)
	}
}

// expected is the scheme in the package documentation, written out
// independently of the package.
func expected(keys [][]byte, resource string, expires int64, sig string, now time.Time) error {
	got, err := hex.DecodeString(sig)
	if err != nil {
		return urlsign.ErrBadSignature
	}
	for _, k := range keys {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(resource + "\n" + strconv.FormatInt(expires, 10)))
		if bytes.Equal(got, m.Sum(nil)) {
			if now.Unix() >= expires {
				return urlsign.ErrExpired
			}
			return nil
		}
	}
	return urlsign.ErrBadSignature
}
