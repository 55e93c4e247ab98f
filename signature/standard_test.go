package signature_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/signature"
)

// The example published with the Standard Webhooks specification (and the
// svix libraries' tests): secret, message id, timestamp, body and the
// signature their reference code computes.
const (
	swSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	swID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	swTS     = 1614265330
	swBody   = `{"test": 2432232314}`
	swSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestStandardKnownAnswer(t *testing.T) {
	t.Parallel()
	got, err := signature.StandardHeader(swID, swTS, []byte(swBody), swSecret)
	require.NoError(t, err)
	require.Equal(t, swSig, got)

	// The same, computed here from the definition.
	key, err := base64.StdEncoding.DecodeString(swSecret[len("whsec_"):])
	require.NoError(t, err)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(swID + "." + strconv.Itoa(swTS) + "." + swBody))
	require.Equal(t, "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)), got)
}

func TestStandardTwoKeysAndVerify(t *testing.T) {
	t.Parallel()
	other := "whsec_" + base64.StdEncoding.EncodeToString([]byte("another twenty-four byte"))
	both, err := signature.StandardHeader(swID, swTS, []byte(swBody), other, swSecret)
	require.NoError(t, err)
	first, err := signature.ComputeStandard(other, swID, swTS, []byte(swBody))
	require.NoError(t, err)
	require.Equal(t, "v1,"+first+" "+swSig, both, "one v1 entry per key, space-separated, in order")

	h := http.Header{}
	h.Set(signature.StandardHeaderID, swID)
	h.Set(signature.StandardHeaderTimestamp, strconv.Itoa(swTS))
	h.Set(signature.StandardHeaderSignature, both)
	require.True(t, signature.IsStandard(h))
	at := time.Unix(swTS, 0).Add(time.Minute)
	body := []byte(swBody)
	require.NoError(t, signature.VerifyStandard(h, body, []string{swSecret}, signature.DefaultTolerance, at))
	require.NoError(t, signature.VerifyStandard(h, body, []string{other}, signature.DefaultTolerance, at))
	third := "whsec_" + base64.StdEncoding.EncodeToString([]byte("a third secret"))
	require.ErrorIs(t, signature.VerifyStandard(h, body, []string{third}, signature.DefaultTolerance, at), signature.ErrNoMatch)
	require.ErrorIs(t, signature.VerifyStandard(h, []byte(swBody+" "), []string{swSecret}, signature.DefaultTolerance, at), signature.ErrNoMatch, "one more byte fails")
	require.ErrorIs(t, signature.VerifyStandard(h, body, []string{swSecret}, signature.DefaultTolerance, at.Add(time.Hour)), signature.ErrTooOld)
	require.NoError(t, signature.VerifyStandard(h, body, []string{swSecret}, 0, at.Add(time.Hour)), "zero tolerance skips the clock")
	require.ErrorIs(t, signature.VerifyStandard(h, body, []string{"whsec_not*base64"}, 0, at), signature.ErrBadSecret)

	// The id is signed: another message's id does not verify.
	h.Set(signature.StandardHeaderID, swID+"x")
	require.ErrorIs(t, signature.VerifyStandard(h, body, []string{swSecret}, 0, at), signature.ErrNoMatch)
	h.Set(signature.StandardHeaderID, swID)

	// Only v1 entries count.
	h.Set(signature.StandardHeaderSignature, "v2,"+swSig[len("v1,"):])
	require.ErrorIs(t, signature.VerifyStandard(h, body, []string{swSecret}, 0, at), signature.ErrNoMatch)

	h.Set(signature.StandardHeaderTimestamp, "yesterday")
	require.ErrorIs(t, signature.VerifyStandard(h, body, []string{swSecret}, 0, at), signature.ErrBadTimestamp)
	require.ErrorIs(t, signature.VerifyStandard(http.Header{}, body, []string{swSecret}, 0, at), signature.ErrStandardMissingHeaders)
	require.False(t, signature.IsStandard(http.Header{}))
	unsigned := http.Header{}
	unsigned.Set(signature.StandardHeaderID, swID)
	unsigned.Set(signature.StandardHeaderTimestamp, "1")
	require.True(t, signature.IsStandard(unsigned), "an unsigned Standard Webhooks delivery is still one")
	hookbridge := http.Header{}
	hookbridge.Set(signature.HeaderID, swID)
	require.False(t, signature.IsStandard(hookbridge))

	_, err = signature.StandardHeader(swID, swTS, body, "whsec_%%%")
	require.ErrorIs(t, err, signature.ErrBadSecret)
}
