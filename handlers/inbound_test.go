package handlers_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/handlers"
	"github.com/hookd/hookd/internal/poll"
	"github.com/hookd/hookd/signature"
	"github.com/hookd/hookd/store"
)

// ingestAnswer is what a provider reads from an ingest request.
type ingestAnswer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// ingest posts body to an ingest URL the way a provider does (no API key).
func ingest(t *testing.T, u string, body []byte, headers map[string]string) ingestAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return ingestAnswer{status: resp.StatusCode, header: resp.Header, body: m, raw: string(raw)}
}

func (a ingestAnswer) messageID(t *testing.T) string {
	t.Helper()
	d, ok := a.body["data"].(map[string]any)
	require.True(t, ok, a.raw)
	return d["message_id"].(string)
}

func (a ingestAnswer) errorCode() string {
	if e, ok := a.body["error"].(map[string]any); ok {
		return e["code"].(string)
	}
	return ""
}

// createInbound creates an inbound endpoint for tenant a.
func (e *env) createInbound(t *testing.T, body string) gen.InboundEndpointCreated {
	t.Helper()
	status, _, raw := e.do(http.MethodPost, "/v1/inbound-endpoints", e.a.key, "application/json", []byte(body))
	require.Equal(t, http.StatusCreated, status, string(raw))
	var out gen.InboundEndpointCreatedEnvelope
	require.NoError(t, json.Unmarshal(raw, &out))
	return out.Data
}

func hmacHex(secret, msg string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

func hmacB64(secret, msg string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// TestInboundForwarding receives a GitHub-signed webhook, forwards it byte
// for byte with its headers, signed by hookd, drops a repeat of the same
// delivery, and shows the message in the inbound (not the outbound) views.
func TestInboundForwarding(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, options{receivers: true, engine: testEngineConfig()}, func(t *testing.T, e *env) {
		ctx := context.Background()
		rc := newReceiver(t, nil)
		ie := e.createInbound(t, `{"name":"github","url":"`+rc.url("/github")+`","provider":"github","hmac_secret":"gh-secret"}`)
		require.Equal(t, ie.IngestUrl, ie.ReceiveUrl)
		require.Contains(t, ie.IngestUrl, "/v1/webhooks/receive/"+ie.Id.String()+"/"+ie.SecretToken)
		require.NotNil(t, ie.SigningSecret)

		body := []byte("payload=%7B%22zen%22%3A%22Keep+it+logically+awesome.%22%7D&x=1")
		h := map[string]string{
			"Content-Type":        "application/x-www-form-urlencoded",
			"X-GitHub-Event":      "ping",
			"X-GitHub-Delivery":   "72d3162e-cc78-11e3-81ab-4c9367dc0958",
			"X-Hub-Signature-256": "sha256=" + hmacHex("gh-secret", string(body)),
		}
		a := ingest(t, ie.IngestUrl, body, h)
		require.Equal(t, http.StatusOK, a.status, a.raw)
		id := a.messageID(t)
		require.Equal(t, false, a.body["data"].(map[string]any)["duplicate"])

		got := rc.waitFor(t, 1, 10*time.Second)[0]
		require.Equal(t, body, got.body, "forwarded byte for byte")
		require.Equal(t, "application/x-www-form-urlencoded", got.header.Get("Content-Type"))
		require.Equal(t, "ping", got.header.Get("X-GitHub-Event"))
		require.Equal(t, h["X-Hub-Signature-256"], got.header.Get("X-Hub-Signature-256"))
		require.Equal(t, id, got.header.Get(signature.HeaderID))
		require.NoError(t, signature.Verify(got.header, got.body, []string{*ie.SigningSecret}, time.Minute, time.Now()), "signed by hookd")

		// The provider retries the same delivery: success, same message, nothing forwarded.
		again := ingest(t, ie.IngestUrl, body, h)
		require.Equal(t, http.StatusOK, again.status, again.raw)
		require.Equal(t, id, again.messageID(t))
		require.Equal(t, true, again.body["data"].(map[string]any)["duplicate"])

		var m gen.InboundMessage
		poll.Until(t, 10*time.Second, func() bool {
			r, err := e.a.client.GetInboundMessageWithResponse(ctx, uuid.MustParse(id))
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, r.StatusCode(), string(r.Body))
			m = r.JSON200.Data
			return m.Status == gen.MessageStatusSucceeded
		})
		require.Equal(t, ie.Id, m.InboundEndpointId)
		require.Equal(t, "application/x-www-form-urlencoded", m.ContentType)
		require.Equal(t, len(body), m.SizeBytes)
		require.NotNil(t, m.TotalDeliveryMs)
		require.NotNil(t, m.IdempotencyKey)

		at, err := e.a.client.GetInboundMessageAttemptsWithResponse(ctx, uuid.MustParse(id), nil)
		require.NoError(t, err)
		require.Len(t, at.JSON200.Data, 1)
		require.Equal(t, 200, *at.JSON200.Data[0].ResponseStatus)

		logs, err := e.a.client.GetInboundLogsWithResponse(ctx, &gen.GetInboundLogsParams{InboundEndpointId: &ie.Id})
		require.NoError(t, err)
		require.Len(t, logs.JSON200.Data, 1)
		require.Equal(t, id, logs.JSON200.Data[0].MessageId)
		require.Equal(t, rc.url("/github"), logs.JSON200.Data[0].Endpoint)

		// Inbound messages and their endpoint stay out of the outbound views.
		out, err := e.a.client.GetLogsWithResponse(ctx, nil)
		require.NoError(t, err)
		require.Empty(t, out.JSON200.Data)
		eps, err := e.a.client.ListEndpointsWithResponse(ctx, nil)
		require.NoError(t, err)
		require.Empty(t, eps.JSON200.Data)
		msg, err := e.a.client.GetMessageWithResponse(ctx, uuid.MustParse(id))
		require.NoError(t, err)
		require.Equal(t, http.StatusNotFound, msg.StatusCode())
		// Nor do the outbound operations act on it.
		for _, path := range []string{"/v1/messages/" + id + "/replay", "/v1/messages/" + id + "/retry-now", "/v1/messages/" + id + "/cancel", "/v1/dlq/replay/" + id} {
			status, _, raw := e.do(http.MethodPost, path, e.a.key, "", nil)
			require.Equal(t, http.StatusNotFound, status, "%s: %s", path, raw)
		}
		status, _, _ := e.do(http.MethodDelete, "/v1/messages/"+id, e.a.key, "", nil)
		require.Equal(t, http.StatusNotFound, status)
		db, err := e.a.client.DeleteMessagesBatchWithResponse(ctx, gen.MessageIDList{MessageIds: []uuid.UUID{uuid.MustParse(id)}})
		require.NoError(t, err)
		require.Equal(t, 1, db.JSON200.Data.NotFoundCount)
		rb, err := e.a.client.ReplayBatchMessagesWithResponse(ctx, gen.MessageIDList{MessageIds: []uuid.UUID{uuid.MustParse(id)}})
		require.NoError(t, err)
		require.Equal(t, 1, rb.JSON200.Data.Failed)

		require.NoError(t, e.store.FlushStats(ctx))
		im, err := e.a.client.GetInboundMetricsWithResponse(ctx, nil)
		require.NoError(t, err)
		require.Equal(t, int64(1), im.JSON200.Data.TotalMessages)
		require.Equal(t, int64(1), im.JSON200.Data.Succeeded)
		om, err := e.a.client.GetMetricsWithResponse(ctx, nil)
		require.NoError(t, err)
		require.Equal(t, int64(0), om.JSON200.Data.TotalMessages, "inbound messages are not counted as sent")

		// Replay forwards it again.
		rp, err := e.a.client.ReplayInboundMessageWithResponse(ctx, uuid.MustParse(id))
		require.NoError(t, err)
		require.Equal(t, 1, rp.JSON200.Data.Replayed, string(rp.Body))
		rc.waitFor(t, 2, 10*time.Second)
		require.Len(t, rc.requests(), 2, "the duplicate was never forwarded")
	})
}

