package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/gen"
)

func ptr[T any](v T) *T { return &v }

func TestEndpointLifecycle(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		c := e.a.client
		created, err := c.CreateEndpointWithResponse(ctx, gen.CreateEndpointRequest{
			Url:          "https://hooks.example.com/in",
			Description:  ptr("orders"),
			RateLimitRps: ptr(10),
			Burst:        ptr(20),
			Headers:      &gen.Headers{"X-Tenant": "acme"},
		})
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, created.StatusCode(), string(created.Body))
		ep := created.JSON201.Data
		require.Regexp(t, `^ep_[a-f0-9]{32}$`, ep.Id)
		require.Regexp(t, `^sk_[a-f0-9]{32}$`, ep.SigningKeyId)
		require.Regexp(t, `^whsec_[A-Za-z0-9+/]{32}$`, ep.SigningSecret)
		require.Equal(t, ep.SigningSecret[len(ep.SigningSecret)-4:], ep.KeyHint)
		require.Equal(t, "orders", ep.Description)

		got, err := c.GetEndpointWithResponse(ctx, ep.Id)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, got.StatusCode())
		d := got.JSON200.Data
		require.Equal(t, "https://hooks.example.com/in", d.Url)
		require.Equal(t, 10, d.RateLimitRps)
		require.Equal(t, 20, d.Burst)
		require.Equal(t, gen.Headers{"X-Tenant": "acme"}, d.Headers)
		require.True(t, d.HmacEnabled, "hmac_enabled defaults to true")
		require.Equal(t, gen.Hookbridge, d.SignatureScheme, "signature_scheme defaults to hookbridge")
		require.False(t, d.Paused)
		require.NotContains(t, string(got.Body), "whsec_", "the secret is never returned again")

		// PATCH changes only what it is given.
		upd, err := c.UpdateEndpointWithResponse(ctx, ep.Id, gen.UpdateEndpointRequest{Description: ptr("renamed"), HmacEnabled: ptr(false)})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, upd.StatusCode(), string(upd.Body))
		got, _ = c.GetEndpointWithResponse(ctx, ep.Id)
		g := got.JSON200.Data
		// Compared as JSON objects, so a field added to endpoints later is
		// checked too.
		var fromGet, fromPatch map[string]any
		require.NoError(t, json.Unmarshal(mustJSON(t, g), &fromGet))
		require.NoError(t, json.Unmarshal(mustJSON(t, upd.JSON200.Data), &fromPatch))
		fromGet["updated"] = true
		require.Equal(t, fromGet, fromPatch, "PATCH answers the endpoint as GET reads it, plus updated")
		require.Equal(t, "renamed", got.JSON200.Data.Description)
		require.False(t, got.JSON200.Data.HmacEnabled)
		require.Equal(t, "https://hooks.example.com/in", got.JSON200.Data.Url)
		require.Equal(t, 10, got.JSON200.Data.RateLimitRps)
		require.Equal(t, gen.Headers{"X-Tenant": "acme"}, got.JSON200.Data.Headers)
		require.True(t, got.JSON200.Data.UpdatedAt.After(got.JSON200.Data.CreatedAt))

		// headers replace the whole map; url is checked again.
		upd, err = c.UpdateEndpointWithResponse(ctx, ep.Id, gen.UpdateEndpointRequest{Headers: &gen.Headers{"X-New": "1"}, Url: ptr("https://other.example.com/in")})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, upd.StatusCode(), string(upd.Body))
		got, _ = c.GetEndpointWithResponse(ctx, ep.Id)
		require.Equal(t, gen.Headers{"X-New": "1"}, got.JSON200.Data.Headers)
		require.Equal(t, "https://other.example.com/in", got.JSON200.Data.Url)

		// DUPLICATE_URL on create and on PATCH, after normalisation.
		second := e.createEndpoint(e.a, "https://hooks.example.com/in")
		dup, err := c.CreateEndpointWithResponse(ctx, gen.CreateEndpointRequest{Url: "HTTPS://HOOKS.example.com:443/in"})
		require.NoError(t, err)
		require.Equal(t, http.StatusConflict, dup.StatusCode())
		require.Equal(t, "DUPLICATE_URL", dup.JSON409.Error.Code)
		dupPatch, err := c.UpdateEndpointWithResponse(ctx, second.Id, gen.UpdateEndpointRequest{Url: ptr("https://other.example.com/in")})
		require.NoError(t, err)
		require.Equal(t, http.StatusConflict, dupPatch.StatusCode())
		require.Equal(t, "DUPLICATE_URL", dupPatch.JSON409.Error.Code)

		// pause / resume
		pause, err := c.PauseEndpointWithResponse(ctx, ep.Id)
		require.NoError(t, err)
		require.Equal(t, gen.EndpointPaused{Id: ep.Id, Paused: true}, pause.JSON200.Data)
		got, _ = c.GetEndpointWithResponse(ctx, ep.Id)
		require.True(t, got.JSON200.Data.Paused)
		resume, err := c.ResumeEndpointWithResponse(ctx, ep.Id)
		require.NoError(t, err)
		require.Equal(t, gen.EndpointPaused{Id: ep.Id, Paused: false, MessagesRequeued: 0}, resume.JSON200.Data)

		// soft delete: gone from get and list, URL free again.
		del, err := c.DeleteEndpointWithResponse(ctx, ep.Id)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, del.StatusCode())
		require.Equal(t, gen.EndpointDeleted{Id: ep.Id, Deleted: true}, del.JSON200.Data)
		gone, err := c.GetEndpointWithResponse(ctx, ep.Id)
		require.NoError(t, err)
		require.Equal(t, http.StatusNotFound, gone.StatusCode())
		require.Equal(t, "NOT_FOUND", gone.JSON404.Error.Code)
		list, err := c.ListEndpointsWithResponse(ctx, nil)
		require.NoError(t, err)
		require.Len(t, list.JSON200.Data, 1)
		require.Equal(t, second.Id, list.JSON200.Data[0].Id)
		again, err := c.DeleteEndpointWithResponse(ctx, ep.Id)
		require.NoError(t, err)
		require.Equal(t, http.StatusNotFound, again.StatusCode())
		e.createEndpoint(e.a, "https://other.example.com/in")
	})
}

