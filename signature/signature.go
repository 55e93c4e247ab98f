// Package signature signs and verifies hookd's webhook deliveries. It has no
// other hookd imports, so receivers can use it as it is.
//
// Scheme (HookBridge compatible): every delivery carries
//
//	X-Webhook-Id:        the message id
//	X-Webhook-Timestamp: Unix seconds when this attempt was signed
//	X-Webhook-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>
//
// The HMAC key is the whole secret string as issued ("whsec_…"), and the body
// is the exact bytes received. While an endpoint has two active keys the
// header holds both signatures, comma-separated; a receiver accepts the
// delivery if any one matches a secret it knows.
//
// Endpoints set to the Standard Webhooks scheme are signed as
// StandardHeader describes instead, and verified with VerifyStandard.
package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names.
const (
	HeaderID        = "X-Webhook-Id"
	HeaderTimestamp = "X-Webhook-Timestamp"
	HeaderSignature = "X-Webhook-Signature"
)

// DefaultTolerance is the freshness window we recommend receivers enforce.
const DefaultTolerance = 5 * time.Minute

// Errors returned by Verify.
var (
	ErrMissingHeaders = errors.New("signature: missing X-Webhook-Timestamp or X-Webhook-Signature")
	ErrBadTimestamp   = errors.New("signature: X-Webhook-Timestamp is not Unix seconds")
	ErrTooOld         = errors.New("signature: timestamp outside the tolerance window")
	ErrNoMatch        = errors.New("signature: no signature matches any secret")
)

// Compute returns the lower-case hex HMAC-SHA256 of "<ts>.<body>" keyed by
// secret.
func Compute(secret string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(strconv.FormatInt(ts, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// Header returns the X-Webhook-Signature value for body at ts: one
// "sha256=<hex>" per secret, comma-separated, in the order given.
func Header(ts int64, body []byte, secrets ...string) string {
	parts := make([]string, len(secrets))
	for i, s := range secrets {
		parts[i] = "sha256=" + Compute(s, ts, body)
	}
	return strings.Join(parts, ",")
}

// Verify checks a delivery's headers against the secrets the receiver
// knows: the timestamp must be within tolerance of now (zero tolerance
// skips the check) and one signature must match one secret, compared in
// constant time.
func Verify(h http.Header, body []byte, secrets []string, tolerance time.Duration, now time.Time) error {
	tsText, sigs := h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	if tsText == "" || sigs == "" {
		return ErrMissingHeaders
	}
	ts, err := checkTimestamp(tsText, tolerance, now)
	if err != nil {
		return err
	}
	for _, s := range secrets {
		want := []byte("sha256=" + Compute(s, ts, body))
		for _, got := range strings.Split(sigs, ",") {
			if hmac.Equal([]byte(strings.TrimSpace(got)), want) {
				return nil
			}
		}
	}
	return ErrNoMatch
}

// checkTimestamp parses a delivery's Unix-seconds timestamp and checks it
// is within tolerance of now (zero tolerance skips the check).
func checkTimestamp(tsText string, tolerance time.Duration, now time.Time) (int64, error) {
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return 0, ErrBadTimestamp
	}
	if tolerance > 0 {
		d := now.Sub(time.Unix(ts, 0))
		if d > tolerance || d < -tolerance {
			return 0, ErrTooOld
		}
	}
	return ts, nil
}