// TestInboundVerification signs requests the way each provider documents
// and checks that good ones are accepted and tampered ones refused with a
// rejection record (secrets redacted) and nothing stored.
func TestInboundVerification(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, options{receivers: true}, func(t *testing.T, e *env) {
		rc := newReceiver(t, nil)
		now := time.Now()
		ts := strconv.FormatInt(now.Unix(), 10)
		stdSecret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
		stdSig, err := signature.StandardHeader("msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", now.Unix(), []byte(`{"type":"x"}`), stdSecret)
		require.NoError(t, err)

		cases := []struct {
			name, config string
			body         string
			good, bad    map[string]string
			query        string
			wantReason   string
		}{
			{
				name: "stripe", config: `"provider":"stripe","hmac_secret":"whsec_stripe_test"`, body: `{"id":"evt_1","type":"charge.succeeded"}`,
				good:       map[string]string{"Stripe-Signature": "t=" + ts + ",v1=" + hmacHex("whsec_stripe_test", ts+`.{"id":"evt_1","type":"charge.succeeded"}`)},
				bad:        map[string]string{"Stripe-Signature": "t=" + ts + ",v1=" + hmacHex("whsec_other", ts+`.{"id":"evt_1","type":"charge.succeeded"}`)},
				wantReason: "invalid_signature",
			},
			{
				name: "github", config: `"provider":"github","hmac_secret":"It's a Secret to Everybody"`, body: "Hello, World!",
				// GitHub's documented example: this secret and body give this signature.
				good:       map[string]string{"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"},
				bad:        map[string]string{"X-Hub-Signature-256": "sha256=" + hmacHex("It's a Secret to Everybody", "Hello, World?")},
				wantReason: "invalid_signature",
			},
			{
				name: "shopify", config: `"provider":"shopify","hmac_secret":"shpss_secret"`, body: `{"order":1}`,
				good:       map[string]string{"X-Shopify-Hmac-Sha256": hmacB64("shpss_secret", `{"order":1}`)},
				bad:        map[string]string{"X-Shopify-Hmac-Sha256": hmacB64("shpss_secret", `{"order":2}`)},
				wantReason: "invalid_signature",
			},
			{
				name: "standard_webhooks", config: `"provider":"standard_webhooks","hmac_secret":"` + stdSecret + `"`, body: `{"type":"x"}`,
				good:       map[string]string{"webhook-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "webhook-timestamp": ts, "webhook-signature": stdSig},
				bad:        map[string]string{"webhook-id": "msg_other", "webhook-timestamp": ts, "webhook-signature": stdSig},
				wantReason: "invalid_signature",
			},
			{
				name: "generic hmac", config: `"verify_hmac":true,"hmac_header_name":"X-Sig","hmac_secret":"s3","hmac_algorithm":"sha512","hmac_encoding":"base64","hmac_prefix":"v=","timestamp_header_name":"X-Ts","timestamp_ttl_seconds":60`,
				body: "abc",
				good: map[string]string{"X-Sig": "v=" + func() string {
					m := hmac.New(sha512.New, []byte("s3"))
					m.Write([]byte("abc"))
					return base64.StdEncoding.EncodeToString(m.Sum(nil))
				}(), "X-Ts": ts},
				bad:        map[string]string{"X-Sig": "v=" + hmacB64("s3", "abc"), "X-Ts": ts},
				wantReason: "invalid_signature",
			},
			{
				name: "stale timestamp", config: `"timestamp_header_name":"X-Ts","timestamp_ttl_seconds":60`, body: "{}",
				good:       map[string]string{"X-Ts": now.UTC().Format(time.RFC3339)},
				bad:        map[string]string{"X-Ts": strconv.FormatInt(now.Add(-2*time.Minute).Unix(), 10)},
				wantReason: "timestamp_expired",
			},
			{
				name: "static token header", config: `"verify_static_token":true,"token_header_name":"X-Api-Token","token_value":"tok-123"`, body: "{}",
				good: map[string]string{"X-Api-Token": "tok-123"}, bad: map[string]string{"X-Api-Token": "tok-124"},
				wantReason: "invalid_static_token",
			},
			{
				name: "ip allow-list", config: `"verify_ip_allowlist":true,"allowed_cidrs":["127.0.0.0/8","::1"]`, body: "{}",
				good: map[string]string{}, wantReason: "ip_not_allowed",
			},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				ie := e.createInbound(t, `{"url":"`+rc.url("/"+strings.ReplaceAll(tc.name, " ", "-"))+`",`+tc.config+`}`)
				a := ingest(t, ie.IngestUrl, []byte(tc.body), tc.good)
				require.Equal(t, http.StatusOK, a.status, a.raw)
				if tc.bad == nil {
					return
				}
				before := e.countMessages(t)
				a = ingest(t, ie.IngestUrl, []byte(tc.body), tc.bad)
				require.Equal(t, http.StatusUnauthorized, a.status, a.raw)
				require.Equal(t, before, e.countMessages(t), "nothing stored")
				rej := e.rejections(t, ie.Id)
				require.Len(t, rej, 1)
				require.Equal(t, tc.wantReason, rej[0].ReasonCode)
				require.NotNil(t, rej[0].ReasonDetail)
				require.Equal(t, "127.0.0.1", *rej[0].SourceIp)
				for name, v := range tc.bad {
					if strings.Contains(strings.ToLower(name), "sig") || strings.Contains(strings.ToLower(name), "token") {
						require.NotContains(t, *rej[0].HeadersRedacted, v, "secret header value redacted")
					}
				}
			})
		}

		t.Run("ip not allowed", func(t *testing.T) {
			ie := e.createInbound(t, `{"url":"`+rc.url("/ip")+`","verify_ip_allowlist":true,"allowed_cidrs":["203.0.113.0/24"]}`)
			a := ingest(t, ie.IngestUrl, []byte("{}"), nil)
			require.Equal(t, http.StatusForbidden, a.status, a.raw)
			require.Equal(t, "IP_NOT_ALLOWED", a.errorCode())
			require.Equal(t, "ip_not_allowed", e.rejections(t, ie.Id)[0].ReasonCode)
		})
		t.Run("static token in query", func(t *testing.T) {
			ie := e.createInbound(t, `{"url":"`+rc.url("/q")+`","verify_static_token":true,"token_query_param":"key","token_value":"q-1"}`)
			require.Equal(t, http.StatusOK, ingest(t, ie.IngestUrl+"?key=q-1", []byte("{}"), nil).status)
			require.Equal(t, http.StatusUnauthorized, ingest(t, ie.IngestUrl+"?key=q-2", []byte("{}"), nil).status)
		})
	})
}

