package handlers_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/handlers"
)

// TestProbeRouterServesOnlyTheProbes: the worker role's router answers
// /healthz and /readyz exactly as the API does (checked against
// openapi.yaml), refuses every API route with the 404 envelope, and turns
// /readyz to 503 when draining.
func TestProbeRouterServesOnlyTheProbes(t *testing.T) {
	t.Parallel()
	e := setup(t, "sqlite")
	srv := &handlers.Server{Store: e.store, Logger: slog.New(slog.NewJSONHandler(io.Discard, nil))}
	router, err := handlers.NewProbeRouter(srv)
	require.NoError(t, err)
	hs := httptest.NewServer(router)
	t.Cleanup(hs.Close)
	c, err := gen.NewClientWithResponses(hs.URL, gen.WithHTTPClient(&http.Client{Transport: &contractCheck{t: t, next: http.DefaultTransport}}),
		gen.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			req.Header.Set("Authorization", "Bearer "+e.a.key)
			return nil
		}))
	require.NoError(t, err)
	ctx := context.Background()

	h, err := c.GetHealthzWithResponse(ctx)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, h.StatusCode())
	require.Equal(t, gen.Ok, h.JSON200.Data.Status)
	r, err := c.GetReadyzWithResponse(ctx)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r.StatusCode())

	// The key is valid on the API, but no API route exists here: the 404
	// envelope (not checked against the spec, where these routes have no
	// 404).
	for _, r := range []struct{ method, path, body string }{
		{http.MethodGet, "/v1/endpoints", ""},
		{http.MethodPost, "/v1/webhooks/send", `{}`},
		{http.MethodGet, "/openapi.yaml", ""},
		{http.MethodGet, "/docs/", ""},
	} {
		req, err := http.NewRequest(r.method, hs.URL+r.path, strings.NewReader(r.body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+e.a.key)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.Equal(t, http.StatusNotFound, resp.StatusCode, r.path)
		require.Contains(t, readAll(t, resp), `"code":"NOT_FOUND"`)
	}

	srv.SetDraining()
	r, err = c.GetReadyzWithResponse(ctx)
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, r.StatusCode())
	require.Equal(t, "SERVICE_UNAVAILABLE", r.JSON503.Error.Code)
	h, err = c.GetHealthzWithResponse(ctx)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, h.StatusCode(), "alive while draining")
}
