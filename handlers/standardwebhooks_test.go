package handlers_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/signature"
)

// ownStandard computes a Standard Webhooks signature entry with the test's
// own code, from the specification, not through package signature.
func ownStandard(t *testing.T, secret, id, ts string, body []byte) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	require.NoError(t, err)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// standardDelivery is one delivery as the npm verifiers get it.
type standardDelivery struct {
	Secret  string            `json:"secret"`
	Headers map[string]string `json:"headers"`
	Body    []byte            `json:"body"` // base64 in JSON
}

// TestStandardWebhooksScheme: an endpoint with signature_scheme
// standard_webhooks gets webhook-id (the message id), webhook-timestamp and
// webhook-signature (one v1 entry per active key) instead of the X-Webhook-*
// headers; PATCH switches the scheme; a bad scheme is a 400 naming the
// field. TestStandardWebhooksThirdPartyVerifiers runs the same deliveries
// through the npm verifiers.
func TestStandardWebhooksScheme(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"postgres", "postgres-claimed", "sqlite"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			standardDeliveries(t, name)
		})
	}
}

// standardDeliveries runs the scheme's checks on one database and returns
// the Standard Webhooks deliveries the receiver got, with their secrets.
func standardDeliveries(t *testing.T, name string) []standardDelivery {
	t.Helper()
	d, cfg := name, testEngineConfig()
	if name == "postgres-claimed" {
		d, cfg.NoHandoff = "postgres", true
	}
	e := setupWith(t, d, options{receivers: true, engine: cfg})
	ctx := context.Background()
	rc := newReceiver(t, nil)
	scheme := gen.StandardWebhooks
	r, err := e.a.client.CreateEndpointWithResponse(ctx, gen.CreateEndpointRequest{Url: rc.url("/hook"), SignatureScheme: &scheme})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, r.StatusCode(), string(r.Body))
	ep := r.JSON201.Data
	require.Equal(t, gen.StandardWebhooks, ep.SignatureScheme)
	g, err := e.a.client.GetEndpointWithResponse(ctx, ep.Id)
	require.NoError(t, err)
	require.Equal(t, gen.StandardWebhooks, g.JSON200.Data.SignatureScheme)

	var out []standardDelivery
	keep := func(got received, secret string) {
		h := map[string]string{}
		for k := range got.header {
			h[k] = got.header.Get(k)
		}
		out = append(out, standardDelivery{Secret: secret, Headers: h, Body: got.body})
	}

	payload := `{"type":"invoice.paid", "amount":12.50,"note":"caf\u00e9"}`
	status, res, _ := e.send(e.a.key, `{"endpoint_id":"`+ep.Id+`","payload":`+payload+`}`)
	require.Equal(t, http.StatusAccepted, status)
	got := rc.waitFor(t, 1, patience)[0]
	require.Equal(t, payload, string(got.body))
	id, ts := got.header.Get("webhook-id"), got.header.Get("webhook-timestamp")
	require.Equal(t, res.MessageId.String(), id, "webhook-id is the message id")
	require.Equal(t, ownStandard(t, ep.SigningSecret, id, ts, got.body), got.header.Get("webhook-signature"))
	require.NoError(t, signature.VerifyStandard(got.header, got.body, []string{ep.SigningSecret}, signature.DefaultTolerance, time.Now()))
	for _, h := range []string{signature.HeaderID, signature.HeaderTimestamp, signature.HeaderSignature} {
		require.Empty(t, got.header.Get(h), "no %s under the Standard Webhooks scheme", h)
	}
	keep(got, ep.SigningSecret)
	m := e.waitStatus(res.MessageId, "succeeded", patience)
	require.Equal(t, 1, m.AttemptCount)
	as := e.attempts(res.MessageId)
	require.Len(t, as, 1)
	require.Equal(t, got.header.Get("webhook-signature"), as[0].RequestHeaders["Webhook-Signature"], "the attempt records the headers sent")

	// Two active keys: one v1 entry each, space-separated; the receiver
	// may hold either secret.
	k2, err := e.a.client.CreateSigningKeyWithResponse(ctx, ep.Id)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, k2.StatusCode(), string(k2.Body))
	status, res2, _ := e.send(e.a.key, `{"endpoint_id":"`+ep.Id+`","payload":{"second":true}}`)
	require.Equal(t, http.StatusAccepted, status)
	got = rc.waitFor(t, 2, patience)[1]
	id, ts = got.header.Get("webhook-id"), got.header.Get("webhook-timestamp")
	require.Equal(t, res2.MessageId.String(), id)
	require.ElementsMatch(t, []string{ownStandard(t, ep.SigningSecret, id, ts, got.body), ownStandard(t, k2.JSON201.Data.SigningSecret, id, ts, got.body)},
		strings.Split(got.header.Get("webhook-signature"), " "))
	keep(got, ep.SigningSecret)
	keep(got, k2.JSON201.Data.SigningSecret)
	e.waitStatus(res2.MessageId, "succeeded", patience)

	// hmac_enabled=false: id and timestamp, no signature.
	u, err := e.a.client.UpdateEndpointWithResponse(ctx, ep.Id, gen.UpdateEndpointRequest{HmacEnabled: ptr(false)})
	require.NoError(t, err)
	require.Equal(t, gen.StandardWebhooks, u.JSON200.Data.SignatureScheme, "a PATCH without the field keeps it")
	status, res3, _ := e.send(e.a.key, `{"endpoint_id":"`+ep.Id+`","payload":{"third":true}}`)
	require.Equal(t, http.StatusAccepted, status)
	got = rc.waitFor(t, 3, patience)[2]
	require.Equal(t, res3.MessageId.String(), got.header.Get("webhook-id"))
	require.NotEmpty(t, got.header.Get("webhook-timestamp"))
	require.Empty(t, got.header.Get("webhook-signature"))
	e.waitStatus(res3.MessageId, "succeeded", patience)

	// Back to the default scheme.
	hb := gen.Hookbridge
	u, err = e.a.client.UpdateEndpointWithResponse(ctx, ep.Id, gen.UpdateEndpointRequest{HmacEnabled: ptr(true), SignatureScheme: &hb})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, u.StatusCode(), string(u.Body))
	require.Equal(t, gen.Hookbridge, u.JSON200.Data.SignatureScheme)
	status, _, _ = e.send(e.a.key, `{"endpoint_id":"`+ep.Id+`","payload":{"fourth":true}}`)
	require.Equal(t, http.StatusAccepted, status)
	got = rc.waitFor(t, 4, patience)[3]
	require.Empty(t, got.header.Get("webhook-signature"))
	require.NoError(t, signature.Verify(got.header, got.body, []string{ep.SigningSecret}, signature.DefaultTolerance, time.Now()))

	// A scheme hookd does not know, on create and on PATCH.
	for _, c := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/endpoints", `{"url":"` + rc.url("/other") + `","signature_scheme":"svix"}`},
		{http.MethodPatch, "/v1/endpoints/" + ep.Id, `{"signature_scheme":"Standard_Webhooks"}`},
		{http.MethodPatch, "/v1/endpoints/" + ep.Id, `{"signature_scheme":null}`},
	} {
		status, env, raw := e.do(c.method, c.path, e.a.key, "application/json", []byte(c.body))
		require.Equal(t, http.StatusBadRequest, status, "%s %s: %s", c.method, c.body, raw)
		require.Equal(t, "INVALID_REQUEST", env.Error.Code)
		require.Contains(t, env.Error.Message, "signature_scheme", string(raw))
	}
	g, err = e.a.client.GetEndpointWithResponse(ctx, ep.Id)
	require.NoError(t, err)
	require.Equal(t, gen.Hookbridge, g.JSON200.Data.SignatureScheme, "refused changes change nothing")
	return out
}