func (e *env) countMessages(t *testing.T) int64 {
	t.Helper()
	n, err := e.store.CountByStatus(context.Background(), e.a.project.ID)
	require.NoError(t, err)
	var sum int64
	for _, v := range n {
		sum += v
	}
	return sum
}

func (e *env) rejections(t *testing.T, id uuid.UUID) []gen.InboundRejection {
	t.Helper()
	r, err := e.a.client.ListInboundRejectionsWithResponse(context.Background(), &gen.ListInboundRejectionsParams{InboundEndpointId: &id})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r.StatusCode(), string(r.Body))
	return r.JSON200.Data
}

// TestIngestBadInput: every refusal answers in the error envelope with the
// status a provider acts on, and records a rejection only for an endpoint
// that exists.
func TestIngestBadInput(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, options{receivers: true}, func(t *testing.T, e *env) {
		ctx := context.Background()
		rc := newReceiver(t, nil)
		ie := e.createInbound(t, `{"url":"`+rc.url("/x")+`"}`)
		base := strings.TrimSuffix(ie.IngestUrl, ie.SecretToken)

		unknown := ingest(t, e.url+"/v1/webhooks/receive/"+uuid.Must(uuid.NewV7()).String()+"/"+ie.SecretToken, []byte("{}"), nil)
		wrong := ingest(t, base+"nottheright0token0000000000000000000000", []byte("{}"), nil)
		require.Equal(t, http.StatusUnauthorized, unknown.status)
		require.Equal(t, http.StatusUnauthorized, wrong.status)
		require.Equal(t, unknown.body["error"], wrong.body["error"], "an unknown endpoint and a wrong token look the same")
		require.Equal(t, http.StatusUnauthorized, ingest(t, e.url+"/v1/webhooks/receive/not-a-uuid/x", nil, nil).status)
		rej := e.rejections(t, ie.Id)
		require.Len(t, rej, 1)
		require.Equal(t, "invalid_token", rej[0].ReasonCode)

		big := ingest(t, ie.IngestUrl, bytes.Repeat([]byte("a"), 1<<20+1), nil)
		require.Equal(t, http.StatusRequestEntityTooLarge, big.status, big.raw)
		require.Equal(t, "PAYLOAD_TOO_LARGE", big.errorCode())
		require.Equal(t, http.StatusOK, ingest(t, ie.IngestUrl, bytes.Repeat([]byte("a"), 1<<20), nil).status, "exactly 1 MiB is accepted")

		_, err := e.a.client.PauseInboundEndpointWithResponse(ctx, ie.Id)
		require.NoError(t, err)
		paused := ingest(t, ie.IngestUrl, []byte("{}"), nil)
		require.Equal(t, http.StatusServiceUnavailable, paused.status)
		require.Equal(t, "ENDPOINT_PAUSED", paused.errorCode())
		require.NotEmpty(t, paused.header.Get("Retry-After"))
		_, err = e.a.client.ResumeInboundEndpointWithResponse(ctx, ie.Id)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, ingest(t, ie.IngestUrl, []byte("{}"), nil).status)

		// Another project's inbound resources are 404.
		g, err := e.b.client.GetInboundEndpointWithResponse(ctx, ie.Id)
		require.NoError(t, err)
		require.Equal(t, http.StatusNotFound, g.StatusCode())
		p, err := e.b.client.PauseInboundEndpointWithResponse(ctx, ie.Id)
		require.NoError(t, err)
		require.Equal(t, http.StatusNotFound, p.StatusCode())
		require.Empty(t, e.rejectionsOf(t, e.b, ie.Id))

		// Bad configurations are refused with the field named.
		for _, body := range []string{
			`{"url":"` + rc.url("/y") + `","verify_hmac":true,"hmac_header_name":"X-Sig"}`,
			`{"url":"` + rc.url("/y") + `","verify_static_token":true,"token_value":"x"}`,
			`{"url":"` + rc.url("/y") + `","verify_ip_allowlist":true,"allowed_cidrs":["not-an-ip"]}`,
			`{"url":"` + rc.url("/y") + `","provider":"standard_webhooks","hmac_secret":"not base64!"}`,
			`{"url":"` + rc.url("/y") + `","mode":"pull"}`,
			`{"url":"` + rc.url("/y") + `","ingest_response_code":301}`,
			`{"url":"http://10.0.0.1/x"}`,
		} {
			status, env, raw := e.do(http.MethodPost, "/v1/inbound-endpoints", e.a.key, "application/json", []byte(body))
			require.Equal(t, http.StatusBadRequest, status, body+" → "+string(raw))
			require.NotEmpty(t, env.Error.Code)
		}

		// An expired endpoint refuses intake; a deleted one looks unknown.
		_, err = e.a.client.UpdateInboundEndpointWithResponse(ctx, ie.Id, gen.UpdateInboundEndpointRequest{ExpiresAt: ptr(time.Now().Add(time.Hour))})
		require.NoError(t, err)
		require.NoError(t, e.store.DeleteInboundEndpoint(ctx, e.a.project.ID, ie.Id.String()))
		require.Equal(t, http.StatusUnauthorized, ingest(t, ie.IngestUrl, []byte("{}"), nil).status)
	})
}

