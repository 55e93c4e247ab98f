package handlers_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMalformedQueryIsRefused: a query string that does not parse answers
// 400 naming the parameter, and the operation does not run without the
// filter that could not be read.
func TestMalformedQueryIsRefused(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, e *env) {
		ep := e.createEndpoint(e.a, "https://hooks.example.com/q")
		other := e.createEndpoint(e.a, "https://hooks.example.com/other")
		for _, id := range []string{ep.Id, other.Id} {
			status, _, _ := e.send(e.a.key, `{"endpoint_id":"`+id+`","payload":{}}`)
			require.Equal(t, http.StatusAccepted, status)
		}
		count := func() int {
			r, err := e.a.client.GetLogsWithResponse(context.Background(), nil)
			require.NoError(t, err)
			return len(r.JSON200.Data)
		}
		require.Equal(t, 2, count())

		for _, c := range []struct{ method, path, field string }{
			{http.MethodPost, "/v1/messages/delete-all?endpoint_id=" + ep.Id + "%zz", "endpoint_id"},
			{http.MethodPost, "/v1/messages/delete-all?endpoint_id=" + ep.Id + ";status=queued", "endpoint_id"},
			{http.MethodPost, "/v1/messages/replay-all?status=succeeded&endpoint_id=" + ep.Id + "%4", "endpoint_id"},
			{http.MethodGet, "/v1/endpoints?cursor=%%%x", "cursor"},
			{http.MethodGet, "/v1/logs?limit=1&%zz=1", "%zz"},
		} {
			status, env, raw := e.do(c.method, c.path, e.a.key, "", nil)
			require.Equal(t, http.StatusBadRequest, status, c.path+": "+string(raw))
			require.Equal(t, "INVALID_REQUEST", env.Error.Code)
			require.NotNil(t, env.Error.Details)
			require.Equal(t, c.field, (*env.Error.Details)["field"], c.path)
		}
		require.Equal(t, 2, count(), "nothing was deleted")

		// Over 10,000 parameters Go reads none of them: refused as well.
		status, env, _ := e.do(http.MethodPost, "/v1/messages/delete-all?endpoint_id="+ep.Id+strings.Repeat("&", 10001), e.a.key, "", nil)
		require.Equal(t, http.StatusBadRequest, status)
		require.Contains(t, env.Error.Message, "the query string does not parse")
		// Without a valid key the answer is 401, whatever the query.
		status, env, _ = e.do(http.MethodGet, "/v1/endpoints?cursor=%%%x", "", "", nil)
		require.Equal(t, http.StatusUnauthorized, status)
		require.Equal(t, "UNAUTHORIZED", env.Error.Code)
		require.Equal(t, 2, count(), "nothing was deleted")

		// Well-formed escapes still work.
		status, _, raw := e.do(http.MethodPost, "/v1/messages/delete-all?endpoint_id="+ep.Id+"&limit=%31", e.a.key, "", nil)
		require.Equal(t, http.StatusOK, status, string(raw))
		require.Equal(t, 1, count())
	})
}

// TestUnicodeInBodies: a lone UTF-16 surrogate escape or bytes that are not
// UTF-8 are refused with 400, never stored as U+FFFD; a whole pair and an
// escaped backslash are fine.
func TestUnicodeInBodies(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, e *env) {
		ep := e.createEndpoint(e.a, "https://hooks.example.com/u")
		before := e.snapshot()
		for name, c := range map[string]struct{ path, body, rule string }{
			"LoneHigh":      {"/v1/webhooks/send", `{"endpoint_id":"` + ep.Id + `","payload":{"s":"\ud800"}}`, "unicode"},
			"LoneLow":       {"/v1/webhooks/send", `{"endpoint_id":"` + ep.Id + `","payload":{"s":"x\uDC00y"}}`, "unicode"},
			"HighThenOther": {"/v1/webhooks/send", `{"endpoint_id":"` + ep.Id + `","payload":{"s":"\ud800\u0041"}}`, "unicode"},
			"InAKey":        {"/v1/webhooks/send", `{"endpoint_id":"` + ep.Id + `","payload":{"\udbff":1}}`, "unicode"},
			"Description":   {"/v1/endpoints", `{"url":"https://hooks.example.com/d","description":"\ud800"}`, "unicode"},
			"NotUTF8":       {"/v1/webhooks/send", "{\"endpoint_id\":\"" + ep.Id + "\",\"payload\":{\"s\":\"\xff\xfe\"}}", "utf8"},
		} {
			status, env, raw := e.do(http.MethodPost, c.path, e.a.key, "application/json", []byte(c.body))
			require.Equal(t, http.StatusBadRequest, status, name+": "+string(raw))
			require.Equal(t, "INVALID_REQUEST", env.Error.Code, name)
			require.Equal(t, c.rule, (*env.Error.Details)["rule"], name)
		}
		require.Equal(t, before, e.snapshot(), "nothing was stored")
		r, err := e.a.client.GetLogsWithResponse(context.Background(), nil)
		require.NoError(t, err)
		require.Empty(t, r.JSON200.Data)

		for _, payload := range []string{`{"s":"\ud83d\ude00"}`, `{"s":"\\ud800"}`, `{"s":"é\u00e9"}`} {
			status, res, _ := e.send(e.a.key, `{"endpoint_id":"`+ep.Id+`","payload":`+payload+`}`)
			require.Equal(t, http.StatusAccepted, status, payload)
			_, _, raw := e.do(http.MethodGet, "/v1/messages/"+res.MessageId.String()+"/payload", e.a.key, "", nil)
			require.Equal(t, payload, string(raw))
		}
	})
}
