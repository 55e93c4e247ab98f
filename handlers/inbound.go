package handlers

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/net/http/httpguts"

	"github.com/hookd/hookd/credentials"
	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/inbound"
	"github.com/hookd/hookd/signature"
	"github.com/hookd/hookd/store"
)

// The inbound endpoint modes hookd has.
const (
	modeForward = "forward"
	modeCLI     = "cli"
)

// IngestPathPrefix starts every ingest URL: POST
// /v1/webhooks/receive/{id}/{token}.
const IngestPathPrefix = "/v1/webhooks/receive/"

// ingestURL is the ingest URL of endpoint id with token (or "{token}").
func (s *Server) ingestURL(ctx context.Context, id, token string) string {
	base := s.IngestBaseURL
	if base == "" {
		base = origin(ctx)
	}
	return base + IngestPathPrefix + id + "/" + token
}

// inboundInput is a create or update request: both have the same fields
// (create's url is required).
type inboundInput = gen.UpdateInboundEndpointRequest

// CreateInboundEndpoint creates an inbound endpoint, its delivery target and
// its first signing key; the ingest token and signing secret are shown
// only here.
func (s *Server) CreateInboundEndpoint(ctx context.Context, req gen.CreateInboundEndpointRequestObject) (gen.CreateInboundEndpointResponseObject, error) {
	var in inboundInput
	b, _ := json.Marshal(req.Body) // same fields: cannot fail
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, err
	}
	now := store.Now()
	ie := store.InboundEndpoint{
		ID: uuid.Must(uuid.NewV7()).String(), ProjectID: projectID(ctx), Mode: modeForward,
		HMACAlgorithm: "sha256", HMACEncoding: "hex", IngestResponseCode: http.StatusOK,
		AllowedCIDRs: store.StringList{}, IdempotencyHeaderNames: store.StringList{},
		SigningEnabled: true, CreatedAt: now, UpdatedAt: now,
	}
	if in.Mode != nil {
		ie.Mode = string(*in.Mode)
	}
	if err := s.applyInbound(ctx, &ie, in, true); err != nil {
		return nil, err
	}
	token, secret, key, err := s.storeInbound(ctx, &ie)
	if err != nil {
		return nil, err
	}
	u := s.ingestURL(ctx, ie.ID, token)
	return gen.CreateInboundEndpoint201JSONResponse{Meta: meta(ctx), Data: gen.InboundEndpointCreated{
		Id: uuid.MustParse(ie.ID), Name: ie.Name, Url: ie.URL, Mode: ie.Mode, IngestUrl: u, ReceiveUrl: u, SecretToken: token,
		SigningKeyId: &key.ID, SigningSecret: &secret, KeyHint: &key.KeyHint, CreatedAt: now.UTC(),
	}}, nil
}

// storeInbound stores a new inbound or pull endpoint with its delivery
// target and first signing key, and returns its ingest token and signing
// secret (shown once). Only a forward endpoint's target delivers: cli and
// pull endpoints hold what they receive (a target paused for good, never
// claimed by the engine).
func (s *Server) storeInbound(ctx context.Context, ie *store.InboundEndpoint) (token, secret string, key store.SigningKey, err error) {
	token = credentials.NewIngestToken()
	sum := sha256.Sum256([]byte(token))
	ie.TokenHash = hex.EncodeToString(sum[:])
	target := store.Endpoint{
		ID: ie.ID, ProjectID: ie.ProjectID, URL: ie.URL, Headers: store.Headers{}, HMACEnabled: ie.SigningEnabled,
		SignatureScheme: "hookbridge", EventTypes: store.StringList{}, Ordering: "none", CreatedAt: ie.CreatedAt, UpdatedAt: ie.CreatedAt,
		Paused: ie.Mode != modeForward,
	}
	secret = credentials.NewSigningSecret()
	key = s.newSigningKey(ie.ProjectID, ie.ID, secret, ie.CreatedAt)
	return token, secret, key, s.Store.CreateInboundEndpoint(ctx, *ie, target, key)
}