func (e *env) rejectionsOf(t *testing.T, tn tenant, id uuid.UUID) []gen.InboundRejection {
	t.Helper()
	r, err := tn.client.ListInboundRejectionsWithResponse(context.Background(), &gen.ListInboundRejectionsParams{InboundEndpointId: &id})
	require.NoError(t, err)
	return r.JSON200.Data
}

// The shapes HookBridge's Go SDK (v1.5.0 types.go) decodes from the
// inbound answers, written from its declarations.
var (
	sdkInboundCreated = sdkShape{must("id", jString), must("name", jString), must("url", jString), must("mode", jString),
		must("ingest_url", jString), must("secret_token", jString), maybe("signing_key_id", jString), maybe("signing_secret", jString),
		maybe("key_hint", jString), must("created_at", jTime)}
	sdkInbound = sdkShape{must("id", jString), must("name", jString), maybe("description", jString), must("url", jString),
		must("mode", jString), must("active", jBool), must("paused", jBool), must("verify_static_token", jBool), must("verify_hmac", jBool),
		must("verify_ip_allowlist", jBool), must("ingest_response_code", jInt), must("idempotency_header_names", jStrings),
		must("signing_enabled", jBool), must("created_at", jTime), must("updated_at", jTime)}
	sdkInboundSummary = sdkShape{must("id", jString), must("name", jString), must("url", jString), must("mode", jString),
		must("active", jBool), must("paused", jBool), must("created_at", jTime)}
	sdkUpdated        = sdkShape{must("id", jString), must("updated", jBool)}
	sdkInboundMessage = sdkShape{must("id", jString), must("project_id", jString), must("inbound_endpoint_id", jString),
		must("status", jString), must("attempt_count", jInt), must("replay_count", jInt), must("received_at", jTime), must("updated_at", jTime),
		maybe("content_type", jString), maybe("size_bytes", jInt), maybe("payload_sha256", jString), maybe("idempotency_key", jString),
		maybe("next_attempt_at", jTime), maybe("last_error", jString), maybe("response_status", jInt), maybe("response_latency_ms", jInt),
		maybe("queue_wait_ms", jInt), maybe("total_delivery_ms", jInt), maybe("delivered_at", jTime), maybe("failed_at", jTime),
		maybe("deleted_at", jTime)}
	sdkInboundLog = sdkShape{must("message_id", jString), must("inbound_endpoint_id", jString), must("endpoint", jString),
		must("status", jString), must("attempt_count", jInt), must("received_at", jTime), maybe("delivered_at", jTime),
		maybe("response_status", jInt), maybe("response_latency_ms", jInt), maybe("last_error", jString), maybe("total_delivery_ms", jInt),
		maybe("deleted_at", jTime)}
	sdkRejection = sdkShape{must("id", jString), must("reason_code", jString), must("received_at", jTime),
		maybe("inbound_endpoint_id", jString), maybe("reason_detail", jString), maybe("source_ip", jString), maybe("headers_redacted", jString)}
	// ReplayInboundMessage and the batch/all calls decode the envelope itself.
	sdkReplayBatchEnvelope = sdkShape{must("message", jString), object("data", sdkReplayBatch)}
	sdkReplayAllEnvelope   = sdkShape{must("message", jString), object("data", sdkReplayAll)}
)

// TestInboundSDKShapes calls every inbound operation of HookBridge's Go SDK
// the way it does and checks each answer against its types (and, through
// env.do, against openapi.yaml).
func TestInboundSDKShapes(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, options{receivers: true, engine: testEngineConfig()}, func(t *testing.T, e *env) {
		rc := newReceiver(t, nil)
		v := e.sdkCall(t, http.MethodPost, "/v1/inbound-endpoints", `{"name":"stripe","url":"`+rc.url("/in")+`","idempotency_header_names":["X-Id"]}`,
			http.StatusCreated, data(sdkInboundCreated))
		id, ingestURL := str(v, "data", "id"), str(v, "data", "ingest_url")
		e.sdkCall(t, http.MethodGet, "/v1/inbound-endpoints?limit=5", "", http.StatusOK, dataList(sdkInboundSummary, sdkPageMeta))
		e.sdkCall(t, http.MethodGet, "/v1/inbound-endpoints/"+id, "", http.StatusOK, data(sdkInbound))
		e.sdkCall(t, http.MethodPatch, "/v1/inbound-endpoints/"+id, `{"description":"payments","ingest_response_code":202}`, http.StatusOK, data(sdkUpdated))
		e.sdkCall(t, http.MethodPost, "/v1/inbound-endpoints/"+id+"/pause", "", http.StatusOK, data(sdkToggle))
		e.sdkCall(t, http.MethodPost, "/v1/inbound-endpoints/"+id+"/resume", "", http.StatusOK, data(sdkToggle))
		k := e.sdkCall(t, http.MethodPost, "/v1/inbound-endpoints/"+id+"/signing-keys", "", http.StatusCreated, data(sdkKeyCreated))
		e.sdkCall(t, http.MethodGet, "/v1/inbound-endpoints/"+id+"/signing-keys", "", http.StatusOK, dataList(sdkSigningKey, sdkMeta))
		status, _, _ := e.do(http.MethodDelete, "/v1/inbound-endpoints/"+id+"/signing-keys/"+str(k, "data", "id"), e.a.key, "", nil)
		require.Equal(t, http.StatusNoContent, status)

		var msgs []string
		for i := range 3 {
			a := ingest(t, ingestURL, []byte(`{"n":`+strconv.Itoa(i)+`}`), map[string]string{"Content-Type": "application/json", "X-Id": "d" + strconv.Itoa(i)})
			require.Equal(t, http.StatusAccepted, a.status, a.raw) // the PATCHed ingest_response_code
			msgs = append(msgs, a.messageID(t))
		}
		rc.waitFor(t, 3, 10*time.Second)
		poll.Until(t, 10*time.Second, func() bool {
			m := e.sdkCall(t, http.MethodGet, "/v1/inbound-messages/"+msgs[2], "", http.StatusOK, data(sdkInboundMessage))
			return str(m, "data", "status") == "succeeded"
		})
		e.sdkCall(t, http.MethodGet, "/v1/inbound-messages/"+msgs[0]+"/attempts", "", http.StatusOK, dataList(sdkAttempt, sdkMeta))
		e.sdkCall(t, http.MethodGet, "/v1/inbound-logs?inbound_endpoint_id="+id+"&limit=2", "", http.StatusOK, dataList(sdkInboundLog, sdkPageMeta))
		e.sdkCall(t, http.MethodGet, "/v1/inbound-metrics?window=1h&inbound_endpoint_id="+id, "", http.StatusOK, data(sdkMetrics))
		e.sdkCall(t, http.MethodGet, "/v1/inbound-metrics/timeseries?window=24h", "", http.StatusOK, data(sdkTimeseries))
		poll.Until(t, 10*time.Second, func() bool {
			m := e.sdkCall(t, http.MethodGet, "/v1/inbound-messages/"+msgs[0], "", http.StatusOK, data(sdkInboundMessage))
			return str(m, "data", "status") == "succeeded"
		})
		e.sdkCall(t, http.MethodPost, "/v1/inbound-messages/"+msgs[0]+"/replay", "", http.StatusOK, sdkReplayBatchEnvelope)
		e.sdkCall(t, http.MethodPost, "/v1/inbound-messages/replay-batch", `{"message_ids":["`+msgs[1]+`"]}`, http.StatusOK, sdkReplayBatchEnvelope)
		e.sdkCall(t, http.MethodPost, "/v1/inbound-messages/replay-all?status=succeeded&inbound_endpoint_id="+id+"&limit=10", "", http.StatusOK, sdkReplayAllEnvelope)
		d := e.sdkCall(t, http.MethodDelete, "/v1/inbound-messages/"+msgs[2], "", http.StatusOK, data(sdkDeleted))
		require.Equal(t, false, d["data"].(map[string]any)["already_deleted"])
		b := e.sdkCall(t, http.MethodPost, "/v1/inbound-messages/delete-batch", `{"message_ids":["`+msgs[2]+`","`+uuid.Must(uuid.NewV7()).String()+`"]}`,
			http.StatusOK, data(sdkDeleteBatch))
		require.Equal(t, "1", b["data"].(map[string]any)["already_deleted_count"].(json.Number).String())
		e.sdkCall(t, http.MethodPost, "/v1/inbound-messages/delete-all?inbound_endpoint_id="+id+"&limit=10", "", http.StatusOK, data(sdkDeleteAll))

		bad := ingest(t, ingestURL+"x", []byte("{}"), nil)
		require.Equal(t, http.StatusUnauthorized, bad.status)
		e.sdkCall(t, http.MethodGet, "/v1/inbound-rejections?inbound_endpoint_id="+id, "", http.StatusOK, dataList(sdkRejection, sdkPageMeta))
		e.sdkCall(t, http.MethodDelete, "/v1/inbound-endpoints/"+id, "", http.StatusOK, data(sdkToggle))
	})
}

