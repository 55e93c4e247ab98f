package handlers

import (
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/inbound"
	"github.com/hookd/hookd/ratelimit"
	"github.com/hookd/hookd/store"
)

// MaxIngestBodyBytes bounds a received webhook's body (as a send's payload).
const MaxIngestBodyBytes = MaxPayloadBytes

// Defaults of the ingest rate limits, in requests per minute (per hookd
// process): per inbound endpoint, and per source address and endpoint.
const (
	DefaultIngestLimitPerEndpoint = 300_000 // 5,000 a second
	DefaultIngestLimitPerSource   = 60_000  // 1,000 a second
)

// ingestRoute is the Echo path of the ingest route.
const ingestRoute = IngestPathPrefix + ":id/:token"

// pausedRetryAfter is the Retry-After of a paused endpoint's 503.
const pausedRetryAfter = time.Minute

var errIngestUnauthorized = &Error{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED", Message: "this ingest URL is not valid"}

// ingestLimits are the ingest rate limiters of a Server.
type ingestLimits struct {
	perEndpoint, perSource ratelimit.Limiter
	records                ratelimit.Limiter // rejection records per endpoint
	configs                configCache
}

// configCache keeps each inbound endpoint's built checks (its HMAC secret
// opened, its allow-list parsed) while the endpoint is unchanged, so a
// request does not redo that work.
type configCache struct {
	mu sync.Mutex
	m  map[string]builtConfig
}

type builtConfig struct {
	updatedAt time.Time
	cfg       inbound.Config
}

// maxCachedConfigs bounds configCache; past it the cache starts again empty.
const maxCachedConfigs = 10_000

// Ingest is POST /v1/webhooks/receive/{id}/{token}: it authenticates the
// request by its token, applies the endpoint's checks, stores the body and
// headers and answers once they are committed (see the spec).
func (s *Server) Ingest(c echo.Context) error {
	ctx := c.Request().Context()
	id, err := uuid.Parse(c.Param("id"))
	if err != nil || !strings.HasPrefix(c.Request().URL.Path, IngestPathPrefix) {
		return errIngestUnauthorized
	}
	ie, err := s.Store.IngestEndpoint(ctx, id.String())
	if errors.Is(err, store.ErrNotFound) {
		return errIngestUnauthorized
	}
	if err != nil {
		return err
	}
	src := sourceAddr(c)
	limitNow := s.limitNow()
	// Per source before the token check, so a caller guessing tokens is
	// slowed down while the provider's own calls, from other addresses,
	// are not (and recordRejection has a budget of its own).
	if ok, wait := s.ingest.perSource.Allow(ie.ID+"/"+s.clientKey(c), s.ingestLimit(s.IngestLimitPerSource, DefaultIngestLimitPerSource), limitNow); !ok {
		return &Error{Status: http.StatusTooManyRequests, Code: "RATE_LIMITED", Message: "too many requests from this address; retry later", RetryAfter: wait}
	}
	rejected := func(reason, code string, status int, detail string, retry time.Duration) error {
		s.recordRejection(ctx, ie, reason, detail, src, c.Request().Header)
		return &Error{Status: status, Code: code, Message: detail, RetryAfter: retry}
	}
	sum := sha256.Sum256([]byte(c.Param("token")))
	if subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), []byte(ie.TokenHash)) != 1 {
		// Recorded without headers: the caller is not the provider.
		s.recordRejection(ctx, ie, "invalid_token", "the ingest token in the URL is wrong", src, nil)
		return errIngestUnauthorized
	}
	now := s.now()
	if ie.Expired(now) {
		return rejected("endpoint_expired", "ENDPOINT_EXPIRED", http.StatusGone, "this inbound endpoint expired at "+ie.ExpiresAt.UTC().Format(time.RFC3339), 0)
	}
	if ie.Paused {
		return rejected("endpoint_paused", "ENDPOINT_PAUSED", http.StatusServiceUnavailable, "this inbound endpoint is paused; retry later", pausedRetryAfter)
	}
	if ok, wait := s.ingest.perEndpoint.Allow(ie.ID, s.ingestLimit(s.IngestLimitPerEndpoint, DefaultIngestLimitPerEndpoint), limitNow); !ok {
		return &Error{Status: http.StatusTooManyRequests, Code: "RATE_LIMITED", Message: "too many requests for this inbound endpoint; retry later", RetryAfter: wait}
	}
	cfg, err := s.cachedIngestConfig(ie)
	if err != nil {
		return err
	}
	if rej := cfg.CheckSource(src); rej != nil {
		return rejected(rej.Reason, rej.Code, rej.Status, rej.Detail, 0)
	}
	body, err := readBody(http.MaxBytesReader(c.Response(), c.Request().Body, MaxIngestBodyBytes), c.Request().ContentLength)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return rejected("payload_too_large", "PAYLOAD_TOO_LARGE", http.StatusRequestEntityTooLarge,
				"the body is larger than 1 MiB (1,048,576 bytes)", 0)
		}
		return errClientGone
	}
	req := inbound.Request{Header: c.Request().Header, Query: c.Request().URL.Query(), Body: body, Source: src}
	if rej := cfg.Verify(req, now); rej != nil {
		s.recordRejection(ctx, ie, rej.Reason, rej.Detail, src, c.Request().Header)
		return &Error{Status: rej.Status, Code: rej.Code, Message: rej.Detail}
	}

	headers := inbound.ForwardHeaders(c.Request().Header, deref(ie.TokenHeaderName, ""))
	if _, ok := headers["Content-Type"]; !ok {
		headers["Content-Type"] = "application/octet-stream"
	}
	bodySum := sha256.Sum256(body)
	m := store.Message{
		ID: uuid.Must(uuid.NewV7()).String(), ProjectID: ie.ProjectID, EndpointID: ie.ID, Status: store.StatusQueued,
		Payload: body, PayloadSHA256: hex.EncodeToString(bodySum[:]), SizeBytes: len(body), Headers: headers,
		NextAttemptAt: &now, CreatedAt: now, UpdatedAt: now, Inbound: true,
	}
	if k := inbound.IdempotencyKey(c.Request().Header, ie.IdempotencyHeaderNames); k != "" {
		m.IdempotencyKey = &k
	}
	if ie.Mode == store.ModePull {
		if ie.EventTypeSource != nil && ie.EventTypePath != nil {
			if t := inbound.EventType(*ie.EventTypeSource, *ie.EventTypePath, c.Request().Header, body); t != "" {
				m.EventType = &t
			}
		}
		// Kept this long once acknowledged (held until then).
		h := deref(ie.RetentionDays, store.DefaultPullRetentionDays) * 24
		m.RetentionHours = &h
	}
	// The provider is answered only after the commit, and the commit goes
	// through even if the provider goes away meanwhile (the batch has its
	// own deadline), so no outcome is left unknown to this process.
	stored, created, err := s.Store.InsertInbound(context.WithoutCancel(ctx), m)
	if err != nil {
		return err
	}
	if ie.IngestResponseCode == http.StatusNoContent {
		c.Response().WriteHeader(http.StatusNoContent) // no body allowed
		return nil
	}
	c.Response().Header().Set("Content-Type", "application/json")
	c.Response().WriteHeader(ie.IngestResponseCode)
	var out ingestAccepted
	out.Data.MessageID, out.Data.Duplicate, out.Meta = stored.ID, !created, meta(ctx)
	return json.NewEncoder(c.Response()).Encode(out)
}

