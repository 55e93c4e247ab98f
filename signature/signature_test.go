package signature_test

import (
	"bufio"
	"encoding/hex"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/signature"
)

type vector struct {
	secret string
	ts     int64
	body   []byte
	want   string
}

// vectors reads testdata/vectors.tsv, computed with openssl by
// testdata/gen-vectors.sh, independently of this package.
func vectors(t *testing.T) []vector {
	t.Helper()
	f, err := os.Open("testdata/vectors.tsv")
	require.NoError(t, err)
	defer f.Close()
	var out []vector
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "#") {
			continue
		}
		cols := strings.Split(sc.Text(), "\t")
		require.Len(t, cols, 4)
		ts, err := strconv.ParseInt(cols[1], 10, 64)
		require.NoError(t, err)
		body, err := hex.DecodeString(cols[2])
		require.NoError(t, err)
		out = append(out, vector{cols[0], ts, body, cols[3]})
	}
	require.NoError(t, sc.Err())
	require.GreaterOrEqual(t, len(out), 4)
	return out
}

func TestKnownAnswers(t *testing.T) {
	t.Parallel()
	for _, v := range vectors(t) {
		require.Equal(t, v.want, signature.Header(v.ts, v.body, v.secret), "%s", v.body)
	}
}

func TestTwoKeysAndVerify(t *testing.T) {
	t.Parallel()
	vs := vectors(t)
	v := vs[0]
	other := "whsec_" + strings.Repeat("x", 32)
	both := signature.Header(v.ts, v.body, other, v.secret)
	require.Equal(t, "sha256="+signature.Compute(other, v.ts, v.body)+","+v.want, both)

	h := http.Header{}
	h.Set(signature.HeaderTimestamp, strconv.FormatInt(v.ts, 10))
	h.Set(signature.HeaderSignature, both)
	at := time.Unix(v.ts, 0).Add(time.Minute)
	require.NoError(t, signature.Verify(h, v.body, []string{v.secret}, signature.DefaultTolerance, at))
	require.NoError(t, signature.Verify(h, v.body, []string{other}, signature.DefaultTolerance, at))
	require.ErrorIs(t, signature.Verify(h, v.body, []string{vs[1].secret}, signature.DefaultTolerance, at), signature.ErrNoMatch)
	require.ErrorIs(t, signature.Verify(h, append([]byte{' '}, v.body...), []string{v.secret}, signature.DefaultTolerance, at), signature.ErrNoMatch, "one changed byte fails")
	require.ErrorIs(t, signature.Verify(h, v.body, []string{v.secret}, signature.DefaultTolerance, at.Add(time.Hour)), signature.ErrTooOld)
	require.NoError(t, signature.Verify(h, v.body, []string{v.secret}, 0, at.Add(time.Hour)), "zero tolerance skips the clock")

	h.Set(signature.HeaderTimestamp, "yesterday")
	require.ErrorIs(t, signature.Verify(h, v.body, []string{v.secret}, 0, at), signature.ErrBadTimestamp)
	require.ErrorIs(t, signature.Verify(http.Header{}, v.body, []string{v.secret}, 0, at), signature.ErrMissingHeaders)
}