// TestInboundListen: a cli-mode endpoint holds what it receives for
// listeners (never forwarded), and the listen long poll hands it out in
// order after a cursor, bodies exact (JSON as JSON, other bytes base64).
func TestInboundListen(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, options{receivers: true, engine: testEngineConfig(), server: func(s *handlers.Server) { s.ListenWait = 10 * time.Second }},
		func(t *testing.T, e *env) {
			ctx := context.Background()
			// The HookBridge CLI's request: mode and name only.
			v := e.sdkCall(t, http.MethodPost, "/v1/inbound-endpoints", `{"mode":"cli","name":"laptop"}`, http.StatusCreated, data(sdkInboundCreated))
			id, receiveURL := str(v, "data", "id"), str(v, "data", "receive_url")
			require.Equal(t, str(v, "data", "ingest_url"), receiveURL)

			start := e.sdkCall(t, http.MethodGet, "/v1/inbound-endpoints/"+id+"/listen?wait=0", "", http.StatusOK, sdkListenEnvelope)
			require.Empty(t, start["data"])
			cursor := str(start, "meta", "next_cursor")

			bodies := [][]byte{[]byte(`{"a":1,"b":[true,null]}`), []byte("{ \"spaced\": 1 }"), {0xff, 0xfe, 0x00}, []byte(`{"html":"<b>"}`)}
			var ids []string
			for _, b := range bodies {
				a := ingest(t, receiveURL, b, map[string]string{"Content-Type": "application/json", "X-Seq": strconv.Itoa(len(ids))})
				require.Equal(t, http.StatusOK, a.status, a.raw)
				ids = append(ids, a.messageID(t))
			}
			// A call hands out what has settled; on a busy machine the last
			// webhooks may come in the next call, as a listener reads them:
			// follow the cursor until all have come.
			var list []any
			next := cursor
			poll.Until(t, patience, func() bool {
				got := e.sdkCall(t, http.MethodGet, "/v1/inbound-endpoints/"+id+"/listen?after="+next, "", http.StatusOK, sdkListenEnvelope)
				list = append(list, got["data"].([]any)...)
				next = str(got, "meta", "next_cursor")
				return len(list) >= len(bodies)
			}, "the listen calls never handed out every webhook")
			require.Len(t, list, len(bodies))
			for i, x := range list {
				m := x.(map[string]any)
				require.Equal(t, ids[i], m["message_id"])
				require.Equal(t, strconv.Itoa(i), m["headers"].(map[string]any)["X-Seq"])
				raw, err := json.Marshal(m["body"])
				require.NoError(t, err)
				if i == 0 {
					require.Nil(t, m["body_encoding"])
					require.JSONEq(t, string(bodies[0]), string(raw), "compact JSON comes as JSON")
					continue
				}
				require.Equal(t, "base64", m["body_encoding"])
				dec, err := base64.StdEncoding.DecodeString(m["body"].(string))
				require.NoError(t, err)
				require.Equal(t, bodies[i], dec, "exact bytes")
			}
			require.Equal(t, ids[len(ids)-1], next)

			// Nothing newer: the call waits (1 s here) and answers an empty
			// list with the same cursor.
			empty := e.sdkCall(t, http.MethodGet, "/v1/inbound-endpoints/"+id+"/listen?wait=1&after="+next, "", http.StatusOK, sdkListenEnvelope)
			require.Empty(t, empty["data"])
			require.Equal(t, next, str(empty, "meta", "next_cursor"))

			// A waiting call returns as soon as a webhook arrives.
			waiting := make(chan int, 1)
			go func() {
				status, _, raw := e.do(http.MethodGet, "/v1/inbound-endpoints/"+id+"/listen?after="+next+"&wait=25", e.a.key, "", nil)
				var v map[string]any
				_ = json.Unmarshal(raw, &v)
				n := -1
				if status == http.StatusOK {
					n = len(v["data"].([]any))
				}
				waiting <- n
			}()
			// (The ingest may land before the call starts waiting: either
			// way the call must come back with it.)
			require.Equal(t, http.StatusOK, ingest(t, receiveURL, []byte(`{}`), nil).status)
			select {
			case n := <-waiting:
				require.Equal(t, 1, n)
			case <-time.After(20 * time.Second):
				t.Fatal("the waiting listen call did not return the new webhook")
			}

			// A cli endpoint's messages are never forwarded, and a resume
			// does not release them.
			_, err := e.a.client.ResumeInboundEndpointWithResponse(ctx, uuid.MustParse(id))
			require.NoError(t, err)
			m, err := e.a.client.GetInboundMessageWithResponse(ctx, uuid.MustParse(ids[0]))
			require.NoError(t, err)
			require.Equal(t, gen.MessageStatusPaused, m.JSON200.Data.Status)
			require.Zero(t, m.JSON200.Data.AttemptCount)

			// The mode cannot change; a forward endpoint needs a url.
			status, env, _ := e.do(http.MethodPatch, "/v1/inbound-endpoints/"+id, e.a.key, "application/json", []byte(`{"mode":"forward"}`))
			require.Equal(t, http.StatusBadRequest, status)
			require.Equal(t, "INVALID_REQUEST", env.Error.Code)
			status, _, _ = e.do(http.MethodPost, "/v1/inbound-endpoints", e.a.key, "application/json", []byte(`{"name":"no url"}`))
			require.Equal(t, http.StatusBadRequest, status)
			// Another project cannot listen.
			status, _, _ = e.do(http.MethodGet, "/v1/inbound-endpoints/"+id+"/listen?wait=0", e.b.key, "", nil)
			require.Equal(t, http.StatusNotFound, status)
		})
}

