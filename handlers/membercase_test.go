package handlers_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMediaTypeIsCaseInsensitive: "Application/JSON" is application/json
// (RFC 9110), for the validator and the handler alike.
func TestMediaTypeIsCaseInsensitive(t *testing.T) {
	t.Parallel()
	e := setup(t, "sqlite")
	ep := e.createEndpoint(e.a, "https://hooks.example.com/media")
	for _, ctype := range []string{"Application/JSON", "APPLICATION/JSON; Charset=UTF-8", "application/json ;charset=utf-8"} {
		status, _, raw := e.do(http.MethodPost, "/v1/webhooks/send", e.a.key, ctype, []byte(`{"endpoint_id":"`+ep.Id+`","payload":{}}`))
		require.Equal(t, http.StatusAccepted, status, "%s: %s", ctype, raw)
	}
	status, env, raw := e.do(http.MethodPost, "/v1/webhooks/send", e.a.key, "text/plain", []byte(`{"endpoint_id":"`+ep.Id+`","payload":{}}`))
	require.Equal(t, http.StatusBadRequest, status, string(raw))
	require.Equal(t, "INVALID_REQUEST", env.Error.Code)
}
