package signature_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookd/hookd/signature"
)

// fuzzNow is the receiver's clock in FuzzVerify, moved by the fuzzed skew.
const fuzzNow = 1_700_000_000

// FuzzVerify checks Verify against the scheme as documented, computed here
// with crypto/hmac rather than through Compute:
//   - on any headers, Verify answers what the scheme says: ErrMissingHeaders,
//     ErrBadTimestamp, ErrTooOld, or nil exactly when one comma-separated
//     entry is "sha256=" + hex HMAC-SHA256(secret, "<ts>.<body>") for a
//     known secret, and ErrNoMatch otherwise;
//   - a header made by Header for fresh ts always verifies, under either
//     secret, even between junk entries;
//   - one changed body byte or an unknown secret never verifies.
func FuzzVerify(f *testing.F) {
	f.Add("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_old", "1700000000", "sha256=00", []byte(`{"a":1}`), int32(60))
	f.Add("k", "", "1700000000", "", []byte(nil), int32(0))
	f.Add("k", "k2", "+1700000000", " sha256=zz , ,sha256=", []byte("{}"), int32(-300))
	f.Add("k", "k2", "-1", "sha256=,", []byte("x"), int32(301))
	f.Add("k", "k2", "9223372036854775807", "SHA256=AB", []byte("\xff\xfe"), int32(-2147483648))
	f.Add("", "", "1.7e9", "sha256=0,sha256=1", []byte("\xed\xa0\x80") /* a lone surrogate in WTF-8 */, int32(2147483647))
	f.Fuzz(func(t *testing.T, secret, other, tsText, sigs string, body []byte, skew int32) {
		now := time.Unix(fuzzNow+int64(skew), 0)
		secrets := []string{secret, other}

		// The headers as given.
		for _, tol := range []time.Duration{0, signature.DefaultTolerance} {
			h := http.Header{}
			h.Set(signature.HeaderTimestamp, tsText)
			h.Set(signature.HeaderSignature, sigs)
			agree(t, h, body, secrets, tol, now)
		}

		// A genuine header, at the fuzzed timestamp when it parses and
		// fresh otherwise, between junk entries.
		ts, err := strconv.ParseInt(tsText, 10, 64)
		if err != nil {
			ts = now.Unix()
		}
		genuine := signature.Header(ts, body, secrets...)
		if n := strings.Count(genuine, ",") + 1; n != len(secrets) {
			t.Fatalf("Header gave %d entries for %d secrets: %q", n, len(secrets), genuine)
		}
		h := http.Header{}
		h.Set(signature.HeaderTimestamp, strconv.FormatInt(ts, 10))
		h.Set(signature.HeaderSignature, sigs+","+genuine+", "+sigs)
		for _, s := range secrets {
			if err := signature.Verify(h, body, []string{s}, 0, now); err != nil {
				t.Fatalf("a genuine signature for secret %q does not verify: %v (header %q)", s, err, h.Get(signature.HeaderSignature))
			}
		}
		fresh := h.Clone()
		fresh.Set(signature.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
		fresh.Set(signature.HeaderSignature, signature.Header(now.Unix(), body, secrets...))
		if err := signature.Verify(fresh, body, []string{other}, signature.DefaultTolerance, now); err != nil {
			t.Fatalf("a fresh genuine signature does not verify: %v", err)
		}

		// Tampering: another secret or another body must not verify.
		agree(t, h, body, []string{secret + "\x00x", other + "y"}, 0, now)
		if len(body) > 0 {
			changed := append([]byte(nil), body...)
			changed[len(changed)/2] ^= 0x01
			agree(t, h, changed, secrets, 0, now)
		}
	})
}

// agree fails t unless Verify gives the answer the documented scheme
// gives.
func agree(t *testing.T, h http.Header, body []byte, secrets []string, tol time.Duration, now time.Time) {
	t.Helper()
	got := signature.Verify(h, body, secrets, tol, now)
	want := expected(h.Get(signature.HeaderTimestamp), h.Get(signature.HeaderSignature), body, secrets, tol, now)
	if !errors.Is(got, want) || (want == nil) != (got == nil) {
		t.Fatalf("Verify(ts %q, sig %q, body %q, secrets %q, tolerance %v) = %v, want %v",
			h.Get(signature.HeaderTimestamp), h.Get(signature.HeaderSignature), body, secrets, tol, got, want)
	}
}

// expected is the scheme in the package documentation, written out
// independently of the package.
func expected(tsText, sigs string, body []byte, secrets []string, tol time.Duration, now time.Time) error {
	if tsText == "" || sigs == "" {
		return signature.ErrMissingHeaders
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return signature.ErrBadTimestamp
	}
	if tol > 0 {
		// |now - ts| in whole seconds, without overflow: now is within
		// ±2^31 s of fuzzNow, so only ts can be extreme.
		limit := int64(tol / time.Second)
		n := now.Unix()
		if ts < n-limit || ts > n+limit {
			return signature.ErrTooOld
		}
	}
	for _, s := range secrets {
		mac := hmac.New(sha256.New, []byte(s))
		mac.Write([]byte(strconv.FormatInt(ts, 10) + "."))
		mac.Write(body)
		want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
		for _, entry := range strings.Split(sigs, ",") {
			if strings.TrimSpace(entry) == want {
				return nil
			}
		}
	}
	return signature.ErrNoMatch
}
