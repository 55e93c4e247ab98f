package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/metrics"
	"github.com/hookd/hookd/netguard"
	"github.com/hookd/hookd/ratelimit"
	"github.com/hookd/hookd/secrets"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/urlsign"
)

// Server implements gen.StrictServerInterface. Build it with New, which
// checks that Store, Keyring and Policy are set; a Server that only answers
// the probes (NewProbeRouter) needs just Store.
type Server struct {
	Store   *store.Store
	Keyring *secrets.Keyring
	Policy  *netguard.Policy
	Logger  *slog.Logger // nil means slog.Default()
	// Exports configures CSV exports; zero fields take the defaults.
	Exports ExportOptions
	// Now is the clock of export expiry, download links and metrics
	// windows; nil means time.Now. Tests set it to move time.
	Now func() time.Time
	// LimitClock measures the time that rate limits and the API-key cache
	// count (elapsed time, so a stepped wall clock does not disturb them);
	// nil means time.Now. Tests set it to move time.
	LimitClock func() time.Time
	// Metrics, if not nil, counts API requests and accepted messages; nil
	// turns that off.
	Metrics *metrics.Metrics
	// ServeMetrics makes NewRouter serve Metrics at /metrics (metrics on
	// the API listener rather than their own).
	ServeMetrics bool
	// Console, if not nil, is served at /console and below (the web
	// console, which uses the API like any client).
	Console http.Handler

	// RateLimitDefault is the management API limit, in requests per minute
	// per project, of projects whose own limit is 0. Zero means
	// DefaultRateLimitPerMinute. Limits are counted per process.
	RateLimitDefault int
	// AuthFailureLimit is how many failed authentications (missing,
	// malformed or unknown API key) one client address may make per minute;
	// past it, its requests to secured routes answer 429 RATE_LIMITED
	// without a key lookup. Zero means DefaultAuthFailureLimit; negative
	// turns the check off.
	AuthFailureLimit int
	// TrustedProxies are the addresses of reverse proxies whose
	// X-Forwarded-For header names the client. Empty: the client address is
	// the TCP peer's and the header is ignored (anyone could forge it).
	TrustedProxies []netip.Prefix
	// TracerProvider, if not nil, traces every API request and the commit
	// of what it accepted; messages keep the request's trace context so
	// their attempts join its trace (package tracing).
	TracerProvider trace.TracerProvider
	// IngestBaseURL is the external base of inbound endpoints' ingest URLs
	// ("https://host[:port][/path]"); empty: the request's scheme and Host.
	IngestBaseURL string
	// IngestLimitPerEndpoint and IngestLimitPerSource cap ingest requests
	// per minute (per process) for one inbound endpoint, and from one
	// address to one endpoint; 0 takes the defaults, negative is
	// unlimited.
	IngestLimitPerEndpoint int
	IngestLimitPerSource   int
	// RejectionRecords is how many rejections one inbound endpoint records
	// per minute; 0 means DefaultRejectionRecords.
	RejectionRecords int
	// ListenWait is how long GET /v1/inbound-endpoints/{id}/listen waits
	// for a message; 0 means DefaultListenWait.
	ListenWait   time.Duration
	ingest       ingestLimits
	tracer       trace.Tracer // TracerProvider's, set by NewRouter; nil: off
	draining     atomic.Bool
	auth         authCache
	signerOnce   sync.Once
	signer       *urlsign.Signer
	mgmtLimits   ratelimit.Limiter // per project: management routes
	sendLimits   ratelimit.Limiter // per project: POST /v1/webhooks/send
	authFailures ratelimit.Limiter // per client address: failed authentications
	schemas      schemaCache       // compiled event type schemas
}

// Defaults of the Server's limits.
const (
	// DefaultRateLimitPerMinute is the management API limit of a project
	// (requests per minute) when neither the project nor the server sets
	// one.
	DefaultRateLimitPerMinute = 1000
	// DefaultAuthFailureLimit is how many failed authentications per
	// minute one client address may make.
	DefaultAuthFailureLimit = 20
)

var _ gen.StrictServerInterface = (*Server)(nil)

// New returns a Server, or an error naming the missing dependency.
func New(st *store.Store, kr *secrets.Keyring, policy *netguard.Policy, log *slog.Logger) (*Server, error) {
	switch {
	case st == nil:
		return nil, errors.New("handlers: a store is required")
	case kr == nil:
		return nil, errors.New("handlers: a keyring is required")
	case policy == nil:
		return nil, errors.New("handlers: a URL policy is required")
	}
	return &Server{Store: st, Keyring: kr, Policy: policy, Logger: log}, nil
}

// limitNow reads LimitClock.
func (s *Server) limitNow() time.Time {
	if s.LimitClock == nil {
		return time.Now()
	}
	return s.LimitClock()
}

// now reads the clock, in UTC at the database's precision (microseconds).
func (s *Server) now() time.Time {
	if s.Now == nil {
		return store.Now()
	}
	return s.Now().UTC().Truncate(time.Microsecond)
}

func (s *Server) log() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

// SetDraining makes /readyz answer 503 from now on, so load balancers stop
// sending new requests while the process shuts down.
func (s *Server) SetDraining() { s.draining.Store(true) }

// GetHealthz answers while the process is up.
func (s *Server) GetHealthz(ctx context.Context, _ gen.GetHealthzRequestObject) (gen.GetHealthzResponseObject, error) {
	return gen.GetHealthz200JSONResponse{Data: gen.Health{Status: gen.Ok}, Meta: meta(ctx)}, nil
}

// readyTimeout bounds the database ping of /readyz.
const readyTimeout = 2 * time.Second

// GetReadyz answers 200 when the database answers and the process is not
// draining, 503 SERVICE_UNAVAILABLE otherwise.
func (s *Server) GetReadyz(ctx context.Context, _ gen.GetReadyzRequestObject) (gen.GetReadyzResponseObject, error) {
	if s.draining.Load() {
		return nil, &Error{Status: 503, Code: "SERVICE_UNAVAILABLE", Message: "this process is shutting down"}
	}
	pctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	if err := s.Store.Ping(pctx); err != nil {
		return nil, err
	}
	return gen.GetReadyz200JSONResponse{Data: gen.Health{Status: gen.Ok}, Meta: meta(ctx)}, nil
}
