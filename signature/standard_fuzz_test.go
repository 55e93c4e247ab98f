package signature_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookd/hookd/signature"
)

// FuzzVerifyStandard checks VerifyStandard against the Standard Webhooks
// scheme, computed here with crypto/hmac rather than through the package:
//   - on any headers and secrets (usable or not), VerifyStandard answers
//     what the scheme says: ErrStandardMissingHeaders, ErrBadTimestamp,
//     ErrTooOld, ErrBadSecret when no secret is base64, or nil exactly when
//     one space-separated "v1,<base64>" entry matches a usable secret, and
//     ErrNoMatch otherwise;
//   - a header made by StandardHeader always verifies under each secret,
//     even between junk entries;
//   - another id, body or secret never verifies.
func FuzzVerifyStandard(f *testing.F) {
	f.Add([]byte("twenty-four random bytes"), "whsec_bad*", "msg_1", "1700000000", "v1,AAAA", []byte(`{"a":1}`), int32(60))
	f.Add([]byte{0}, "", "", "1700000000", "", []byte(nil), int32(0))
	f.Add([]byte("k"), "whsec_", "id", "+1700000000", " v1, v2,x  v1,", []byte("{}"), int32(-300))
	f.Add([]byte("k"), "aw==", "id.with.dots", "-1", "v1,,v1", []byte("x"), int32(301))
	f.Add([]byte("k"), "whsec_aw==", "\x00", "9223372036854775807", "V1,AB", []byte("\xff\xfe"), int32(-2147483648))
	f.Fuzz(func(t *testing.T, key []byte, other, id, tsText, sigs string, body []byte, skew int32) {
		if len(key) == 0 {
			key = []byte{0}
		}
		now := time.Unix(fuzzNow+int64(skew), 0)
		secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
		secrets := []string{secret, other}

		for _, tol := range []time.Duration{0, signature.DefaultTolerance} {
			h := http.Header{}
			h.Set(signature.StandardHeaderID, id)
			h.Set(signature.StandardHeaderTimestamp, tsText)
			h.Set(signature.StandardHeaderSignature, sigs)
			agreeStandard(t, h, body, secrets, tol, now)
			agreeStandard(t, h, body, []string{other}, tol, now)
		}

		// A genuine header (hookd signs with usable secrets only), at the
		// fuzzed timestamp when it parses and now otherwise.
		ts, err := strconv.ParseInt(tsText, 10, 64)
		if err != nil {
			ts = now.Unix()
		}
		usable := []string{secret}
		if _, err := signature.ComputeStandard(other, id, ts, body); err == nil {
			usable = append(usable, other)
		}
		genuine, err := signature.StandardHeader(id, ts, body, usable...)
		if err != nil {
			t.Fatalf("StandardHeader refused usable secrets: %v", err)
		}
		if n := len(strings.Fields(genuine)); n != len(usable) {
			t.Fatalf("StandardHeader gave %d entries for %d secrets: %q", n, len(usable), genuine)
		}
		h := http.Header{}
		h.Set(signature.StandardHeaderID, id)
		h.Set(signature.StandardHeaderTimestamp, strconv.FormatInt(ts, 10))
		h.Set(signature.StandardHeaderSignature, sigs+" "+genuine+" "+sigs)
		if h.Get(signature.StandardHeaderID) != "" {
			for _, s := range usable {
				if err := signature.VerifyStandard(h, body, []string{s}, 0, now); err != nil {
					t.Fatalf("a genuine signature for secret %q does not verify: %v (header %q)", s, err, h.Get(signature.StandardHeaderSignature))
				}
			}
		}

		// Tampering: another id, body or secret.
		moved := h.Clone()
		moved.Set(signature.StandardHeaderID, id+"x")
		agreeStandard(t, moved, body, secrets, 0, now)
		agreeStandard(t, h, body, []string{"whsec_" + base64.StdEncoding.EncodeToString(append(key, 'x'))}, 0, now)
		if len(body) > 0 {
			changed := append([]byte(nil), body...)
			changed[len(changed)/2] ^= 0x01
			agreeStandard(t, h, changed, secrets, 0, now)
		}
	})
}

// agreeStandard fails t unless VerifyStandard gives the answer the scheme
// gives.
func agreeStandard(t *testing.T, h http.Header, body []byte, secrets []string, tol time.Duration, now time.Time) {
	t.Helper()
	got := signature.VerifyStandard(h, body, secrets, tol, now)
	want := expectedStandard(h, body, secrets, tol, now)
	if !errors.Is(got, want) || (want == nil) != (got == nil) {
		t.Fatalf("VerifyStandard(id %q, ts %q, sig %q, body %q, secrets %q, tolerance %v) = %v, want %v",
			h.Get(signature.StandardHeaderID), h.Get(signature.StandardHeaderTimestamp), h.Get(signature.StandardHeaderSignature),
			body, secrets, tol, got, want)
	}
}

// expectedStandard is the Standard Webhooks scheme as documented, written
// out independently of the package.
func expectedStandard(h http.Header, body []byte, secrets []string, tol time.Duration, now time.Time) error {
	id, tsText, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || tsText == "" || sigs == "" {
		return signature.ErrStandardMissingHeaders
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return signature.ErrBadTimestamp
	}
	if tol > 0 {
		limit := int64(tol / time.Second)
		n := now.Unix()
		if ts < n-limit || ts > n+limit {
			return signature.ErrTooOld
		}
	}
	usable := false
	for _, s := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
		if err != nil || len(key) == 0 {
			continue
		}
		usable = true
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id + "." + strconv.FormatInt(ts, 10) + "."))
		mac.Write(body)
		want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
		for _, entry := range strings.Fields(sigs) {
			if entry == want {
				return nil
			}
		}
	}
	if !usable {
		return signature.ErrBadSecret
	}
	return signature.ErrNoMatch
}