// The listen answer as HookBridge's Go SDK (ListenMessage) and CLI decode it.
var sdkListenEnvelope = sdkShape{objects("data", sdkShape{must("message_id", jString), must("content_type", jString),
	must("headers", jStringMap), must("size_bytes", jInt), must("received_at", jTime), maybe("body", jAny),
	maybe("body_encoding", jString), maybe("body_error", jString)}), object("meta", sdkShape{must("request_id", jString), must("next_cursor", jString)})}

// TestInboundExport: an inbound export holds the received messages (of one
// inbound endpoint with inbound_endpoint_id) and an outbound export none of
// them.
func TestInboundExport(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, options{receivers: true}, func(t *testing.T, e *env) {
		rc := newReceiver(t, nil)
		ie := e.createInbound(t, `{"url":"`+rc.url("/in")+`"}`)
		other := e.createInbound(t, `{"url":"`+rc.url("/other")+`"}`)
		var ids []string
		for range 2 {
			ids = append(ids, ingest(t, ie.IngestUrl, []byte(`{}`), nil).messageID(t))
		}
		ingest(t, other.IngestUrl, []byte(`{}`), nil)
		sent := e.sendTo(e.a, e.createEndpoint(e.a, "https://hooks.example.com/out").Id)

		from, to := windowAround(time.Now())
		inbound := gen.ExportDirectionInbound
		x := e.createExport(e.a, gen.CreateExportRequest{StartTime: from, EndTime: to, Direction: &inbound, InboundEndpointId: &ie.Id})
		require.Equal(t, int64(2), x.RowCount)
		records := e.downloadCSV(e.a, x.Id)
		require.Len(t, records, 3)
		for i, id := range ids {
			require.Equal(t, []string{id, ie.Id.String(), rc.url("/in")}, records[i+1][:3])
		}
		all := e.createExport(e.a, gen.CreateExportRequest{StartTime: from, EndTime: to, Direction: &inbound})
		require.Equal(t, int64(3), all.RowCount)

		out := e.createExport(e.a, gen.CreateExportRequest{StartTime: from, EndTime: to})
		require.Equal(t, int64(1), out.RowCount)
		records = e.downloadCSV(e.a, out.Id)
		require.Len(t, records, 2)
		require.Equal(t, sent, records[1][0])
	})
}

// TestInboundForwardRetries: a forward answered 503 with Retry-After is
// retried on the schedule like a send, with its attempts recorded, and
// total_delivery_ms counts from receipt to the successful forward. The
// endpoint is deleted while its first attempt is in flight: intake stops,
// and the message accepted before still forwards.
func TestInboundForwardRetries(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, options{receivers: true, engine: testEngineConfig()}, func(t *testing.T, e *env) {
		ctx := context.Background()
		deleted := make(chan struct{})
		rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
			if n == 0 {
				<-deleted
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		})
		ie := e.createInbound(t, `{"url":"`+rc.url("/flaky")+`"}`)
		id := ingest(t, ie.IngestUrl, []byte(`{"x":1}`), nil).messageID(t)
		rc.waitFor(t, 1, 10*time.Second)
		status, _, raw := e.do(http.MethodDelete, "/v1/inbound-endpoints/"+ie.Id.String(), e.a.key, "", nil)
		require.Equal(t, http.StatusOK, status, string(raw))
		close(deleted)
		require.Equal(t, http.StatusUnauthorized, ingest(t, ie.IngestUrl, []byte(`{}`), nil).status, "intake stopped")
		var m gen.InboundMessage
		poll.Until(t, 20*time.Second, func() bool {
			r, err := e.a.client.GetInboundMessageWithResponse(ctx, uuid.MustParse(id))
			require.NoError(t, err)
			m = r.JSON200.Data
			return m.Status == gen.MessageStatusSucceeded
		})
		require.Equal(t, 2, m.AttemptCount)
		at, err := e.a.client.GetInboundMessageAttemptsWithResponse(ctx, uuid.MustParse(id), nil)
		require.NoError(t, err)
		require.Len(t, at.JSON200.Data, 2)
		require.Equal(t, 503, *at.JSON200.Data[0].ResponseStatus)
		require.Equal(t, 1, *at.JSON200.Data[0].RetryAfterSeconds)
		require.Equal(t, 200, *at.JSON200.Data[1].ResponseStatus)
		got := rc.requests()
		require.GreaterOrEqual(t, got[1].at.Sub(got[0].at), time.Second, "Retry-After was honoured")
		require.GreaterOrEqual(t, *m.TotalDeliveryMs, 1000)
	})
}