func TestListEndpointsPaginates(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		var want []string
		for i := range 7 {
			ep := e.createEndpoint(e.a, "https://hooks.example.com/"+strings.Repeat("p", i+1))
			want = append([]string{ep.Id}, want...)
		}
		e.createEndpoint(e.b, "https://hooks.example.com/b-only")

		var got []string
		var cursor *string
		pages := 0
		for {
			r, err := e.a.client.ListEndpointsWithResponse(ctx, &gen.ListEndpointsParams{Limit: ptr(3), Cursor: cursor})
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, r.StatusCode(), string(r.Body))
			pages++
			for _, ep := range r.JSON200.Data {
				got = append(got, ep.Id)
			}
			m := r.JSON200.Meta
			require.Equal(t, m.HasMore, m.NextCursor != nil)
			if !m.HasMore {
				break
			}
			cursor = m.NextCursor
		}
		require.Equal(t, 3, pages)
		require.Equal(t, want, got, "newest first, no gaps, no repeats, only project A")

		r, err := e.a.client.ListEndpointsWithResponse(ctx, nil)
		require.NoError(t, err)
		require.Len(t, r.JSON200.Data, 7, "default limit 50 holds them all")
		require.False(t, r.JSON200.Meta.HasMore)
		require.Nil(t, r.JSON200.Meta.NextCursor)
		require.Contains(t, string(r.Body), `"next_cursor":null`)
	})
}

func TestHealthAndDocs(t *testing.T) {
	t.Parallel()
	e := setup(t, "sqlite")
	ctx := context.Background()
	anon := e.client("")
	h, err := anon.GetHealthzWithResponse(ctx)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, h.StatusCode())
	require.Equal(t, gen.Ok, h.JSON200.Data.Status)
	r, err := anon.GetReadyzWithResponse(ctx)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r.StatusCode())

	for path, want := range map[string]string{"/docs/": "swagger", "/openapi.yaml": "openapi: 3.0.3", "/openapi.json": `"openapi":"3.0.3"`} {
		resp, err := http.Get(e.url + path)
		require.NoError(t, err)
		b := readAll(t, resp)
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		require.Contains(t, strings.ToLower(b), strings.ToLower(want), path)
	}

	e.server.SetDraining()
	r, err = anon.GetReadyzWithResponse(ctx)
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, r.StatusCode())
	require.Equal(t, "SERVICE_UNAVAILABLE", r.JSON503.Error.Code)
}

func TestReadyzReportsADeadDatabase(t *testing.T) {
	t.Parallel()
	e := setup(t, "postgres")
	require.NoError(t, e.store.Close())
	r, err := e.client("").GetReadyzWithResponse(context.Background())
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, r.StatusCode(), string(r.Body))
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