// TestStandardWebhooksThirdPartyVerifiers runs real deliveries through the
// verifiers of the npm packages standardwebhooks and svix (installed by
// make test from contract/package-lock.json): each must accept every
// genuine delivery and refuse it with one more body byte or another secret.
func TestStandardWebhooksThirdPartyVerifiers(t *testing.T) {
	t.Parallel()
	dir, err := filepath.Abs("../contract")
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "standardwebhooks")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the npm verifiers are not installed (%v): make test installs them", err)
		}
		t.Skip("the npm verifiers are not installed: run make test (or make contract)")
	}
	node, err := exec.LookPath("node")
	require.NoError(t, err, "Node.js runs the third-party verifiers")

	var all []standardDelivery
	for _, d := range []string{"postgres", "sqlite"} {
		all = append(all, standardDeliveries(t, d)...)
	}
	require.Len(t, all, 6)
	file := filepath.Join(t.TempDir(), "deliveries.json")
	b, err := json.Marshal(all)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(file, b, 0o600))

	cmd := exec.Command(node, filepath.Join(dir, "verify.mjs"), file)
	cmd.Dir = dir
	out, err := cmd.Output()
	var stderr string
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		stderr = string(ee.Stderr)
	}
	require.NoError(t, err, "verify.mjs: %s", stderr)
	var summary struct{ Verified, Refused int }
	require.NoError(t, json.Unmarshal(out, &summary), string(out))
	// Two libraries; per delivery one acceptance and two refusals each.
	require.Equal(t, 2*len(all), summary.Verified)
	require.Equal(t, 4*len(all), summary.Refused)
}
