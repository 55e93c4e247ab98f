package handlers_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/gen"
)

// TestTenantIsolation points project B's key at every one of project A's
// resources: each answers 404 exactly like a missing id, and A's rows do not
// change.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		ep := e.createEndpoint(e.a, "https://hooks.example.com/a")
		aKeys, err := e.a.client.ListApiKeysWithResponse(ctx)
		require.NoError(t, err)
		aKeyID := aKeys.JSON200.Data[0].KeyId
		before := e.snapshot()

		b := e.b.client
		type call struct {
			name string
			do   func() (int, []byte, error)
		}
		wrap := func(status int, body []byte, err error) (int, []byte, error) { return status, body, err }
		calls := []call{
			{"GetEndpoint", func() (int, []byte, error) {
				r, err := b.GetEndpointWithResponse(ctx, ep.Id)
				return wrap(r.StatusCode(), r.Body, err)
			}},
			{"UpdateEndpoint", func() (int, []byte, error) {
				r, err := b.UpdateEndpointWithResponse(ctx, ep.Id, gen.UpdateEndpointRequest{Description: ptr("pwned")})
				return wrap(r.StatusCode(), r.Body, err)
			}},
			{"DeleteEndpoint", func() (int, []byte, error) {
				r, err := b.DeleteEndpointWithResponse(ctx, ep.Id)
				return wrap(r.StatusCode(), r.Body, err)
			}},
			{"PauseEndpoint", func() (int, []byte, error) {
				r, err := b.PauseEndpointWithResponse(ctx, ep.Id)
				return wrap(r.StatusCode(), r.Body, err)
			}},
			{"ResumeEndpoint", func() (int, []byte, error) {
				r, err := b.ResumeEndpointWithResponse(ctx, ep.Id)
				return wrap(r.StatusCode(), r.Body, err)
			}},
			{"CreateSigningKey", func() (int, []byte, error) {
				r, err := b.CreateSigningKeyWithResponse(ctx, ep.Id)
				return wrap(r.StatusCode(), r.Body, err)
			}},
			{"RotateSecret", func() (int, []byte, error) {
				r, err := b.RotateSecretWithResponse(ctx, ep.Id)
				return wrap(r.StatusCode(), r.Body, err)
			}},
			{"ListSigningKeys", func() (int, []byte, error) {
				r, err := b.ListSigningKeysWithResponse(ctx, ep.Id)
				return wrap(r.StatusCode(), r.Body, err)
			}},
			{"DeleteSigningKey", func() (int, []byte, error) {
				r, err := b.DeleteSigningKeyWithResponse(ctx, ep.Id, ep.SigningKeyId)
				return wrap(r.StatusCode(), r.Body, err)
			}},
			{"DeleteApiKey", func() (int, []byte, error) {
				r, err := b.DeleteApiKeyWithResponse(ctx, aKeyID)
				return wrap(r.StatusCode(), r.Body, err)
			}},
		}
		for _, c := range calls {
			status, body, err := c.do()
			require.NoError(t, err, c.name)
			require.Equal(t, http.StatusNotFound, status, "%s: %s", c.name, body)
			require.Contains(t, string(body), `"code":"NOT_FOUND"`, c.name)
		}
		require.Equal(t, before, e.snapshot(), "project A's rows are unchanged")

		// B's lists show none of A's resources.
		eps, err := b.ListEndpointsWithResponse(ctx, nil)
		require.NoError(t, err)
		require.Empty(t, eps.JSON200.Data)
		keys, err := b.ListApiKeysWithResponse(ctx)
		require.NoError(t, err)
		require.Len(t, keys.JSON200.Data, 1)
		require.NotEqual(t, aKeyID, keys.JSON200.Data[0].KeyId)

		// A still sees and uses everything.
		got, err := e.a.client.GetEndpointWithResponse(ctx, ep.Id)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, got.StatusCode())
		require.Empty(t, got.JSON200.Data.Description)
		require.False(t, got.JSON200.Data.Paused)
	})
}
