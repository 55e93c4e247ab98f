package ids

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNewIDsMatchTheirFormats(t *testing.T) {
	t.Parallel()
	for range 100 {
		require.True(t, ValidEndpoint(NewEndpoint()))
		require.True(t, ValidSigningKey(NewSigningKey()))
		require.True(t, ValidAPIKey(NewAPIKey()))
		require.Regexp(t, `^req_[A-Za-z0-9]{24}$`, NewRequest())
		require.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, NewUUID())
	}
}

func TestIDsSortByCreation(t *testing.T) {
	t.Parallel()
	prev := NewEndpoint()
	for range 1000 {
		next := NewEndpoint()
		require.Less(t, prev, next)
		prev = next
	}
}

func TestValidRejectsMalformed(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "ep_", "ep_nonexistent_12345", "ep_" + strings.Repeat("A", 32), "sk_" + strings.Repeat("a", 32), "ep_" + strings.Repeat("a", 33)} {
		require.False(t, ValidEndpoint(s), s)
	}
	require.False(t, ValidSigningKey("ep_"+strings.Repeat("a", 32)))
	require.False(t, ValidAPIKey("key_xyz"))
}

func TestRandomAlnumUsesWholeAlphabet(t *testing.T) {
	t.Parallel()
	seen := map[rune]bool{}
	for _, r := range RandomAlnum(20000) {
		seen[r] = true
	}
	require.Len(t, seen, 62)
}
