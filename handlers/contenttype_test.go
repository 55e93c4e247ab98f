package handlers_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMissingContentTypeSaysWhatToSend: a JSON body sent without
// Content-Type: application/json (curl -d sends
// application/x-www-form-urlencoded by default; other clients send none)
// is refused with 400 INVALID_REQUEST whose message says which header to
// send, on a management route and on send.
func TestMissingContentTypeSaysWhatToSend(t *testing.T) {
	t.Parallel()
	e := setup(t, "sqlite")
	ep := e.createEndpoint(e.a, "https://hooks.example.com/ct")
	bodies := map[string]string{
		"/v1/endpoints":     `{"url":"https://hooks.example.com/x"}`,
		"/v1/webhooks/send": `{"endpoint_id":"` + ep.Id + `","payload":{"a":1}}`,
	}
	for path, body := range bodies {
		for ctype, says := range map[string]string{
			"application/x-www-form-urlencoded": "curl -d",
			"":                                  "has no Content-Type",
			"text/plain":                        `"text/plain"`,
		} {
			before := e.snapshot()
			status, env, raw := e.do(http.MethodPost, path, e.a.key, ctype, []byte(body))
			require.Equal(t, http.StatusBadRequest, status, "%s %q: %s", path, ctype, raw)
			require.Equal(t, "INVALID_REQUEST", env.Error.Code)
			require.Contains(t, env.Error.Message, "Content-Type: application/json", "%s %q", path, ctype)
			require.Contains(t, env.Error.Message, says, "%s %q", path, ctype)
			require.Equal(t, map[string]any{"field": "Content-Type", "rule": "content_type"}, *env.Error.Details)
			require.Equal(t, before, e.snapshot(), "nothing was stored")
		}
	}
}
