package handlers_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMessagePayload reads a payload back byte for byte, 410 once purged,
// 404 for another project.
func TestMessagePayload(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, e *env) {
		ep := e.createEndpoint(e.a, "https://hooks.example.com/p")
		payload := `{ "b" : 123456789012345678901234567890, "a":[1, 2 ],"s":"<&>\u00e9", "z":{}}`
		status, res, _ := e.send(e.a.key, `{"endpoint_id":"`+ep.Id+`","payload":`+payload+`}`)
		require.Equal(t, http.StatusAccepted, status)
		path := "/v1/messages/" + res.MessageId.String() + "/payload"

		status, _, raw := e.do(http.MethodGet, path, e.a.key, "", nil)
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, payload, string(raw), "the exact bytes received")

		status, env, _ := e.do(http.MethodGet, path, e.b.key, "", nil)
		require.Equal(t, http.StatusNotFound, status)
		require.Equal(t, "NOT_FOUND", env.Error.Code)

		e.exec("UPDATE messages SET payload = NULL WHERE id = ?", res.MessageId.String()) // as retention purges it
		status, env, _ = e.do(http.MethodGet, path, e.a.key, "", nil)
		require.Equal(t, http.StatusGone, status)
		require.Equal(t, "RETENTION_EXPIRED", env.Error.Code)
	})
}
