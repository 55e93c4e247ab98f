package store_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/secrets"
	"github.com/hookd/hookd/store"
)

// sealedKey is a signing key whose secret is really sealed by kr.
func sealedKey(t *testing.T, kr *secrets.Keyring, projectID, endpointID string) (store.SigningKey, string) {
	t.Helper()
	k := newKey(projectID, endpointID)
	secret := "whsec_" + ids.RandomAlnum(32)
	k.MasterKeyID, k.SecretSealed = kr.Seal([]byte(secret), []byte(k.ID))
	return k, secret
}

// keyRows reads every signing key's id, master key id and sealed secret.
func keyRows(t *testing.T, s *store.Store) map[string]store.SigningKey {
	t.Helper()
	rows, err := s.DB().Query("SELECT id, master_key_id, secret_sealed FROM signing_keys")
	require.NoError(t, err)
	defer rows.Close()
	out := map[string]store.SigningKey{}
	for rows.Next() {
		var k store.SigningKey
		require.NoError(t, rows.Scan(&k.ID, &k.MasterKeyID, &k.SecretSealed))
		out[k.ID] = k
	}
	require.NoError(t, rows.Err())
	return out
}

// resealWith re-seals a row with kr's active key, as `hookd masterkey
// rotate` does.
func resealWith(kr *secrets.Keyring) func(store.SigningKey) (string, []byte, error) {
	return func(k store.SigningKey) (string, []byte, error) {
		pt, err := kr.Open(k.MasterKeyID, k.SecretSealed, []byte(k.ID))
		if err != nil {
			return "", nil, err
		}
		id, sealed := kr.Seal(pt, []byte(k.ID))
		return id, sealed, nil
	}
}

func TestResealSigningKeysMovesEveryKeyToTheActiveMasterKey(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		a, b, c := secrets.GenerateMasterKey("A"), secrets.GenerateMasterKey("B"), secrets.GenerateMasterKey("C")
		krA, err := secrets.NewKeyring(a)
		require.NoError(t, err)
		krC, err := secrets.NewKeyring(c)
		require.NoError(t, err)

		// Nine keys under A, two under C, spread over batches of four.
		plain := map[string]string{}
		for i := range 5 {
			e, _ := newEndpoint(f.project.ID, fmt.Sprintf("https://r%d.example.com/", i))
			kr := krA
			if i == 4 {
				kr = krC
			}
			k1, s1 := sealedKey(t, kr, f.project.ID, e.ID)
			require.NoError(t, f.s.CreateEndpoint(ctx, e, k1))
			k2, s2 := sealedKey(t, kr, f.project.ID, e.ID)
			require.NoError(t, f.s.CreateSigningKey(ctx, k2))
			plain[k1.ID], plain[k2.ID] = s1, s2
		}
		e, _ := newEndpoint(f.project.ID, "https://r9.example.com/")
		k, s := sealedKey(t, krA, f.project.ID, e.ID)
		require.NoError(t, f.s.CreateEndpoint(ctx, e, k))
		plain[k.ID] = s

		krB, err := secrets.NewKeyring(b, a, c)
		require.NoError(t, err)
		n, err := f.s.ResealSigningKeys(ctx, "B", 4, resealWith(krB))
		require.NoError(t, err)
		require.Equal(t, map[string]int{"A": 9, "C": 2}, n)

		onlyB, err := secrets.NewKeyring(b)
		require.NoError(t, err)
		rows := keyRows(t, f.s)
		require.Len(t, rows, len(plain))
		for id, row := range rows {
			require.Equal(t, "B", row.MasterKeyID)
			pt, err := onlyB.Open(row.MasterKeyID, row.SecretSealed, []byte(id))
			require.NoError(t, err)
			require.Equal(t, plain[id], string(pt), "the same secret, sealed anew")
		}
		inUse, err := f.s.MasterKeyIDsInUse(ctx)
		require.NoError(t, err)
		require.Equal(t, []string{"B"}, inUse)

		n, err = f.s.ResealSigningKeys(ctx, "B", 4, resealWith(krB))
		require.NoError(t, err)
		require.Empty(t, n, "a second run re-seals nothing")
	})
}

// TestResealSigningKeysLeavesRowsChangedMeanwhile changes rows between the
// read and the write of a batch (as a running server or a second rotation
// could): a deleted key stays deleted, a key re-sealed meanwhile keeps the
// other writer's value, and neither is counted.
func TestResealSigningKeysLeavesRowsChangedMeanwhile(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		a, b := secrets.GenerateMasterKey("A"), secrets.GenerateMasterKey("B")
		krA, err := secrets.NewKeyring(a)
		require.NoError(t, err)
		var keys []store.SigningKey
		for i := range 3 {
			e, _ := newEndpoint(f.project.ID, fmt.Sprintf("https://c%d.example.com/", i))
			k, _ := sealedKey(t, krA, f.project.ID, e.ID)
			require.NoError(t, f.s.CreateEndpoint(ctx, e, k))
			keys = append(keys, k)
		}
		deleted, other := keys[1].ID, keys[2].ID

		krB, err := secrets.NewKeyring(b, a)
		require.NoError(t, err)
		first := true
		n, err := f.s.ResealSigningKeys(ctx, "B", 10, func(k store.SigningKey) (string, []byte, error) {
			if first {
				first = false
				_, err := f.s.DB().Exec("DELETE FROM signing_keys WHERE id = '" + deleted + "'")
				require.NoError(t, err)
				_, err = f.s.DB().Exec("UPDATE signing_keys SET master_key_id = 'Z' WHERE id = '" + other + "'")
				require.NoError(t, err)
			}
			return resealWith(krB)(k)
		})
		require.NoError(t, err)
		require.Equal(t, map[string]int{"A": 1}, n)
		rows := keyRows(t, f.s)
		require.Len(t, rows, 2)
		require.Equal(t, "B", rows[keys[0].ID].MasterKeyID)
		require.Equal(t, "Z", rows[other].MasterKeyID, "the concurrent change was not overwritten")
		require.Equal(t, keys[2].SecretSealed, rows[other].SecretSealed)
	})
}

// TestResealSigningKeysStopsOnAnUnknownKey: a row the keyring cannot open
// stops the run with an error naming the row and its master key; the
// batches before it stay done.
func TestResealSigningKeysStopsOnAnUnknownKey(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		a, b, lost := secrets.GenerateMasterKey("A"), secrets.GenerateMasterKey("B"), secrets.GenerateMasterKey("lost")
		krA, err := secrets.NewKeyring(a)
		require.NoError(t, err)
		krLost, err := secrets.NewKeyring(lost)
		require.NoError(t, err)
		var last store.SigningKey
		for i := range 3 {
			kr := krA
			if i == 2 {
				kr = krLost // the newest id, so the last batch
			}
			e, _ := newEndpoint(f.project.ID, fmt.Sprintf("https://u%d.example.com/", i))
			k, _ := sealedKey(t, kr, f.project.ID, e.ID)
			require.NoError(t, f.s.CreateEndpoint(ctx, e, k))
			last = k
		}
		krB, err := secrets.NewKeyring(b, a)
		require.NoError(t, err)
		n, err := f.s.ResealSigningKeys(ctx, "B", 1, resealWith(krB))
		require.ErrorIs(t, err, secrets.ErrUnknownKey)
		require.ErrorContains(t, err, last.ID)
		require.ErrorContains(t, err, "master key lost")
		require.Equal(t, map[string]int{"A": 2}, n)
		require.NotErrorIs(t, err, store.ErrUnavailable)
	})
}
