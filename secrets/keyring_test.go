package secrets

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSealOpenRoundTrip(t *testing.T) {
	t.Parallel()
	kr, err := NewKeyring(GenerateMasterKey("k1"))
	require.NoError(t, err)
	id, sealed := kr.Seal([]byte("whsec_secret"), []byte("sk_1"))
	require.Equal(t, "k1", id)
	require.False(t, bytes.Contains(sealed, []byte("whsec_secret")))
	pt, err := kr.Open(id, sealed, []byte("sk_1"))
	require.NoError(t, err)
	require.Equal(t, "whsec_secret", string(pt))

	_, sealed2 := kr.Seal([]byte("whsec_secret"), []byte("sk_1"))
	require.NotEqual(t, sealed, sealed2, "every seal uses a fresh nonce")
}

func TestOpenRefusesWrongAADTamperAndUnknownKey(t *testing.T) {
	t.Parallel()
	kr, err := NewKeyring(GenerateMasterKey("k1"))
	require.NoError(t, err)
	id, sealed := kr.Seal([]byte("hello"), []byte("sk_1"))

	_, err = kr.Open(id, sealed, []byte("sk_2"))
	require.ErrorIs(t, err, ErrBadCiphertext)

	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	_, err = kr.Open(id, tampered, []byte("sk_1"))
	require.ErrorIs(t, err, ErrBadCiphertext)

	_, err = kr.Open("other", sealed, []byte("sk_1"))
	require.ErrorIs(t, err, ErrUnknownKey)

	_, err = kr.Open(id, sealed[:5], []byte("sk_1"))
	require.ErrorIs(t, err, ErrBadCiphertext)
}

func TestOldKeysStillOpen(t *testing.T) {
	t.Parallel()
	oldKey := GenerateMasterKey("old")
	before, err := NewKeyring(oldKey)
	require.NoError(t, err)
	id, sealed := before.Seal([]byte("s"), nil)

	after, err := NewKeyring(GenerateMasterKey("new"), oldKey)
	require.NoError(t, err)
	pt, err := after.Open(id, sealed, nil)
	require.NoError(t, err)
	require.Equal(t, "s", string(pt))
	newID, _ := after.Seal([]byte("s"), nil)
	require.Equal(t, "new", newID)

	_, err = NewKeyring(oldKey, oldKey)
	require.Error(t, err)
}

func TestParseMasterKey(t *testing.T) {
	t.Parallel()
	k := GenerateMasterKey("prod-2026")
	parsed, err := ParseMasterKey(k.String())
	require.NoError(t, err)
	require.Equal(t, k, parsed)

	for _, bad := range []string{"", "nokey", "id:notbase64!!", "id:c2hvcnQ=", "bad id:" + k.String()[10:], ":abc"} {
		_, err := ParseMasterKey(bad)
		require.Error(t, err, bad)
	}
}

func TestKeyFileIsCreatedPrivateAndReloaded(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "data", "master.key")

	_, _, err := LoadOrCreateKeyFile(path, false)
	require.Error(t, err, "missing file without create")

	k1, created, err := LoadOrCreateKeyFile(path, true)
	require.NoError(t, err)
	require.True(t, created)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	k2, created, err := LoadOrCreateKeyFile(path, true)
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, k1, k2)

	require.NoError(t, os.Chmod(path, 0o644))
	_, _, err = LoadOrCreateKeyFile(path, true)
	require.ErrorContains(t, err, "chmod 600")
}

// TestDerivedKeys pins the derivation to an independently computed value
// (printf %s purpose | openssl dgst -sha256 -mac HMAC -macopt hexkey:00…1f)
// for the active key, which comes first, and checks that purposes and
// master keys give different keys.
func TestDerivedKeys(t *testing.T) {
	t.Parallel()
	key := make([]byte, KeySize)
	for i := range key {
		key[i] = byte(i)
	}
	kr, err := NewKeyring(MasterKey{ID: "new", Key: key}, GenerateMasterKey("old"))
	require.NoError(t, err)
	require.Equal(t, "f3c88ce8cdc348f710637bf61b0f3e45943a15bf9346af3927a4461b21a0b5ee", hex.EncodeToString(kr.DerivedKeys("hookd/test")[0]),
		"the active key's derivation comes first")
	all := kr.DerivedKeys("hookd/a")
	require.Len(t, all, 2)
	require.NotEqual(t, all[0], kr.DerivedKeys("hookd/b")[0])
	require.NotEqual(t, all[0], all[1])

	// After a rotation the old key's derivation is still offered for checks.
	oldOnly, err := NewKeyring(kr.masterForTest("old"))
	require.NoError(t, err)
	require.Equal(t, oldOnly.DerivedKeys("hookd/a")[0], all[1])
}

func (kr *Keyring) masterForTest(id string) MasterKey { return MasterKey{ID: id, Key: kr.raw[id]} }
