package handlers_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBlockedEndpointErrorHidesTheResolvedAddress: an endpoint whose host
// resolves to a private address is refused with ENDPOINT_BLOCKED naming the
// host, not the address (which would map hookd's internal DNS for anyone
// with an API key); hookd's log has the address for the operator. Creating
// and changing the URL behave alike.
func TestBlockedEndpointErrorHidesTheResolvedAddress(t *testing.T) {
	t.Parallel()
	e := setup(t, "sqlite")
	e.dns.Set("intranet.example.com", "10.9.8.7")
	ep := e.createEndpoint(e.a, "https://hooks.example.com/ok")
	for _, req := range []struct{ method, path string }{
		{http.MethodPost, "/v1/endpoints"},
		{http.MethodPatch, "/v1/endpoints/" + ep.Id},
	} {
		status, env, raw := e.do(req.method, req.path, e.a.key, "application/json", []byte(`{"url":"https://intranet.example.com/x"}`))
		require.Equal(t, http.StatusBadRequest, status, string(raw))
		require.Equal(t, "ENDPOINT_BLOCKED", env.Error.Code)
		require.Contains(t, env.Error.Message, "intranet.example.com resolves to an address that is not public")
		require.NotContains(t, string(raw), "10.9.8.7")
	}
	require.Contains(t, e.logs.String(), "10.9.8.7", "the operator's log keeps the address")
}