// applyInbound checks in and applies it to ie (the whole configuration is
// checked after the change, so a PATCH cannot leave a check half set).
func (s *Server) applyInbound(ctx context.Context, ie *store.InboundEndpoint, in inboundInput, creating bool) error {
	for field, v := range map[string]*string{"name": in.Name, "token_header_name": in.TokenHeaderName, "token_query_param": in.TokenQueryParam,
		"hmac_header_name": in.HmacHeaderName, "hmac_prefix": in.HmacPrefix, "timestamp_header_name": in.TimestampHeaderName} {
		if err := checkText(field, v, false); err != nil {
			return err
		}
	}
	if err := checkText("description", in.Description, true); err != nil {
		return err
	}
	if in.Mode != nil && string(*in.Mode) != ie.Mode {
		return invalid("/mode", "immutable", "an inbound endpoint's mode is set when it is created and cannot change")
	}
	if in.Url != nil {
		if _, err := s.checkURL(ctx, *in.Url); err != nil {
			return err
		}
		ie.URL = *in.Url
	} else if creating && ie.Mode == modeForward {
		return invalid("/url", "required", "url is required (the address accepted webhooks are forwarded to), unless mode is cli")
	}
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	setOpt := func(dst **string, v *string) {
		if v != nil {
			if *v == "" {
				*dst = nil
			} else {
				c := *v
				*dst = &c
			}
		}
	}
	set(&ie.Name, in.Name)
	set(&ie.Description, in.Description)
	setOpt(&ie.TokenHeaderName, in.TokenHeaderName)
	setOpt(&ie.TokenQueryParam, in.TokenQueryParam)
	setOpt(&ie.HMACHeaderName, in.HmacHeaderName)
	setOpt(&ie.HMACPrefix, in.HmacPrefix)
	setOpt(&ie.TimestampHeaderName, in.TimestampHeaderName)
	if in.HmacAlgorithm != nil {
		ie.HMACAlgorithm = string(*in.HmacAlgorithm)
	}
	if in.HmacEncoding != nil {
		ie.HMACEncoding = string(*in.HmacEncoding)
	}
	if in.TimestampTtlSeconds != nil {
		ttl := *in.TimestampTtlSeconds
		ie.TimestampTTLSeconds = &ttl
	}
	if in.VerifyStaticToken != nil {
		ie.VerifyStaticToken = *in.VerifyStaticToken
	}
	if in.VerifyHmac != nil {
		ie.VerifyHMAC = *in.VerifyHmac
	}
	if in.VerifyIpAllowlist != nil {
		ie.VerifyIPAllowlist = *in.VerifyIpAllowlist
	}
	if in.AllowedCidrs != nil {
		ie.AllowedCIDRs = append(store.StringList{}, *in.AllowedCidrs...)
	}
	if in.IdempotencyHeaderNames != nil {
		ie.IdempotencyHeaderNames = append(store.StringList{}, *in.IdempotencyHeaderNames...)
	}
	if in.IngestResponseCode != nil {
		ie.IngestResponseCode = *in.IngestResponseCode
	}
	if in.SigningEnabled != nil {
		ie.SigningEnabled = *in.SigningEnabled
	}
	if in.ExpiresAt != nil {
		if !in.ExpiresAt.After(s.now()) {
			return invalid("/expires_at", "future", "expires_at must be in the future")
		}
		at := in.ExpiresAt.UTC()
		ie.ExpiresAt = &at
	}
	if in.Provider != nil {
		p := string(*in.Provider)
		preset := inbound.Presets[p]
		ie.Provider, ie.VerifyHMAC = &p, true
		ie.HMACHeaderName, ie.HMACAlgorithm, ie.HMACEncoding = &preset.HMACHeader, "sha256", preset.Encoding
		ie.HMACPrefix = nil
		if preset.HMACPrefix != "" {
			ie.HMACPrefix = &preset.HMACPrefix
		}
		if in.IdempotencyHeaderNames == nil && len(ie.IdempotencyHeaderNames) == 0 && preset.IdempotencyHeader != "" {
			ie.IdempotencyHeaderNames = store.StringList{preset.IdempotencyHeader}
		}
	}
	if in.TokenValue != nil {
		sum := sha256.Sum256([]byte(*in.TokenValue))
		h := hex.EncodeToString(sum[:])
		ie.TokenValueHash = &h
	}
	if in.HmacSecret != nil {
		if ie.Provider != nil && *ie.Provider == inbound.StandardWebhooks {
			if _, err := signature.ComputeStandard(*in.HmacSecret, "x", 0, nil); err != nil {
				return invalid("/hmac_secret", "standard-webhooks-secret", `a standard_webhooks secret is "whsec_" followed by base64`)
			}
		}
		keyID, sealed := s.Keyring.Seal([]byte(*in.HmacSecret), inbound.SecretAAD(ie.ID))
		ie.HMACKeyID, ie.HMACSecretSealed = &keyID, sealed
	}
	return checkInboundConfig(*ie)
}

