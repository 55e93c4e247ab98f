package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The Standard Webhooks scheme (https://www.standardwebhooks.com), for
// endpoints whose signature_scheme is "standard_webhooks": every delivery
// carries
//
//	webhook-id:        the message id (the same on every attempt)
//	webhook-timestamp: Unix seconds when this attempt was signed
//	webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>
//
// where the HMAC key is the base64-decoded part of the secret after
// "whsec_". While an endpoint has two active keys the header holds one
// "v1,…" entry per key, separated by a space. The verifiers of the
// standardwebhooks and svix libraries accept these deliveries with the
// endpoint's secret as issued.

// Signature schemes, as an endpoint's signature_scheme names them.
const (
	SchemeHookBridge       = "hookbridge"
	SchemeStandardWebhooks = "standard_webhooks"
)

// Standard Webhooks header names.
const (
	StandardHeaderID        = "webhook-id"
	StandardHeaderTimestamp = "webhook-timestamp"
	StandardHeaderSignature = "webhook-signature"
)

// More errors, of the Standard Webhooks functions.
var (
	ErrStandardMissingHeaders = errors.New("signature: missing webhook-id, webhook-timestamp or webhook-signature")
	ErrBadSecret              = errors.New(`signature: the secret is not "whsec_" followed by base64`)
)

// standardKey returns the HMAC key of a Standard Webhooks secret: the
// base64 after the "whsec_" prefix (a secret without the prefix is taken
// as base64 whole, as the reference verifiers do).
func standardKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return nil, ErrBadSecret
	}
	return key, nil
}

func computeStandard(key []byte, id string, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(strconv.FormatInt(ts, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// ComputeStandard returns the base64 HMAC-SHA256 of "<id>.<ts>.<body>"
// keyed by the decoded secret.
func ComputeStandard(secret, id string, ts int64, body []byte) (string, error) {
	key, err := standardKey(secret)
	if err != nil {
		return "", err
	}
	return computeStandard(key, id, ts, body), nil
}

// StandardHeader returns the webhook-signature value for message id and
// body at ts: one "v1,<base64>" per secret, space-separated, in the order
// given.
func StandardHeader(id string, ts int64, body []byte, secrets ...string) (string, error) {
	parts := make([]string, len(secrets))
	for i, s := range secrets {
		sig, err := ComputeStandard(s, id, ts, body)
		if err != nil {
			return "", err
		}
		parts[i] = "v1," + sig
	}
	return strings.Join(parts, " "), nil
}

// VerifyStandard checks a Standard Webhooks delivery against the secrets
// the receiver knows, like Verify: the timestamp within tolerance of now
// (zero skips the check) and one v1 signature matching one secret,
// compared in constant time. Secrets that are not base64 are skipped; with
// none usable it returns ErrBadSecret.
func VerifyStandard(h http.Header, body []byte, secrets []string, tolerance time.Duration, now time.Time) error {
	id, tsText, sigs := h.Get(StandardHeaderID), h.Get(StandardHeaderTimestamp), h.Get(StandardHeaderSignature)
	if id == "" || tsText == "" || sigs == "" {
		return ErrStandardMissingHeaders
	}
	ts, err := checkTimestamp(tsText, tolerance, now)
	if err != nil {
		return err
	}
	usable := false
	for _, s := range secrets {
		key, err := standardKey(s)
		if err != nil {
			continue
		}
		usable = true
		want := []byte(computeStandard(key, id, ts, body))
		for _, entry := range strings.Fields(sigs) {
			version, sig, ok := strings.Cut(entry, ",")
			if ok && version == "v1" && hmac.Equal([]byte(sig), want) {
				return nil
			}
		}
	}
	if !usable {
		return ErrBadSecret
	}
	return ErrNoMatch
}

// IsStandard reports whether h is a Standard Webhooks delivery (signed or
// not) rather than a HookBridge one.
func IsStandard(h http.Header) bool {
	standard := h.Get(StandardHeaderSignature) != "" || h.Get(StandardHeaderID) != "" || h.Get(StandardHeaderTimestamp) != ""
	return standard && h.Get(HeaderSignature) == "" && h.Get(HeaderID) == ""
}