// TestInboundReviewCases: the edge cases a review found.
func TestInboundReviewCases(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, options{receivers: true, engine: testEngineConfig(), server: func(s *handlers.Server) { s.RejectionRecords = 3 }},
		func(t *testing.T, e *env) {
			ctx := context.Background()
			rc := newReceiver(t, nil)

			// A PATCH that leaves the mode, algorithm and encoding out keeps them.
			shop := e.createInbound(t, `{"url":"`+rc.url("/shop")+`","provider":"shopify","hmac_secret":"shpss"}`)
			status, _, raw := e.do(http.MethodPatch, "/v1/inbound-endpoints/"+shop.Id.String(), e.a.key, "application/json", []byte(`{"name":"renamed"}`))
			require.Equal(t, http.StatusOK, status, string(raw))
			a := ingest(t, shop.IngestUrl, []byte(`{"o":1}`), map[string]string{"X-Shopify-Hmac-Sha256": hmacB64("shpss", `{"o":1}`)})
			require.Equal(t, http.StatusOK, a.status, "still base64 after the PATCH: %s", a.raw)
			cli := e.createInbound(t, `{"mode":"cli","name":"laptop"}`)
			status, _, raw = e.do(http.MethodPatch, "/v1/inbound-endpoints/"+cli.Id.String(), e.a.key, "application/json", []byte(`{"name":"desk"}`))
			require.Equal(t, http.StatusOK, status, string(raw))

			// A key that is not UTF-8 (HTTP allows such header bytes; a
			// text column does not) is still accepted, and still de-duplicates.
			odd := e.createInbound(t, `{"mode":"cli","idempotency_header_names":["X-Id"]}`)
			var oddIDs []string
			for range 2 {
				req, err := http.NewRequest(http.MethodPost, odd.IngestUrl, bytes.NewReader([]byte(`{}`)))
				require.NoError(t, err)
				req.Header["X-Id"] = []string{"\xff\xfe-not-utf8"}
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				var out struct {
					Data struct {
						MessageID string `json:"message_id"`
					}
				}
				require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
				_ = resp.Body.Close()
				require.Equal(t, http.StatusOK, resp.StatusCode)
				oddIDs = append(oddIDs, out.Data.MessageID)
			}
			require.Equal(t, oddIDs[0], oddIDs[1])
			pullEP := e.sdkCall(t, http.MethodPost, "/v1/pull-endpoints", `{"event_type_source":"body","event_type_path":"type"}`, http.StatusCreated, data(sdkPullCreated))
			pullID, pullURL := str(pullEP, "data", "id"), str(pullEP, "data", "ingest_url")
			nul := ingest(t, pullURL, []byte(`{"type":"a\u0000b"}`), nil)
			require.Equal(t, http.StatusOK, nul.status, nul.raw)
			ev := e.sdkCall(t, http.MethodGet, "/v1/pull-endpoints/"+pullID+"/events/"+nul.messageID(t), "", http.StatusOK, data(sdkPullEventDetail))
			require.Equal(t, "ab", str(ev, "data", "event_type"))

			// A held (pull) message is never replayed, alone or in bulk.
			e.sdkCall(t, http.MethodPost, "/v1/pull-endpoints/"+pullID+"/events/ack", `{"event_ids":["`+nul.messageID(t)+`"]}`, http.StatusOK,
				data(sdkShape{must("acknowledged", jInt)}))
			r, err := e.a.client.ReplayInboundMessageWithResponse(ctx, uuid.MustParse(nul.messageID(t)))
			require.NoError(t, err)
			require.Equal(t, 1, r.JSON200.Data.Failed)
			require.Contains(t, *r.JSON200.Data.Results[0].Error, "cannot be replayed")
			all, err := e.a.client.ReplayAllInboundMessagesWithResponse(ctx, &gen.ReplayAllInboundMessagesParams{Status: gen.ReplayAllInboundMessagesParamsStatusSucceeded})
			require.NoError(t, err)
			require.NotContains(t, all.JSON200.Data.ReplayedMessageIds, nul.messageID(t))

			// A deleted pull endpoint's events stay readable and can be acknowledged.
			held := ingest(t, pullURL, []byte(`{"type":"x"}`), nil).messageID(t)
			e.sdkCall(t, http.MethodDelete, "/v1/pull-endpoints/"+pullID, "", http.StatusOK, data(sdkToggle))
			e.sdkCall(t, http.MethodGet, "/v1/pull-endpoints/"+pullID+"/events", "", http.StatusOK, dataList(sdkPullEvent, sdkPageMeta))
			ack := e.sdkCall(t, http.MethodPost, "/v1/pull-endpoints/"+pullID+"/events/ack", `{"event_ids":["`+held+`"]}`, http.StatusOK,
				data(sdkShape{must("acknowledged", jInt)}))
			require.Equal(t, 1, num(t, ack, "data", "acknowledged"))
			status, _, _ = e.do(http.MethodGet, "/v1/pull-endpoints/"+pullID, e.a.key, "", nil)
			require.Equal(t, http.StatusNotFound, status, "the endpoint itself is gone")

			// Wrong tokens are recorded without headers, and only up to the budget.
			base := strings.TrimSuffix(cli.IngestUrl, cli.SecretToken)
			for range 5 {
				require.Equal(t, http.StatusUnauthorized, ingest(t, base+"wrong", []byte(`{}`), map[string]string{"X-Secretive": "v"}).status)
			}
			rej := e.rejections(t, cli.Id)
			require.Len(t, rej, 3, "the per-endpoint budget")
			require.Nil(t, rej[0].HeadersRedacted)

			// ingest_response_code 204: an empty answer.
			nc := e.createInbound(t, `{"mode":"cli","ingest_response_code":204}`)
			a = ingest(t, nc.IngestUrl, []byte(`{}`), nil)
			require.Equal(t, http.StatusNoContent, a.status)
			require.Empty(t, a.raw)

			// A cli endpoint holds a webhook for a day, then the clean-up
			// finishes it and the usual retention applies.
			id := ingest(t, cli.IngestUrl, []byte(`{}`), nil).messageID(t)
			_, err = e.store.Cleanup(ctx, time.Now().Add(store.ListenRetention+time.Hour), store.Retention{Payload: 1000 * time.Hour, Metadata: 2000 * time.Hour, Batch: 100})
			require.NoError(t, err)
			m, err := e.a.client.GetInboundMessageWithResponse(ctx, uuid.MustParse(id))
			require.NoError(t, err)
			require.Equal(t, gen.MessageStatusSucceeded, m.JSON200.Data.Status)
		})
}

// TestIngestRateLimits: past the per-address limit an address gets 429
// with Retry-After (before its token is even checked), and past the
// per-endpoint limit every address does; neither writes a rejection.
func TestIngestRateLimits(t *testing.T) {
	t.Parallel()
	frozen := time.Now()
	t.Run("PerAddress", func(t *testing.T) { ingestPerAddress(t, frozen) })
	t.Run("PerEndpoint", func(t *testing.T) { ingestPerEndpoint(t, frozen) })
}

