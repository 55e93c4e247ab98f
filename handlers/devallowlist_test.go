package handlers_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestLocalhostEndpointUnderTheAllowList is the quick start with
// "localhost" instead of 127.0.0.1: under the development allow-list
// (127.0.0.1/32) an endpoint http://localhost:PORT/hooks is accepted and its
// message delivered, although localhost also resolves to ::1, which the
// allow-list leaves out. Without the allow-list the name stays refused.
func TestLocalhostEndpointUnderTheAllowList(t *testing.T) {
	t.Parallel()
	e := setupWith(t, "sqlite", options{receivers: true, engine: testEngineConfig()})
	e.dns.Set("localhost", "::1", "127.0.0.1")
	rc := newReceiver(t, nil)
	u, err := url.Parse(rc.url("/hooks"))
	require.NoError(t, err)
	ep := e.createEndpoint(e.a, "http://localhost:"+u.Port()+"/hooks")
	status, res, _ := e.send(e.a.key, `{"endpoint_id":"`+ep.Id+`","payload":{"event":"order.created"}}`)
	require.Equal(t, http.StatusAccepted, status)
	got := rc.waitFor(t, 1, 10*time.Second)
	require.JSONEq(t, `{"event":"order.created"}`, string(got[0].body))
	e.waitStatus(res.MessageId, "succeeded", 10*time.Second)
	as := e.attempts(res.MessageId)
	require.Len(t, as, 1)
	require.NotNil(t, as[0].ResolvedIp)
	require.Equal(t, "127.0.0.1", *as[0].ResolvedIp)

	prod := setup(t, "sqlite")
	prod.dns.Set("localhost", "127.0.0.1")
	status, env, raw := prod.do(http.MethodPost, "/v1/endpoints", prod.a.key, "application/json", []byte(`{"url":"https://localhost/hooks"}`))
	require.Equal(t, http.StatusBadRequest, status, string(raw))
	require.Equal(t, "ENDPOINT_BLOCKED", env.Error.Code)
}
