package credentials

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestAPIKeyShapeAndHash(t *testing.T) {
	t.Parallel()
	live, test := NewAPIKey(ModeLive), NewAPIKey(ModeTest)
	require.Regexp(t, `^hk_live_[A-Za-z0-9]{32}$`, live)
	require.Regexp(t, `^hk_test_[A-Za-z0-9]{32}$`, test)
	require.True(t, WellFormedAPIKey(live))
	require.Equal(t, live[:11], DisplayPrefix(live))
	require.Len(t, HashAPIKey(live), 64)
	require.NotEqual(t, HashAPIKey(live), HashAPIKey(test))
	// Known answer: sha256("hk_live_x") computed with `printf %s hk_live_x | sha256sum`.
	require.Equal(t, "6aabdc4edd7aa6eadb2c9452f8b013f8dc78c59fb5e7f4cc4673034979226b79", HashAPIKey("hk_live_x"))
	for _, bad := range []string{"", "hk_live_short", "hb_live_" + strings.Repeat("a", 32), "hk_prod_" + strings.Repeat("a", 32), "hk_live_" + strings.Repeat("a", 31) + "-"} {
		require.False(t, WellFormedAPIKey(bad), bad)
	}
}

func TestSigningSecretShape(t *testing.T) {
	t.Parallel()
	s := NewSigningSecret()
	require.True(t, strings.HasPrefix(s, "whsec_"))
	require.Len(t, s, 6+32)
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
	require.NoError(t, err)
	require.Len(t, raw, 24)
	require.Equal(t, s[len(s)-4:], KeyHint(s))
	require.NotEqual(t, s, NewSigningSecret())
}
