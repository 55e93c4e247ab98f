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

// TestLogsHoldNoSecrets runs a scenario with successes, 4xx and a 5xx path at
// debug level, then checks that no log line holds an API key or a signing
// secret, and that every request line carries its request id.
func TestLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	e := setup(t, "postgres")
	ctx := context.Background()
	secrets := []string{e.a.key, e.b.key}
	ep := e.createEndpoint(e.a, "https://hooks.example.com/logs")
	secrets = append(secrets, ep.SigningSecret)
	k, err := e.a.client.CreateSigningKeyWithResponse(ctx, ep.Id)
	require.NoError(t, err)
	secrets = append(secrets, k.JSON201.Data.SigningSecret)
	ak, err := e.a.client.CreateApiKeyWithResponse(ctx, gen.CreateApiKeyRequest{Label: ptr("x")})
	require.NoError(t, err)
	secrets = append(secrets, ak.JSON201.Data.Key)

	e.do(http.MethodGet, "/v1/endpoints", "hk_live_"+strings.Repeat("Z", 32), "", nil)                         // 401 with a key-shaped token
	e.do(http.MethodPost, "/v1/endpoints", e.a.key, "application/json", []byte(`{"url":"https://10.0.0.1/"}`)) // 400
	e.do(http.MethodGet, "/v1/endpoints/ep_bad", e.a.key, "", nil)                                             // 404
	require.NoError(t, e.store.Close())
	status, env, _ := e.do(http.MethodGet, "/v1/endpoints", e.a.key, "", nil) // the 5xx path: database closed
	require.Equal(t, http.StatusInternalServerError, status)
	require.Equal(t, "INTERNAL_ERROR", env.Error.Code)
	require.NotContains(t, env.Error.Message, "sql", "no internals in the answer")

	logs := e.logs.String()
	require.Contains(t, logs, `"level":"ERROR"`, "the 5xx path was logged")
	for _, s := range secrets {
		require.NotContains(t, logs, s)
		require.NotContains(t, logs, s[len(s)-20:], "no fragment of a secret either")
	}
	lines := 0
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		if m["msg"] == "http request" || m["msg"] == "request failed" {
			require.Regexp(t, `^req_`, m["request_id"], line)
			lines++
		}
	}
	require.GreaterOrEqual(t, lines, 7)
}
