package customheaders_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/customheaders"
	"github.com/hookd/hookd/secrets"
)

func TestSealOpenRedact(t *testing.T) {
	t.Parallel()
	kr, err := secrets.NewKeyring(secrets.GenerateMasterKey("k1"))
	require.NoError(t, err)
	h := map[string]string{"X-Token": "s3cret", "X-Tenant": "acme"}

	keyID, sealed := customheaders.Seal(kr, "ep_a", h)
	require.Equal(t, "k1", keyID)
	require.NotContains(t, string(sealed), "s3cret")
	got, err := customheaders.Open(kr, "ep_a", keyID, sealed)
	require.NoError(t, err)
	require.Equal(t, h, got)

	_, err = customheaders.Open(kr, "ep_b", keyID, sealed)
	require.ErrorIs(t, err, secrets.ErrBadCiphertext, "sealed for another endpoint: does not open")

	keyID, sealed = customheaders.Seal(kr, "ep_a", nil)
	require.Empty(t, keyID)
	require.Nil(t, sealed)
	got, err = customheaders.Open(kr, "ep_a", "", nil)
	require.NoError(t, err)
	require.Empty(t, got)

	recorded := map[string]string{"X-Token": "s3cret", "x-tenant": "acme", "User-Agent": "hookd"}
	red := customheaders.Redact(recorded, h)
	require.Equal(t, map[string]string{"X-Token": customheaders.Redacted, "x-tenant": customheaders.Redacted, "User-Agent": "hookd"}, red)
	require.Equal(t, "s3cret", recorded["X-Token"], "the input is not changed")
}
