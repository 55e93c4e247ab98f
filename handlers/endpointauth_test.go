package handlers_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/customheaders"
	"github.com/hookd/hookd/gen"
)

// TestEndpointAuthentication: an endpoint's credential (bearer, basic or a
// named header) is sent on every attempt, after and over the message's own
// headers; it is shown only by type, header name and hint, recorded as
// [redacted] in attempts, in no database row in plain text, kept when the
// custom headers change and removed with type none.
func TestEndpointAuthentication(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, options{receivers: true, engine: testEngineConfig()}, func(t *testing.T, e *env) {
		ctx := context.Background()
		const token, apiKey, password = "rcv_live_4f1c0a9e7d2b8c6e", "key-9b2f7c1d0e6a5843", "correct-horse-battery"
		rc := newReceiver(t, nil)
		c := e.a.client
		deliver := func(n int, body string) received {
			t.Helper()
			status, res, env := e.send(e.a.key, body)
			require.Equal(t, http.StatusAccepted, status, env.Error.Message)
			got := rc.waitFor(t, n, patience)[n-1]
			e.waitStatus(res.MessageId, "succeeded", patience)
			return got
		}

		r, err := c.CreateEndpointWithResponse(ctx, gen.CreateEndpointRequest{
			Url: rc.url("/auth"), Headers: &gen.Headers{"X-Tenant": "acme"},
			Auth: &gen.EndpointAuthInput{Type: gen.EndpointAuthInputTypeBearer, Token: ptr(token)},
		})
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, r.StatusCode(), string(r.Body))
		id := r.JSON201.Data.Id
		g, err := c.GetEndpointWithResponse(ctx, id)
		require.NoError(t, err)
		require.Equal(t, &gen.EndpointAuth{Type: gen.EndpointAuthTypeBearer, HeaderName: "Authorization", Hint: "…8c6e"}, g.JSON200.Data.Auth)
		require.Equal(t, gen.Headers{"X-Tenant": "acme"}, g.JSON200.Data.Headers, "the credential is not a custom header")
		require.NotContains(t, string(g.Body), token)

		got := deliver(1, `{"endpoint_id":"`+id+`","payload":{"n":1}}`)
		require.Equal(t, "Bearer "+token, got.header.Get("Authorization"))
		require.Equal(t, "acme", got.header.Get("X-Tenant"))
		as := e.attempts(uuidOf(t, got.header.Get("X-Webhook-Id")))
		require.Equal(t, customheaders.Redacted, as[0].RequestHeaders["Authorization"])

		// A named header; a message header of that name does not replace it.
		p, err := c.UpdateEndpointWithResponse(ctx, id, gen.UpdateEndpointRequest{Auth: &gen.EndpointAuthInput{
			Type: gen.EndpointAuthInputTypeHeader, HeaderName: ptr("X-Api-Key"), HeaderValue: ptr(apiKey)}})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, p.StatusCode(), string(p.Body))
		require.Equal(t, &gen.EndpointAuth{Type: gen.EndpointAuthTypeHeader, HeaderName: "X-Api-Key", Hint: "…5843"}, p.JSON200.Data.Auth)
		require.Equal(t, gen.Headers{"X-Tenant": "acme"}, p.JSON200.Data.Headers, "a PATCH of the credential keeps the custom headers")
		got = deliver(2, `{"endpoint_id":"`+id+`","payload":{"n":2},"headers":{"X-Api-Key":"from-the-message"}}`)
		require.Equal(t, apiKey, got.header.Get("X-Api-Key"))
		require.Empty(t, got.header.Get("Authorization"))
		as = e.attempts(uuidOf(t, got.header.Get("X-Webhook-Id")))
		require.Equal(t, customheaders.Redacted, as[0].RequestHeaders["X-Api-Key"])

		// A PATCH of the custom headers keeps the credential; one that
		// names the credential's header is refused.
		p, err = c.UpdateEndpointWithResponse(ctx, id, gen.UpdateEndpointRequest{Headers: &gen.Headers{"X-Region": "eu"}})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, p.StatusCode(), string(p.Body))
		require.Equal(t, gen.EndpointAuthTypeHeader, p.JSON200.Data.Auth.Type)
		require.Equal(t, gen.Headers{"X-Region": "eu"}, p.JSON200.Data.Headers)
		got = deliver(3, `{"endpoint_id":"`+id+`","payload":{"n":3}}`)
		require.Equal(t, apiKey, got.header.Get("X-Api-Key"))
		require.Equal(t, "eu", got.header.Get("X-Region"))
		require.Empty(t, got.header.Get("X-Tenant"))
		status, env, raw := e.do(http.MethodPatch, "/v1/endpoints/"+id, e.a.key, "application/json", []byte(`{"headers":{"x-api-key":"other"}}`))
		require.Equal(t, http.StatusBadRequest, status, string(raw))
		require.Equal(t, "/headers", (*env.Error.Details)["field"])

		// Basic.
		p, err = c.UpdateEndpointWithResponse(ctx, id, gen.UpdateEndpointRequest{Auth: &gen.EndpointAuthInput{
			Type: gen.EndpointAuthInputTypeBasic, Username: ptr("hookd"), Password: ptr(password)}})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, p.StatusCode(), string(p.Body))
		require.Equal(t, &gen.EndpointAuth{Type: gen.EndpointAuthTypeBasic, HeaderName: "Authorization", Hint: "…tery"}, p.JSON200.Data.Auth)
		got = deliver(4, `{"endpoint_id":"`+id+`","payload":{"n":4}}`)
		user, pass, ok := (&http.Request{Header: got.header}).BasicAuth()
		require.True(t, ok)
		require.Equal(t, "hookd", user)
		require.Equal(t, password, pass)
		require.Empty(t, got.header.Get("X-Api-Key"), "the previous credential is gone")

		dump := e.dumpAll()
		for _, secret := range []string{token, apiKey, password, base64.StdEncoding.EncodeToString([]byte("hookd:" + password))} {
			require.NotContains(t, dump, secret, "a credential is stored in plain text")
		}

		// Another project cannot see or change it.
		other, err := e.b.client.UpdateEndpointWithResponse(ctx, id, gen.UpdateEndpointRequest{Auth: &gen.EndpointAuthInput{Type: gen.EndpointAuthInputTypeNone}})
		require.NoError(t, err)
		require.Equal(t, http.StatusNotFound, other.StatusCode())

		// Removed.
		p, err = c.UpdateEndpointWithResponse(ctx, id, gen.UpdateEndpointRequest{Auth: &gen.EndpointAuthInput{Type: gen.EndpointAuthInputTypeNone}})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, p.StatusCode(), string(p.Body))
		require.Nil(t, p.JSON200.Data.Auth)
		require.Equal(t, gen.Headers{"X-Region": "eu"}, p.JSON200.Data.Headers)
		got = deliver(5, `{"endpoint_id":"`+id+`","payload":{"n":5}}`)
		require.Empty(t, got.header.Get("Authorization"))
		require.Equal(t, "eu", got.header.Get("X-Region"))

		// A short credential gets no hint.
		p, err = c.UpdateEndpointWithResponse(ctx, id, gen.UpdateEndpointRequest{Auth: &gen.EndpointAuthInput{Type: gen.EndpointAuthInputTypeBearer, Token: ptr("short")}})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, p.StatusCode(), string(p.Body))
		require.Empty(t, p.JSON200.Data.Auth.Hint)
	})
}

