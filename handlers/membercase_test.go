package handlers_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMemberNamesAreCaseSensitive: a body member that differs only in case
// from a property (the Kelvin sign folds to "k") is refused with 400
// INVALID_REQUEST naming it. The validator would not check it, and the
// handler's encoding/json binding would take it for the property, so it
// would slip past the schema's rules.
func TestMemberNamesAreCaseSensitive(t *testing.T) {
	t.Parallel()
	e := setup(t, "sqlite")
	ep := e.createEndpoint(e.a, "https://hooks.example.com/case")
	cases := []struct{ name, path, body, field string }{
		{"PayloadNotAnObject", "/v1/webhooks/send", `{"endpoint_id":"` + ep.Id + `","payload":{},"PAYLOAD":"x"}`, "/PAYLOAD"},
		{"IdempotencyKeyPattern", "/v1/webhooks/send", `{"endpoint_id":"` + ep.Id + `","payload":{},"Idempotency_Key":"has space"}`, "/Idempotency_Key"},
		{"KelvinSign", "/v1/webhooks/send", `{"endpoint_id":"` + ep.Id + `","payload":{},"idempotency_\u212aey":"has space"}`, "/idempotency_\u212aey"},
		{"RetentionMaximum", "/v1/webhooks/send", `{"endpoint_id":"` + ep.Id + `","payload":{},"Retention_Hours":-5}`, "/Retention_Hours"},
		{"RateMaximum", "/v1/endpoints", `{"url":"https://hooks.example.com/x","RATE_LIMIT_RPS":100000}`, "/RATE_LIMIT_RPS"},
		{"DescriptionMaxLength", "/v1/endpoints", `{"url":"https://hooks.example.com/x","Description":"` + strings.Repeat("d", 501) + `"}`, "/Description"},
		{"APIKeyModeEnum", "/v1/api-keys", `{"Mode":"prod"}`, "/Mode"},
	}
	for _, c := range cases {
		before := e.snapshot()
		status, env, raw := e.do(http.MethodPost, c.path, e.a.key, "application/json", []byte(c.body))
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", c.name, raw)
		require.Equal(t, "INVALID_REQUEST", env.Error.Code, c.name)
		require.Equal(t, c.field, (*env.Error.Details)["field"], c.name)
		require.Equal(t, before, e.snapshot(), "%s changed a row", c.name)
	}
	status, _, raw := e.do(http.MethodPost, "/v1/webhooks/send", e.a.key, "application/json",
		[]byte(`{"endpoint_id":"`+ep.Id+`","payload":{"PAYLOAD":"members of the payload are the sender's"}}`))
	require.Equal(t, http.StatusAccepted, status, string(raw))
}

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