// ingestAccepted is the spec's IngestAcceptedEnvelope (the ingest route is
// not generated, so neither is its answer's type).
type ingestAccepted struct {
	Data struct {
		MessageID string `json:"message_id"`
		Duplicate bool   `json:"duplicate"`
	} `json:"data"`
	Meta gen.Meta `json:"meta"`
}

func (s *Server) ingestLimit(set, def int) int {
	switch {
	case set < 0:
		return 0 // unlimited
	case set == 0:
		return def
	}
	return set
}

// sourceAddr is the client's address (through TrustedProxies).
func sourceAddr(c echo.Context) netip.Addr {
	a, _ := netip.ParseAddr(c.RealIP())
	return a.Unmap().WithZone("")
}

// cachedIngestConfig is ingestConfig of ie, built once per version of the
// endpoint (UpdatedAt changes with every PATCH; a master-key rotation
// re-seals the same secret).
func (s *Server) cachedIngestConfig(ie store.InboundEndpoint) (inbound.Config, error) {
	c := &s.ingest.configs
	c.mu.Lock()
	b, ok := c.m[ie.ID]
	c.mu.Unlock()
	if ok && b.updatedAt.Equal(ie.UpdatedAt) {
		return b.cfg, nil
	}
	cfg, err := s.ingestConfig(ie)
	if err != nil {
		return cfg, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedConfigs {
		c.m = map[string]builtConfig{}
	}
	c.m[ie.ID] = builtConfig{updatedAt: ie.UpdatedAt, cfg: cfg}
	c.mu.Unlock()
	return cfg, nil
}

// ingestConfig builds the checks of ie, opening its HMAC secret.
func (s *Server) ingestConfig(ie store.InboundEndpoint) (inbound.Config, error) {
	c := inbound.Config{
		Algorithm: ie.HMACAlgorithm, Encoding: ie.HMACEncoding, HMACPrefix: deref(ie.HMACPrefix, ""),
		HMACHeader: deref(ie.HMACHeaderName, ""), Provider: deref(ie.Provider, ""),
	}
	if ie.TimestampTTLSeconds != nil {
		c.TimestampTTL = time.Duration(*ie.TimestampTTLSeconds) * time.Second
	}
	if ie.TimestampHeaderName != nil {
		c.TimestampHeader = *ie.TimestampHeaderName
	}
	if ie.VerifyStaticToken && ie.TokenValueHash != nil {
		h, err := hex.DecodeString(*ie.TokenValueHash)
		if err != nil {
			return inbound.Config{}, err
		}
		c.TokenHash, c.TokenHeader, c.TokenQuery = h, deref(ie.TokenHeaderName, ""), deref(ie.TokenQueryParam, "")
	}
	if ie.VerifyHMAC && ie.HMACSecretSealed != nil {
		secret, err := s.Keyring.Open(deref(ie.HMACKeyID, ""), ie.HMACSecretSealed, inbound.SecretAAD(ie.ID))
		if err != nil {
			return inbound.Config{}, err
		}
		c.HMACSecret = secret
	}
	if ie.VerifyIPAllowlist {
		nets, err := parseNets(ie.AllowedCIDRs)
		if err != nil {
			return inbound.Config{}, err
		}
		c.AllowedNets = nets
	}
	return c, nil
}

// DefaultRejectionRecords is how many rejections one inbound endpoint
// records per minute (per process) unless Server.RejectionRecords says;
// past it refusals are answered but not recorded, so refused traffic
// cannot fill the database.
const DefaultRejectionRecords = 600

// maxRejectionHeaders bounds the redacted headers kept with a rejection.
const maxRejectionHeaders = 8 << 10

// recordRejection stores why a request to ie was refused (h nil: without
// headers); a failure to store it is logged, never turned into another
// answer.
func (s *Server) recordRejection(ctx context.Context, ie store.InboundEndpoint, reason, detail string, src netip.Addr, h http.Header) {
	if ok, _ := s.ingest.records.Allow(ie.ID, cmp.Or(s.RejectionRecords, DefaultRejectionRecords), s.limitNow()); !ok {
		return
	}
	r := store.InboundRejection{
		ID: uuid.Must(uuid.NewV7()).String(), ProjectID: ie.ProjectID, InboundEndpointID: ie.ID, ReasonCode: reason,
		ReasonDetail: &detail, ReceivedAt: store.Now(),
	}
	if h != nil {
		headers := inbound.RedactHeaders(inbound.ForwardHeaders(h), deref(ie.TokenHeaderName, ""), deref(ie.HMACHeaderName, ""))
		b, _ := json.Marshal(headers)
		if len(b) > maxRejectionHeaders {
			b, _ = json.Marshal(map[string]string{"(truncated)": fmt.Sprintf("%d bytes of headers", len(b))})
		}
		hs := string(b)
		r.HeadersRedacted = &hs
	}
	if src.IsValid() {
		a := src.String()
		r.SourceIP = &a
	}
	if err := s.Store.RecordRejection(context.WithoutCancel(ctx), r); err != nil {
		s.log().Error("cannot record an inbound rejection", "inbound_endpoint_id", ie.ID, "reason", reason, "error", err.Error())
	}
}