// TestEndpointAuthenticationBadInput: a credential in the wrong shape is a
// 400 naming the member, on create and on PATCH, and changes nothing.
func TestEndpointAuthenticationBadInput(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, e *env) {
		ep := e.createEndpoint(e.a, "https://93.184.216.34/auth")
		before := e.snapshot()
		for _, c := range []struct{ auth, field string }{
			{`{"type":"bearer"}`, "/auth/token"},
			{`{"type":"bearer","token":"t","password":"p"}`, "/auth/password"},
			{`{"type":"bearer","token":" padded"}`, "/auth/token"},
			{`{"type":"bearer","token":"a\u0001b"}`, "/auth/token"},
			{`{"type":"basic","username":"a:b","password":"p"}`, "/auth/username"},
			{`{"type":"basic","username":"a"}`, "/auth/password"},
			{`{"type":"header","header_name":"Content-Type","header_value":"x"}`, "/auth/header_name"},
			{`{"type":"header","header_name":"User-Agent","header_value":"x"}`, "/auth/header_name"},
			{`{"type":"header","header_name":"X-Webhook-Key","header_value":"x"}`, "/auth/header_name"},
			{`{"type":"header","header_name":"Bad Name","header_value":"x"}`, "/auth/header_name"},
			{`{"type":"header","header_name":"X-Key"}`, "/auth/header_value"},
			{`{"type":"none","token":"t"}`, "/auth/token"},
		} {
			for _, req := range []struct{ method, path, body string }{
				{http.MethodPost, "/v1/endpoints", `{"url":"https://93.184.216.35/x","auth":` + c.auth + `}`},
				{http.MethodPatch, "/v1/endpoints/" + ep.Id, `{"auth":` + c.auth + `}`},
			} {
				status, env, raw := e.do(req.method, req.path, e.a.key, "application/json", []byte(req.body))
				require.Equal(t, http.StatusBadRequest, status, "%s %s: %s", req.method, req.body, raw)
				require.Equal(t, "INVALID_REQUEST", env.Error.Code, string(raw))
				require.Equal(t, c.field, (*env.Error.Details)["field"], "%s %s: %s", req.method, req.body, raw)
			}
		}
		// Refused by the schema: an unknown type, an unknown member, a
		// credential over the limit.
		for _, auth := range []string{`{"type":"digest"}`, `{"type":"bearer","token":"t","scheme":"x"}`, `{"token":"t"}`, `"t"`,
			`{"type":"bearer","token":""}`, `{"type":"bearer","token":"` + strings.Repeat("t", 4097) + `"}`} {
			status, env, raw := e.do(http.MethodPatch, "/v1/endpoints/"+ep.Id, e.a.key, "application/json", []byte(`{"auth":`+auth+`}`))
			require.Equal(t, http.StatusBadRequest, status, "%s: %s", auth, raw)
			require.Equal(t, "INVALID_REQUEST", env.Error.Code)
			require.Contains(t, env.Error.Message, "auth", string(raw))
		}
		require.Equal(t, before, e.snapshot(), "refused requests change nothing")
	})
}

// uuidOf parses a message id a receiver got.
func uuidOf(t *testing.T, s string) uuid.UUID {
	t.Helper()
	id, err := uuid.Parse(s)
	require.NoError(t, err)
	return id
}
