// Package urlsign makes and checks expiring signatures for links that work
// without an API key, like presigned object-store URLs: whoever holds the
// link may use it until it expires, and nobody can make one or stretch its
// expiry without the key.
//
// A signature is lowercase hex HMAC-SHA256 over "<resource>\n<expires>"
// (expires in Unix seconds). Links are signed with one key and verified
// against a list, so links made before a key rotation keep working while
// the old key is still listed.
package urlsign

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"time"
)

// ErrBadSignature means the signature is malformed or was not made by any
// of the signer's keys for this resource and expiry: refuse the link.
var ErrBadSignature = errors.New("urlsign: bad signature")

// ErrExpired means the signature is genuine but its expiry has passed: the
// holder should ask for a new link.
var ErrExpired = errors.New("urlsign: link expired")

// Signer signs with one key and verifies with several. The zero value is
// not usable; build it with New. It is safe for concurrent use.
type Signer struct {
	sign   []byte
	verify [][]byte
}

// New returns a Signer that signs with sign and accepts signatures made by
// sign or any of also.
func New(sign []byte, also ...[]byte) *Signer {
	return &Signer{sign: sign, verify: append([][]byte{sign}, also...)}
}

// Sign returns the signature of resource valid until expires (Unix
// seconds, so sub-second parts are dropped).
func (s *Signer) Sign(resource string, expires time.Time) string {
	return hex.EncodeToString(mac(s.sign, resource, expires.Unix()))
}

// Verify checks sig for resource and expires (Unix seconds) at now. It
// compares in constant time and checks the signature before the time, so a
// forged link learns nothing about expiry. It returns ErrBadSignature or
// ErrExpired.
func (s *Signer) Verify(resource string, expires int64, sig string, now time.Time) error {
	got, err := hex.DecodeString(sig)
	if err != nil || len(got) != sha256.Size {
		return ErrBadSignature
	}
	ok := false
	for _, k := range s.verify {
		if hmac.Equal(got, mac(k, resource, expires)) {
			ok = true
		}
	}
	if !ok {
		return ErrBadSignature
	}
	if now.Unix() >= expires {
		return ErrExpired
	}
	return nil
}

func mac(key []byte, resource string, expires int64) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(resource))
	m.Write([]byte{'\n'})
	m.Write([]byte(strconv.FormatInt(expires, 10)))
	return m.Sum(nil)
}