// checkInboundConfig refuses a configuration whose enabled checks lack
// what they need.
func checkInboundConfig(ie store.InboundEndpoint) error {
	for field, v := range map[string]*string{"/token_header_name": ie.TokenHeaderName, "/hmac_header_name": ie.HMACHeaderName,
		"/timestamp_header_name": ie.TimestampHeaderName} {
		if v != nil && !httpguts.ValidHeaderFieldName(*v) {
			return invalid(field, "header-name", strings.TrimPrefix(field, "/")+" is not a valid HTTP header name")
		}
	}
	for i, n := range ie.IdempotencyHeaderNames {
		if !httpguts.ValidHeaderFieldName(n) {
			return invalid("/idempotency_header_names/"+strconv.Itoa(i), "header-name", "idempotency_header_names must be HTTP header names")
		}
	}
	if ie.VerifyStaticToken {
		if ie.TokenValueHash == nil {
			return invalid("/token_value", "required", "verify_static_token needs token_value")
		}
		if ie.TokenHeaderName == nil && ie.TokenQueryParam == nil {
			return invalid("/token_header_name", "required", "verify_static_token needs token_header_name or token_query_param")
		}
	}
	if ie.VerifyHMAC {
		if ie.HMACSecretSealed == nil {
			return invalid("/hmac_secret", "required", "verify_hmac (and provider) need hmac_secret")
		}
		if ie.HMACHeaderName == nil {
			return invalid("/hmac_header_name", "required", "verify_hmac needs hmac_header_name (or a provider)")
		}
	}
	if ie.VerifyIPAllowlist {
		if len(ie.AllowedCIDRs) == 0 {
			return invalid("/allowed_cidrs", "required", "verify_ip_allowlist needs allowed_cidrs")
		}
		if _, err := parseNets(ie.AllowedCIDRs); err != nil {
			return err
		}
	}
	return nil
}

