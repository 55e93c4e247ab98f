package handlers_test

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/store"
)

func TestSigningKeyRotation(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		c := e.a.client
		ep := e.createEndpoint(e.a, "https://hooks.example.com/keys")

		list, err := c.ListSigningKeysWithResponse(ctx, ep.Id)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, list.StatusCode())
		require.Len(t, list.JSON200.Data, 1)
		require.Equal(t, ep.SigningKeyId, list.JSON200.Data[0].Id)
		require.Equal(t, ep.KeyHint, list.JSON200.Data[0].KeyHint)

		last, err := c.DeleteSigningKeyWithResponse(ctx, ep.Id, ep.SigningKeyId)
		require.NoError(t, err)
		require.Equal(t, http.StatusConflict, last.StatusCode())
		require.Equal(t, "CANNOT_DELETE_LAST_SIGNING_KEY", last.JSON409.Error.Code)

		second, err := c.CreateSigningKeyWithResponse(ctx, ep.Id)
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, second.StatusCode(), string(second.Body))
		k2 := second.JSON201.Data
		require.Regexp(t, `^sk_[a-f0-9]{32}$`, k2.Id)
		require.Regexp(t, `^whsec_[A-Za-z0-9+/]{32}$`, k2.SigningSecret)
		require.NotEqual(t, ep.SigningSecret, k2.SigningSecret)

		third, err := c.CreateSigningKeyWithResponse(ctx, ep.Id)
		require.NoError(t, err)
		require.Equal(t, http.StatusConflict, third.StatusCode())
		require.Equal(t, "MAX_SIGNING_KEYS_REACHED", third.JSON409.Error.Code)
		legacy, err := c.RotateSecretWithResponse(ctx, ep.Id)
		require.NoError(t, err)
		require.Equal(t, http.StatusConflict, legacy.StatusCode(), "rotate-secret obeys the same limit")

		list, err = c.ListSigningKeysWithResponse(ctx, ep.Id)
		require.NoError(t, err)
		require.Len(t, list.JSON200.Data, 2)
		require.Equal(t, k2.Id, list.JSON200.Data[0].Id, "newest first")
		require.NotContains(t, string(list.Body), "whsec_")
		require.NotContains(t, string(list.Body), "secret")

		del, err := c.DeleteSigningKeyWithResponse(ctx, ep.Id, ep.SigningKeyId)
		require.NoError(t, err)
		require.Equal(t, http.StatusNoContent, del.StatusCode())
		require.Empty(t, del.Body)

		rotated, err := c.RotateSecretWithResponse(ctx, ep.Id)
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, rotated.StatusCode(), "rotate-secret adds a key like signing-keys")
		require.Regexp(t, `^whsec_`, rotated.JSON201.Data.SigningSecret)

		missing, err := c.DeleteSigningKeyWithResponse(ctx, ep.Id, ep.SigningKeyId)
		require.NoError(t, err)
		require.Equal(t, http.StatusNotFound, missing.StatusCode(), "already deleted")
	})
}

// TestConcurrentSigningKeyChanges releases 20 creates at once against an
// endpoint with one key: the database transaction admits exactly one. Then
// two concurrent deletes of its two keys leave exactly one.
func TestConcurrentSigningKeyChanges(t *testing.T) {
	t.Parallel()
	require.GreaterOrEqual(t, store.DefaultMaxConns, 20, "the PostgreSQL pool must let all 20 requests hold a connection at once")
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		ep := e.createEndpoint(e.a, "https://hooks.example.com/race")

		const n = 20
		statuses := make([]int, n)
		codes := make([]string, n)
		barrier := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-barrier
				r, err := e.a.client.CreateSigningKeyWithResponse(ctx, ep.Id)
				if err != nil {
					t.Errorf("request %d: %v", i, err)
					return
				}
				statuses[i] = r.StatusCode()
				if r.JSON409 != nil {
					codes[i] = r.JSON409.Error.Code
				}
			})
		}
		close(barrier)
		wg.Wait()
		created, full := 0, 0
		for i := range n {
			switch {
			case statuses[i] == http.StatusCreated:
				created++
			case statuses[i] == http.StatusConflict && codes[i] == "MAX_SIGNING_KEYS_REACHED":
				full++
			default:
				t.Fatalf("request %d: status %d code %q", i, statuses[i], codes[i])
			}
		}
		require.Equal(t, 1, created)
		require.Equal(t, 19, full)

		list, err := e.a.client.ListSigningKeysWithResponse(ctx, ep.Id)
		require.NoError(t, err)
		keys := list.JSON200.Data
		require.Len(t, keys, 2)

		delStatus := make([]int, 2)
		barrier = make(chan struct{})
		for i := range 2 {
			wg.Go(func() {
				<-barrier
				r, err := e.a.client.DeleteSigningKeyWithResponse(ctx, ep.Id, keys[i].Id)
				if err != nil {
					t.Errorf("delete %d: %v", i, err)
					return
				}
				delStatus[i] = r.StatusCode()
			})
		}
		close(barrier)
		wg.Wait()
		require.ElementsMatch(t, []int{http.StatusNoContent, http.StatusConflict}, delStatus)
		list, err = e.a.client.ListSigningKeysWithResponse(ctx, ep.Id)
		require.NoError(t, err)
		require.Len(t, list.JSON200.Data, 1)
	})
}

// TestBodilessPOSTs: the SDKs send these POSTs with no body and no
// Content-Type; the spec must not require one.
func TestBodilessPOSTs(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, e *env) {
		ep := e.createEndpoint(e.a, "https://hooks.example.com/bodiless")
		for p, want := range map[string]int{"/pause": 200, "/resume": 200, "/signing-keys": 201} {
			status, _, raw := e.do(http.MethodPost, "/v1/endpoints/"+ep.Id+p, e.a.key, "", nil)
			require.Equal(t, want, status, "%s: %s", p, raw)
		}
		// Both keys now exist, so the legacy alias answers the limit.
		status, env, raw := e.do(http.MethodPost, "/v1/endpoints/"+ep.Id+"/rotate-secret", e.a.key, "", nil)
		require.Equal(t, http.StatusConflict, status, string(raw))
		require.Equal(t, "MAX_SIGNING_KEYS_REACHED", env.Error.Code)
		status, _, raw = e.do(http.MethodPost, "/v1/api-keys", e.a.key, "", nil)
		require.Equal(t, http.StatusCreated, status, string(raw))
	})
}