func ingestPerAddress(t *testing.T, frozen time.Time) {
	forEachDialectWith(t, options{receivers: true, server: func(s *handlers.Server) {
		s.LimitClock = func() time.Time { return frozen } // no refill during the test
		s.IngestLimitPerSource, s.IngestLimitPerEndpoint = 2, 3
	}}, func(t *testing.T, e *env) {
		ie := e.createInbound(t, `{"mode":"cli"}`)
		wrong := strings.TrimSuffix(ie.IngestUrl, ie.SecretToken) + "wrong"
		require.Equal(t, http.StatusOK, ingest(t, ie.IngestUrl, []byte(`{}`), nil).status)
		require.Equal(t, http.StatusUnauthorized, ingest(t, wrong, []byte(`{}`), nil).status)
		limited := ingest(t, ie.IngestUrl, []byte(`{}`), nil)
		require.Equal(t, http.StatusTooManyRequests, limited.status, "the address's third request")
		require.Equal(t, "RATE_LIMITED", limited.errorCode())
		require.NotEmpty(t, limited.header.Get("Retry-After"))
		require.Equal(t, http.StatusTooManyRequests, ingest(t, wrong, []byte(`{}`), nil).status, "limited before the token check")
		require.Len(t, e.rejections(t, ie.Id), 1, "a limited request writes nothing")
	})
}

func ingestPerEndpoint(t *testing.T, frozen time.Time) {
	// The endpoint's own limit counts accepted requests of every address
	// (here one address, with no per-address limit), per endpoint.
	forEachDialectWith(t, options{receivers: true, server: func(s *handlers.Server) {
		s.LimitClock = func() time.Time { return frozen }
		s.IngestLimitPerSource, s.IngestLimitPerEndpoint = -1, 2
	}}, func(t *testing.T, e *env) {
		ie := e.createInbound(t, `{"mode":"cli"}`)
		wrong := strings.TrimSuffix(ie.IngestUrl, ie.SecretToken) + "wrong"
		for range 3 {
			require.Equal(t, http.StatusUnauthorized, ingest(t, wrong, []byte(`{}`), nil).status, "a wrong token does not count")
		}
		for range 2 {
			require.Equal(t, http.StatusOK, ingest(t, ie.IngestUrl, []byte(`{}`), nil).status)
		}
		limited := ingest(t, ie.IngestUrl, []byte(`{}`), nil)
		require.Equal(t, http.StatusTooManyRequests, limited.status)
		require.Contains(t, limited.raw, "this inbound endpoint")
		other := e.createInbound(t, `{"mode":"cli"}`)
		require.Equal(t, http.StatusOK, ingest(t, other.IngestUrl, []byte(`{}`), nil).status, "another endpoint counts on its own")
	})
}

// TestPullAckCountsOnce: concurrent acknowledgements of the same events
// acknowledge each once between them.
func TestPullAckCountsOnce(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, options{receivers: true}, func(t *testing.T, e *env) {
		v := e.sdkCall(t, http.MethodPost, "/v1/pull-endpoints", `{}`, http.StatusCreated, data(sdkPullCreated))
		id, u := str(v, "data", "id"), str(v, "data", "ingest_url")
		var ids []string
		for range 5 {
			ids = append(ids, `"`+ingest(t, u, []byte(`{ "spaced" : true }`), nil).messageID(t)+`"`)
		}
		body := `{"event_ids":[` + strings.Join(ids, ",") + `]}`
		counts := make(chan int, 4)
		for range 4 {
			go func() {
				status, _, raw := e.do(http.MethodPost, "/v1/pull-endpoints/"+id+"/events/ack", e.a.key, "application/json", []byte(body))
				var out struct{ Data struct{ Acknowledged int } }
				if status != http.StatusOK || json.Unmarshal(raw, &out) != nil {
					counts <- -100
					return
				}
				counts <- out.Data.Acknowledged
			}()
		}
		sum := 0
		for range 4 {
			sum += <-counts
		}
		require.Equal(t, 5, sum)

		// A body that is JSON but not compact comes back exactly, as base64.
		ev := e.sdkCall(t, http.MethodGet, "/v1/pull-endpoints/"+id+"/events/"+strings.Trim(ids[0], `"`), "", http.StatusOK, data(sdkPullEventDetail))
		require.Equal(t, "base64", str(ev, "data", "payload_encoding"))
		raw, err := base64.StdEncoding.DecodeString(str(ev, "data", "payload"))
		require.NoError(t, err)
		require.Equal(t, `{ "spaced" : true }`, string(raw))
	})
}

// TestInboundExpiry: an ephemeral endpoint refuses intake (410) once its
// time has passed, records why, and leaves the list.
func TestInboundExpiry(t *testing.T) {
	t.Parallel()
	forEachDialectOnClock(t, newClock(), func(c *clock) options { return options{now: c.Now} }, func(t *testing.T, e *env, clk *clock) {
		at := clk.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		ie := e.createInbound(t, `{"mode":"cli","expires_at":"`+at+`"}`)
		require.Equal(t, http.StatusOK, ingest(t, ie.IngestUrl, []byte(`{}`), nil).status)
		clk.Advance(2 * time.Hour)
		a := ingest(t, ie.IngestUrl, []byte(`{}`), nil)
		require.Equal(t, http.StatusGone, a.status, a.raw)
		require.Equal(t, "ENDPOINT_EXPIRED", a.errorCode())
		require.Equal(t, "endpoint_expired", e.rejections(t, ie.Id)[0].ReasonCode)
		g, err := e.a.client.GetInboundEndpointWithResponse(context.Background(), ie.Id)
		require.NoError(t, err)
		require.False(t, g.JSON200.Data.Active)
	})
}

// TestIngestRefusesABodyCutShort: a provider that goes away before sending
// the body its Content-Length announced gets no message stored (a
// truncated body must not be forwarded, nor answer a later retry as its
// duplicate).
func TestIngestRefusesABodyCutShort(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, options{receivers: true}, func(t *testing.T, e *env) {
		rc := newReceiver(t, nil)
		ie := e.createInbound(t, `{"url":"`+rc.url("/x")+`"}`)
		u, err := url.Parse(ie.IngestUrl)
		require.NoError(t, err)
		before := e.countMessages(t)

		conn, err := net.Dial("tcp", u.Host)
		require.NoError(t, err)
		defer conn.Close()
		_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"order\":", u.RequestURI(), u.Host)
		require.NoError(t, err)
		require.NoError(t, conn.(*net.TCPConn).CloseWrite()) // the rest never comes
		// The server answers (or closes) once the handler has returned.
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(time.Minute)))
		answer, _ := io.ReadAll(conn)
		require.NotContains(t, string(answer), "HTTP/1.1 2", "a cut-short body was accepted: %s", answer)

		require.Equal(t, before, e.countMessages(t), "a cut-short body was stored")
		// The same delivery sent whole is accepted.
		require.Equal(t, http.StatusOK, ingest(t, ie.IngestUrl, []byte(`{"order":1}`), map[string]string{"Content-Type": "application/json"}).status)
		require.Equal(t, before+1, e.countMessages(t))
	})
}
