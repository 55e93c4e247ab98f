package urlsign_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/urlsign"
)

// TestSignKnownAnswer pins the format to a value computed with openssl:
// printf 'res-1\n1700000000' | openssl dgst -sha256 -hmac key-1
func TestSignKnownAnswer(t *testing.T) {
	t.Parallel()
	s := urlsign.New([]byte("key-1"))
	require.Equal(t, "0895c90c164551c374415de9bc5ee0f48c0b12bb87694c4987509c39c7d35b5a", s.Sign("res-1", time.Unix(1700000000, 0)))
}

func TestVerify(t *testing.T) {
	t.Parallel()
	now := time.Unix(1700000000, 0)
	exp := now.Add(5 * time.Minute)
	oldKey, newKey := []byte("old"), []byte("new")
	s := urlsign.New(newKey, oldKey)
	sig := s.Sign("res-1", exp)

	require.NoError(t, s.Verify("res-1", exp.Unix(), sig, now))
	require.NoError(t, s.Verify("res-1", exp.Unix(), sig, exp.Add(-time.Second)), "valid until the last second")
	require.ErrorIs(t, s.Verify("res-1", exp.Unix(), sig, exp), urlsign.ErrExpired)

	cases := map[string]struct {
		resource string
		expires  int64
		sig      string
	}{
		"OtherResource":   {"res-2", exp.Unix(), sig},
		"StretchedExpiry": {"res-1", exp.Unix() + 3600, sig},
		"FlippedHexDigit": {"res-1", exp.Unix(), flip(sig)},
		"TooLong":         {"res-1", exp.Unix(), sig + "00"},
		"Short":           {"res-1", exp.Unix(), sig[:62]},
		"Empty":           {"res-1", exp.Unix(), ""},
		"NotHex":          {"res-1", exp.Unix(), strings.Repeat("z", 64)},
		"ExpiredAndWrong": {"res-1", 1, sig},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			require.ErrorIs(t, s.Verify(c.resource, c.expires, c.sig, now), urlsign.ErrBadSignature)
		})
	}

	t.Run("OldKeyStillVerifies", func(t *testing.T) {
		t.Parallel()
		before := urlsign.New(oldKey).Sign("res-1", exp)
		require.NoError(t, s.Verify("res-1", exp.Unix(), before, now))
		require.ErrorIs(t, urlsign.New(newKey).Verify("res-1", exp.Unix(), before, now), urlsign.ErrBadSignature,
			"once the old key is dropped its links stop working")
	})
}

func flip(sig string) string {
	b := []byte(sig)
	if b[10] == '0' {
		b[10] = '1'
	} else {
		b[10] = '0'
	}
	return string(b)
}