// parseNets reads an allow-list: addresses or CIDR blocks.
func parseNets(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for i, c := range list {
		if p, err := netip.ParsePrefix(c); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(c)
		if err != nil {
			return nil, invalid("/allowed_cidrs/"+strconv.Itoa(i), "cidr", "allowed_cidrs entries must be IP addresses or CIDR blocks, such as 192.0.2.0/24")
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func (s *Server) toInboundEndpoint(ctx context.Context, ie store.InboundEndpoint) gen.InboundEndpoint {
	out := gen.InboundEndpoint{
		Id: uuid.MustParse(ie.ID), Name: ie.Name, Url: ie.URL, Mode: ie.Mode, Active: !ie.Expired(s.now()), Paused: ie.Paused,
		Provider: ie.Provider, VerifyStaticToken: ie.VerifyStaticToken, TokenHeaderName: ie.TokenHeaderName, TokenQueryParam: ie.TokenQueryParam,
		VerifyHmac: ie.VerifyHMAC, HmacHeaderName: ie.HMACHeaderName, HmacAlgorithm: ie.HMACAlgorithm, HmacEncoding: ie.HMACEncoding,
		HmacPrefix: ie.HMACPrefix, TimestampHeaderName: ie.TimestampHeaderName, TimestampTtlSeconds: ie.TimestampTTLSeconds,
		VerifyIpAllowlist: ie.VerifyIPAllowlist, AllowedCidrs: append([]string{}, ie.AllowedCIDRs...),
		IdempotencyHeaderNames: append([]string{}, ie.IdempotencyHeaderNames...), IngestResponseCode: ie.IngestResponseCode,
		SigningEnabled: ie.SigningEnabled, IngestUrl: s.ingestURL(ctx, ie.ID, "{token}"), ExpiresAt: utcPtr(ie.ExpiresAt),
		CreatedAt: ie.CreatedAt.UTC(), UpdatedAt: ie.UpdatedAt.UTC(),
	}
	if ie.Description != "" {
		d := ie.Description
		out.Description = &d
	}
	return out
}

// ListInboundEndpoints pages through the project's inbound endpoints.
func (s *Server) ListInboundEndpoints(ctx context.Context, req gen.ListInboundEndpointsRequestObject) (gen.ListInboundEndpointsResponseObject, error) {
	es, next, hasMore, err := page(req.Params.Cursor, validUUID, deref(req.Params.Limit, 50),
		func(before string, n int) ([]store.InboundEndpoint, error) {
			return s.Store.ListInboundEndpoints(ctx, projectID(ctx), false, before, n)
		},
		func(e store.InboundEndpoint) string { return e.ID })
	if err != nil {
		return nil, err
	}
	data := make([]gen.InboundEndpointSummary, len(es))
	now := s.now()
	for i, e := range es {
		data[i] = gen.InboundEndpointSummary{Id: uuid.MustParse(e.ID), Name: e.Name, Url: e.URL, Mode: e.Mode,
			Active: !e.Expired(now), Paused: e.Paused, CreatedAt: e.CreatedAt.UTC()}
	}
	return gen.ListInboundEndpoints200JSONResponse{Data: data, Meta: gen.PageMeta{RequestId: RequestID(ctx), NextCursor: next, HasMore: hasMore}}, nil
}

// GetInboundEndpoint returns an inbound endpoint without its secrets.
func (s *Server) GetInboundEndpoint(ctx context.Context, req gen.GetInboundEndpointRequestObject) (gen.GetInboundEndpointResponseObject, error) {
	ie, err := s.inboundEndpoint(ctx, req.Id.String())
	if err != nil {
		return nil, err
	}
	return gen.GetInboundEndpoint200JSONResponse{Data: s.toInboundEndpoint(ctx, ie), Meta: meta(ctx)}, nil
}

// inboundFields is the whole configuration of ie as a change (a PATCH
// writes it back after applying the request to it).
func inboundFields(ie store.InboundEndpoint) store.InboundUpdate {
	return store.InboundUpdate{Fields: map[string]any{
		"name": ie.Name, "description": ie.Description, "provider": ie.Provider,
		"verify_static_token": ie.VerifyStaticToken, "token_header_name": ie.TokenHeaderName, "token_query_param": ie.TokenQueryParam,
		"token_value_hash": ie.TokenValueHash, "verify_hmac": ie.VerifyHMAC, "hmac_header_name": ie.HMACHeaderName,
		"hmac_secret_sealed": ie.HMACSecretSealed, "hmac_key_id": ie.HMACKeyID, "hmac_algorithm": ie.HMACAlgorithm,
		"hmac_encoding": ie.HMACEncoding, "hmac_prefix": ie.HMACPrefix, "timestamp_header_name": ie.TimestampHeaderName,
		"timestamp_ttl_seconds": ie.TimestampTTLSeconds, "verify_ip_allowlist": ie.VerifyIPAllowlist, "allowed_cidrs": ie.AllowedCIDRs,
		"idempotency_header_names": ie.IdempotencyHeaderNames, "ingest_response_code": ie.IngestResponseCode, "expires_at": ie.ExpiresAt,
	}}
}

// inboundEndpoint reads a live inbound endpoint of the project (a pull
// endpoint is not found: /v1/pull-endpoints serves those).
func (s *Server) inboundEndpoint(ctx context.Context, id string) (store.InboundEndpoint, error) {
	ie, err := s.Store.GetInboundEndpoint(ctx, projectID(ctx), id)
	if err == nil && ie.Mode == store.ModePull {
		return store.InboundEndpoint{}, store.ErrNotFound
	}
	return ie, err
}

// UpdateInboundEndpoint changes the fields given.
func (s *Server) UpdateInboundEndpoint(ctx context.Context, req gen.UpdateInboundEndpointRequestObject) (gen.UpdateInboundEndpointResponseObject, error) {
	id := req.Id.String()
	ie, err := s.inboundEndpoint(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.applyInbound(ctx, &ie, *req.Body, false); err != nil {
		return nil, err
	}
	u := inboundFields(ie)
	u.URL, u.SigningEnabled = req.Body.Url, req.Body.SigningEnabled
	if err := s.Store.UpdateInboundEndpoint(ctx, projectID(ctx), id, u); err != nil {
		return nil, err
	}
	ie, err = s.inboundEndpoint(ctx, id)
	if err != nil {
		return nil, err
	}
	var out gen.InboundEndpointUpdated
	b, _ := json.Marshal(s.toInboundEndpoint(ctx, ie)) // the same fields plus updated
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	out.Updated = true
	return gen.UpdateInboundEndpoint200JSONResponse{Data: out, Meta: meta(ctx)}, nil
}

// DeleteInboundEndpoint stops intake; accepted messages still forward.
func (s *Server) DeleteInboundEndpoint(ctx context.Context, req gen.DeleteInboundEndpointRequestObject) (gen.DeleteInboundEndpointResponseObject, error) {
	if err := s.liveInbound(ctx, req.Id); err != nil {
		return nil, err
	}
	if err := s.Store.DeleteInboundEndpoint(ctx, projectID(ctx), req.Id.String()); err != nil {
		return nil, err
	}
	return gen.DeleteInboundEndpoint200JSONResponse{Data: gen.EndpointDeleted{Id: req.Id.String(), Deleted: true}, Meta: meta(ctx)}, nil
}

// PauseInboundEndpoint refuses intake (503) until resumed.
func (s *Server) PauseInboundEndpoint(ctx context.Context, req gen.PauseInboundEndpointRequestObject) (gen.PauseInboundEndpointResponseObject, error) {
	if err := s.liveInbound(ctx, req.Id); err != nil {
		return nil, err
	}
	if _, err := s.Store.SetInboundPaused(ctx, projectID(ctx), req.Id.String(), true); err != nil {
		return nil, err
	}
	return gen.PauseInboundEndpoint200JSONResponse{Data: gen.EndpointPaused{Id: req.Id.String(), Paused: true}, Meta: meta(ctx)}, nil
}

// ResumeInboundEndpoint accepts intake again (and forwarding, if the
// breaker had disabled it).
func (s *Server) ResumeInboundEndpoint(ctx context.Context, req gen.ResumeInboundEndpointRequestObject) (gen.ResumeInboundEndpointResponseObject, error) {
	if err := s.liveInbound(ctx, req.Id); err != nil {
		return nil, err
	}
	n, err := s.Store.SetInboundPaused(ctx, projectID(ctx), req.Id.String(), false)
	if err != nil {
		return nil, err
	}
	return gen.ResumeInboundEndpoint200JSONResponse{Data: gen.EndpointPaused{Id: req.Id.String(), MessagesRequeued: n}, Meta: meta(ctx)}, nil
}

// liveInbound checks that id is a live inbound endpoint of the project.
func (s *Server) liveInbound(ctx context.Context, id uuid.UUID) error {
	_, err := s.inboundEndpoint(ctx, id.String())
	return err
}

// CreateInboundSigningKey adds a signing key for forwarded requests.
func (s *Server) CreateInboundSigningKey(ctx context.Context, req gen.CreateInboundSigningKeyRequestObject) (gen.CreateInboundSigningKeyResponseObject, error) {
	if err := s.liveInbound(ctx, req.Id); err != nil {
		return nil, err
	}
	k, err := s.addSigningKey(ctx, req.Id.String())
	if err != nil {
		return nil, err
	}
	return gen.CreateInboundSigningKey201JSONResponse(k), nil
}

// ListInboundSigningKeys lists the keys that sign forwarded requests.
func (s *Server) ListInboundSigningKeys(ctx context.Context, req gen.ListInboundSigningKeysRequestObject) (gen.ListInboundSigningKeysResponseObject, error) {
	if err := s.liveInbound(ctx, req.Id); err != nil {
		return nil, err
	}
	keys, err := s.signingKeyList(ctx, req.Id.String())
	if err != nil {
		return nil, err
	}
	return gen.ListInboundSigningKeys200JSONResponse(keys), nil
}

// DeleteInboundSigningKey deletes a key (never the last one).
func (s *Server) DeleteInboundSigningKey(ctx context.Context, req gen.DeleteInboundSigningKeyRequestObject) (gen.DeleteInboundSigningKeyResponseObject, error) {
	if err := s.liveInbound(ctx, req.Id); err != nil {
		return nil, err
	}
	if err := s.Store.DeleteSigningKey(ctx, projectID(ctx), req.Id.String(), req.KeyId); err != nil {
		return nil, err
	}
	return gen.DeleteInboundSigningKey204Response{}, nil
}

// inboundMessage reads a live inbound message of the project.
func (s *Server) inboundMessage(ctx context.Context, id string) (store.Message, error) {
	m, err := s.Store.GetMessage(ctx, projectID(ctx), id)
	if err == nil && !m.Inbound {
		return store.Message{}, store.ErrNotFound
	}
	return m, err
}

// GetInboundMessage returns an inbound message.
func (s *Server) GetInboundMessage(ctx context.Context, req gen.GetInboundMessageRequestObject) (gen.GetInboundMessageResponseObject, error) {
	m, err := s.inboundMessage(ctx, req.Id.String())
	if err != nil {
		return nil, err
	}
	out := gen.InboundMessage{
		Id: uuid.MustParse(m.ID), ProjectId: m.ProjectID, InboundEndpointId: uuid.MustParse(m.EndpointID), Status: gen.MessageStatus(m.Status),
		AttemptCount: m.AttemptCount, ReplayCount: m.ReplayCount, ReceivedAt: m.CreatedAt.UTC(), UpdatedAt: m.UpdatedAt.UTC(),
		ContentType: m.Headers["Content-Type"], SizeBytes: m.SizeBytes, PayloadSha256: m.PayloadSHA256, IdempotencyKey: m.IdempotencyKey,
		NextAttemptAt: utcPtr(m.NextAttemptAt), LastError: m.LastError, ResponseStatus: m.ResponseStatus,
		ResponseLatencyMs: m.ResponseLatencyMs, TotalDeliveryMs: totalDeliveryMs(m.Status, m.CreatedAt, m.DeliveredAt),
		DeliveredAt: utcPtr(m.DeliveredAt),
	}
	if m.Status == store.StatusFailedPermanent {
		out.FailedAt = utcPtr(m.TerminalAt)
	}
	return gen.GetInboundMessage200JSONResponse{Data: out, Meta: meta(ctx)}, nil
}

// GetInboundMessageAttempts lists the forwarding attempts of an inbound
// message (none for a missing, foreign or outbound one).
func (s *Server) GetInboundMessageAttempts(ctx context.Context, req gen.GetInboundMessageAttemptsRequestObject) (gen.GetInboundMessageAttemptsResponseObject, error) {
	if _, err := s.inboundMessage(ctx, req.Id.String()); err != nil {
		if err == store.ErrNotFound { //nolint:errorlint // the store returns the sentinel itself
			return gen.GetInboundMessageAttempts200JSONResponse{Data: []gen.Attempt{}, Meta: gen.AttemptListMeta{RequestId: RequestID(ctx)}}, nil
		}
		return nil, err
	}
	res, err := s.GetMessageAttempts(ctx, gen.GetMessageAttemptsRequestObject{Id: req.Id})
	if err != nil {
		return nil, err
	}
	return gen.GetInboundMessageAttempts200JSONResponse(res.(gen.GetMessageAttempts200JSONResponse)), nil
}

// ReplayInboundMessage forwards a finished inbound message again; the
// answer has the replay-batch shape.
func (s *Server) ReplayInboundMessage(ctx context.Context, req gen.ReplayInboundMessageRequestObject) (gen.ReplayInboundMessageResponseObject, error) {
	if _, err := s.inboundMessage(ctx, req.Id.String()); err != nil {
		return nil, err
	}
	res, err := s.replayBatch(ctx, []uuid.UUID{req.Id}, true)
	if err != nil {
		return nil, err
	}
	return gen.ReplayInboundMessage200JSONResponse{Message: "Replay finished", Data: res, Meta: meta(ctx)}, nil
}

// ReplayAllInboundMessages replays up to limit finished inbound messages.
func (s *Server) ReplayAllInboundMessages(ctx context.Context, req gen.ReplayAllInboundMessagesRequestObject) (gen.ReplayAllInboundMessagesResponseObject, error) {
	p := req.Params
	f := store.MessageFilter{Inbound: true, Forwarded: true, Status: string(p.Status), EndpointID: uuidString(p.InboundEndpointId), Replayable: true}
	res, err := s.replayAll(ctx, f, deref(p.Limit, 100))
	if err != nil {
		return nil, err
	}
	return gen.ReplayAllInboundMessages200JSONResponse{Message: "Replay finished", Data: res, Meta: meta(ctx)}, nil
}

// ReplayBatchInboundMessages replays the listed inbound messages.
func (s *Server) ReplayBatchInboundMessages(ctx context.Context, req gen.ReplayBatchInboundMessagesRequestObject) (gen.ReplayBatchInboundMessagesResponseObject, error) {
	res, err := s.replayBatch(ctx, req.Body.MessageIds, true)
	if err != nil {
		return nil, err
	}
	return gen.ReplayBatchInboundMessages200JSONResponse{Message: "Replay finished", Data: res, Meta: meta(ctx)}, nil
}

// DeleteInboundMessage soft-deletes an inbound message.
func (s *Server) DeleteInboundMessage(ctx context.Context, req gen.DeleteInboundMessageRequestObject) (gen.DeleteInboundMessageResponseObject, error) {
	d, err := s.deleteOne(ctx, req.Id, true)
	if err != nil {
		return nil, err
	}
	return gen.DeleteInboundMessage200JSONResponse{Data: d, Meta: meta(ctx)}, nil
}

// DeleteInboundMessagesBatch soft-deletes the listed inbound messages.
func (s *Server) DeleteInboundMessagesBatch(ctx context.Context, req gen.DeleteInboundMessagesBatchRequestObject) (gen.DeleteInboundMessagesBatchResponseObject, error) {
	idList, err := s.ofDirection(ctx, req.Body.MessageIds, true)
	if err != nil {
		return nil, err
	}
	res, err := s.deleteBatch(ctx, req.Body.MessageIds, idList)
	if err != nil {
		return nil, err
	}
	return gen.DeleteInboundMessagesBatch200JSONResponse{Data: res, Meta: meta(ctx)}, nil
}

// DeleteAllInboundMessages soft-deletes up to limit matching inbound
// messages.
func (s *Server) DeleteAllInboundMessages(ctx context.Context, req gen.DeleteAllInboundMessagesRequestObject) (gen.DeleteAllInboundMessagesResponseObject, error) {
	p := req.Params
	f := store.MessageFilter{Inbound: true, EndpointID: uuidString(p.InboundEndpointId), CreatedAfter: p.ReceivedAfter, CreatedBefore: p.ReceivedBefore}
	if p.Status != nil {
		f.Status = string(*p.Status)
	}
	res, err := s.deleteAll(ctx, f, deref(p.Limit, 100))
	if err != nil {
		return nil, err
	}
	return gen.DeleteAllInboundMessages200JSONResponse{Data: res, Meta: meta(ctx)}, nil
}

// GetInboundLogs pages through the project's inbound messages.
func (s *Server) GetInboundLogs(ctx context.Context, req gen.GetInboundLogsRequestObject) (gen.GetInboundLogsResponseObject, error) {
	p := req.Params
	f := store.MessageFilter{Inbound: true, EndpointID: uuidString(p.InboundEndpointId), CreatedAfter: p.StartTime, CreatedBefore: p.EndTime}
	if p.Status != nil {
		f.Status = string(*p.Status)
	}
	rows, next, hasMore, err := page(p.Cursor, validUUID, deref(p.Limit, 50),
		func(before string, n int) ([]store.MessageRow, error) {
			return s.Store.ListMessages(ctx, projectID(ctx), f, before, n)
		},
		func(r store.MessageRow) string { return r.ID })
	if err != nil {
		return nil, err
	}
	out := make([]gen.InboundLogEntry, len(rows))
	for i, r := range rows {
		out[i] = gen.InboundLogEntry{
			MessageId: r.ID, InboundEndpointId: r.EndpointID, Endpoint: r.EndpointURL, Status: gen.MessageStatus(r.Status),
			AttemptCount: r.AttemptCount, ReceivedAt: r.CreatedAt.UTC(), DeliveredAt: utcPtr(r.DeliveredAt),
			ResponseStatus: r.ResponseStatus, ResponseLatencyMs: r.ResponseLatencyMs, LastError: r.LastError,
			TotalDeliveryMs: totalDeliveryMs(r.Status, r.CreatedAt, r.DeliveredAt),
		}
	}
	return gen.GetInboundLogs200JSONResponse{Data: out, Meta: gen.PageMeta{RequestId: RequestID(ctx), NextCursor: next, HasMore: hasMore}}, nil
}

// GetInboundMetrics sums the window's inbound counters.
func (s *Server) GetInboundMetrics(ctx context.Context, req gen.GetInboundMetricsRequestObject) (gen.GetInboundMetricsResponseObject, error) {
	m, err := s.metricsOf(ctx, req.Params.Window, inboundCounterKey(req.Params.InboundEndpointId))
	if err != nil {
		return nil, err
	}
	return gen.GetInboundMetrics200JSONResponse{Data: m, Meta: meta(ctx)}, nil
}

// GetInboundTimeseries returns the window's inbound buckets.
func (s *Server) GetInboundTimeseries(ctx context.Context, req gen.GetInboundTimeseriesRequestObject) (gen.GetInboundTimeseriesResponseObject, error) {
	t, err := s.timeseriesOf(ctx, req.Params.Window, inboundCounterKey(req.Params.InboundEndpointId))
	if err != nil {
		return nil, err
	}
	return gen.GetInboundTimeseries200JSONResponse{Data: t, Meta: meta(ctx)}, nil
}

func inboundCounterKey(id *uuid.UUID) string {
	if id == nil {
		return store.AllInbound
	}
	return id.String()
}

// ListInboundRejections pages through refused ingest requests.
func (s *Server) ListInboundRejections(ctx context.Context, req gen.ListInboundRejectionsRequestObject) (gen.ListInboundRejectionsResponseObject, error) {
	p := req.Params
	f := store.RejectionFilter{InboundEndpointID: uuidString(p.InboundEndpointId), From: p.StartTime, To: p.EndTime}
	rows, next, hasMore, err := page(p.Cursor, validUUID, deref(p.Limit, 50),
		func(before string, n int) ([]store.InboundRejection, error) {
			return s.Store.ListRejections(ctx, projectID(ctx), f, before, n)
		},
		func(r store.InboundRejection) string { return r.ID })
	if err != nil {
		return nil, err
	}
	out := make([]gen.InboundRejection, len(rows))
	for i, r := range rows {
		epID := r.InboundEndpointID
		out[i] = gen.InboundRejection{Id: uuid.MustParse(r.ID), ReasonCode: r.ReasonCode, ReasonDetail: r.ReasonDetail,
			ReceivedAt: r.ReceivedAt.UTC(), InboundEndpointId: &epID, SourceIp: r.SourceIP, HeadersRedacted: r.HeadersRedacted}
	}
	return gen.ListInboundRejections200JSONResponse{Data: out, Meta: gen.PageMeta{RequestId: RequestID(ctx), NextCursor: next, HasMore: hasMore}}, nil
}

func uuidString(id *uuid.UUID) string {
	if id == nil {
		return ""
	}
	return id.String()
}

// totalDeliveryMs is the time from receipt to the successful forward.
func totalDeliveryMs(status string, received time.Time, delivered *time.Time) *int {
	if status != store.StatusSucceeded || delivered == nil {
		return nil
	}
	ms := int(delivered.Sub(received).Milliseconds())
	return &ms
}

// idsMatching keeps, in order, the ids of list that name messages of the
// project (deleted ones included) that f selects.
func (s *Server) idsMatching(ctx context.Context, list []uuid.UUID, f store.MessageFilter) ([]uuid.UUID, error) {
	strs := make([]string, len(list))
	for i, id := range list {
		strs[i] = id.String()
	}
	keep, err := s.Store.IDsMatching(ctx, projectID(ctx), strs, f)
	if err != nil {
		return nil, err
	}
	out := make([]uuid.UUID, 0, len(list))
	for _, id := range list {
		if keep[id.String()] {
			out = append(out, id)
		}
	}
	return out, nil
}

// ofDirection keeps the ids of list that name messages of the project
// received (inboundOnly) or sent.
func (s *Server) ofDirection(ctx context.Context, list []uuid.UUID, inboundOnly bool) ([]uuid.UUID, error) {
	return s.idsMatching(ctx, list, store.MessageFilter{Inbound: inboundOnly})
}

// ofDirectionOne is ofDirection for one id: ErrNotFound unless it names a
// message (deleted ones included) in that direction.
func (s *Server) ofDirectionOne(ctx context.Context, id uuid.UUID, inboundOnly bool) (uuid.UUID, error) {
	got, err := s.ofDirection(ctx, []uuid.UUID{id}, inboundOnly)
	if err != nil {
		return uuid.UUID{}, err
	}
	if len(got) == 0 {
		return uuid.UUID{}, store.ErrNotFound
	}
	return got[0], nil
}

// DefaultListenWait is how long a listen call waits for a message before
// it answers an empty list (below RequestTimeout, and below the 30 s that
// HookBridge's CLI waits for an answer).
const DefaultListenWait = 25 * time.Second

// listenPoll is how often a waiting listen call looks for new messages.
const listenPoll = 250 * time.Millisecond

// ListenInboundEndpoint answers the messages received after the cursor,
// waiting up to ListenWait for the first one.
func (s *Server) ListenInboundEndpoint(ctx context.Context, req gen.ListenInboundEndpointRequestObject) (gen.ListenInboundEndpointResponseObject, error) {
	id := req.Id.String()
	if err := s.liveInbound(ctx, req.Id); err != nil {
		return nil, err
	}
	after := store.ListenCursorAt(s.now())
	if req.Params.After != nil {
		after = req.Params.After.String()
	}
	wait := cmp.Or(s.ListenWait, DefaultListenWait)
	if w := req.Params.Wait; w != nil {
		wait = min(wait, time.Duration(*w)*time.Second)
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(listenPoll)
	defer tick.Stop()
	for {
		ms, err := s.Store.ListenMessages(ctx, projectID(ctx), id, after, s.now())
		if err != nil {
			return nil, err
		}
		if len(ms) > 0 {
			data := make([]gen.ListenMessage, len(ms))
			for i, m := range ms {
				data[i] = toListenMessage(m)
			}
			return gen.ListenInboundEndpoint200JSONResponse{Data: data, Meta: listenMeta(ctx, ms[len(ms)-1].ID)}, nil
		}
		if wait == 0 {
			return gen.ListenInboundEndpoint200JSONResponse{Data: []gen.ListenMessage{}, Meta: listenMeta(ctx, after)}, nil
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return gen.ListenInboundEndpoint200JSONResponse{Data: []gen.ListenMessage{}, Meta: listenMeta(ctx, after)}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func listenMeta(ctx context.Context, cursor string) (m listenMetaT) {
	m.NextCursor, m.RequestId = cursor, RequestID(ctx)
	return m
}

// listenMetaT is the generated ListenEnvelope's (anonymous) meta type.
type listenMetaT = struct {
	// NextCursor Pass as `after` to get the messages received after these.
	NextCursor string `json:"next_cursor"`
	RequestId  string `json:"request_id"`
}

// toListenMessage renders a message for a listener: the body as JSON when
// it is compact JSON that the answer's encoder leaves byte for byte (no
// characters it escapes), otherwise as base64, so the bytes are exact.
func toListenMessage(m store.Message) gen.ListenMessage {
	out := gen.ListenMessage{
		MessageId: uuid.MustParse(m.ID), ContentType: m.Headers["Content-Type"], Headers: map[string]string(m.Headers),
		SizeBytes: m.SizeBytes, ReceivedAt: m.CreatedAt.UTC(),
	}
	if out.Headers == nil {
		out.Headers = map[string]string{}
	}
	if verbatimJSON(m.Payload) {
		out.Body = json.RawMessage(m.Payload)
		return out
	}
	enc := gen.ListenMessageBodyEncodingBase64
	out.Body, out.BodyEncoding = base64.StdEncoding.EncodeToString(m.Payload), &enc
	return out
}

// verbatimJSON reports whether b is compact JSON that encoding/json writes
// back unchanged (it escapes <, >, &, U+2028 and U+2029).
func verbatimJSON(b []byte) bool {
	if len(b) == 0 || !json.Valid(b) || bytes.ContainsAny(b, "<>&\u2028\u2029") {
		return false
	}
	var c bytes.Buffer
	if json.Compact(&c, b) != nil {
		return false
	}
	return bytes.Equal(c.Bytes(), b)
}
