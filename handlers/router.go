package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	echomiddleware "github.com/oapi-codegen/echo-middleware"
	"github.com/swaggest/swgui/v5emb"

	hookd "github.com/hookd/hookd"
	"github.com/hookd/hookd/credentials"
	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/metrics"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/tracing"
)

// MaxBodyBytes bounds every request body of the management API.
const MaxBodyBytes = 64 * 1024

// MaxSendBodyBytes bounds a send request: a 1 MiB payload plus headers and
// the other fields.
const MaxSendBodyBytes = MaxPayloadBytes + 64*1024

// MaxSendBatchBodyBytes bounds a batch send request (its payloads are
// still at most MaxPayloadBytes each).
const MaxSendBatchBodyBytes = 8 << 20

const (
	sendPath      = "/v1/webhooks/send"
	sendBatchPath = "/v1/webhooks/send-batch"
	publishPath   = "/v1/events"
)

// takesAPayload reports whether the path's body carries a message payload
// (1 MiB) rather than management fields.
func takesAPayload(path string) bool { return path == sendPath || path == publishPath }

// RequestTimeout bounds the work of one request, database waits included
// (a request that cannot get a connection in time answers 503).
const RequestTimeout = 30 * time.Second

// NewRouter returns the Echo instance serving the whole API for s: request
// ids, access logs, panic recovery, body limits, validation against the
// embedded spec (including authentication), the strict handlers, the spec
// itself at /openapi.yaml and /openapi.json, and Swagger UI at /docs.
func NewRouter(s *Server) (*echo.Echo, error) {
	spec, err := gen.GetSpec()
	if err != nil {
		return nil, fmt.Errorf("load embedded spec: %w", err)
	}
	// The servers list is documentation; matching on it would refuse
	// requests whose Host differs.
	spec.Servers = nil
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("render spec as JSON: %w", err)
	}

	configureValidator()
	routes := map[string]bool{} // the route templates, filled below
	e := newEcho(s, spec, routes)
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{
		Limit: fmt.Sprintf("%dB", MaxBodyBytes),
		Skipper: func(c echo.Context) bool {
			p := c.Request().URL.Path
			return takesAPayload(p) || p == sendBatchPath || isIngestPath(p) // the ingest handler has its own limit
		},
	}))
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{
		Limit:   fmt.Sprintf("%dB", MaxSendBodyBytes),
		Skipper: func(c echo.Context) bool { return !takesAPayload(c.Request().URL.Path) },
	}))
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{
		Limit:   fmt.Sprintf("%dB", MaxSendBatchBodyBytes),
		Skipper: func(c echo.Context) bool { return c.Request().URL.Path != sendBatchPath },
	}))
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		lower := lowerMediaType(next)
		return func(c echo.Context) error {
			if isIngestPath(c.Request().URL.Path) {
				return next(c) // a received webhook keeps its headers as sent
			}
			return lower(c)
		}
	})
	e.Use(keepRawQuery)
	e.Use(echomiddleware.OapiRequestValidatorWithOptions(spec, &echomiddleware.Options{
		SilenceServersWarning: true,
		Skipper: func(c echo.Context) bool {
			p := c.Request().URL.Path
			return !specPath(p) || isIngestPath(p) || (s.ServeMetrics && s.Metrics != nil && p == metrics.Path)
		},
		ErrorHandler: func(_ echo.Context, err *echo.HTTPError) error {
			return err // rendered by errorHandler, which knows every kind
		},
		Options: openapi3filter.Options{
			AuthenticationFunc: s.authenticate,
			// The handlers bind the body again from its bytes: a send's
			// payload must reach the store exactly as received.
			KeepValidatedValue: false,
		},
	}))
	// After the validator (which rewrites the query from what it could
	// parse), so an unauthenticated request is 401 whatever its query, and
	// before any handler reads the partly dropped query.
	e.Use(strictQuery)
	e.Use(attachAuth)
	e.Use(s.limitRequests)

	gen.RegisterHandlers(e, gen.NewStrictHandler(s, nil))
	e.POST(ingestRoute, s.Ingest)

	e.GET("/openapi.yaml", func(c echo.Context) error {
		return c.Blob(http.StatusOK, "application/yaml", hookd.SpecYAML)
	})
	e.GET("/openapi.json", func(c echo.Context) error {
		return c.JSONBlob(http.StatusOK, specJSON)
	})
	docs := echo.WrapHandler(v5emb.New("hookd API", "/openapi.json", "/docs/"))
	e.GET("/docs", func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, "/docs/") })
	e.GET("/docs/*", docs)
	if s.ServeMetrics && s.Metrics != nil {
		e.GET(metrics.Path, echo.WrapHandler(s.Metrics.Handler()))
	}
	if s.Console != nil {
		console := echo.WrapHandler(s.Console)
		e.GET("/console", console)
		e.GET("/console/*", console)
	}
	for _, r := range e.Routes() {
		routes[r.Path] = true
	}
	return e, nil
}

// isIngestPath reports whether path is an ingest URL, which takes any
// body and content type and authenticates by its token (handlers.Ingest).
func isIngestPath(path string) bool { return strings.HasPrefix(path, IngestPathPrefix) }

// NewIngestRouter returns an Echo instance serving only the ingest route
// (and /healthz and /readyz), with the request ids, access log lines and
// error envelope of NewRouter: the listener an operator exposes to
// providers while the API stays private (--ingest-addr).
func NewIngestRouter(s *Server) (*echo.Echo, error) {
	e, err := NewProbeRouter(s)
	if err != nil {
		return nil, err
	}
	e.POST(ingestRoute, s.Ingest)
	return e, nil
}

// NewProbeRouter returns an Echo instance serving only GET /healthz and
// GET /readyz of s, with the request ids, access log lines and error
// envelope of NewRouter; every other path answers 404 NOT_FOUND. A process
// that runs delivery but no API (the worker role) serves it, so no
// management or send route is reachable there. It needs only s.Store and
// s.Logger (and s.Metrics, which it counts into and, with s.ServeMetrics,
// serves at /metrics).
func NewProbeRouter(s *Server) (*echo.Echo, error) {
	if s.Store == nil {
		return nil, errors.New("handlers: a store is required")
	}
	spec, err := gen.GetSpec()
	if err != nil {
		return nil, fmt.Errorf("load embedded spec: %w", err)
	}
	routes := map[string]bool{}
	e := newEcho(s, spec, routes)
	h := gen.NewStrictHandler(s, nil)
	e.GET("/healthz", h.GetHealthz)
	e.GET("/readyz", h.GetReadyz)
	if s.ServeMetrics && s.Metrics != nil {
		e.GET(metrics.Path, echo.WrapHandler(s.Metrics.Handler()))
	}
	for _, r := range e.Routes() {
		routes[r.Path] = true
	}
	return e, nil
}

// newEcho is the base of both routers: the error envelope, request ids, one
// access log line per request, the request deadline and panic recovery.
// Its log lines carry component=api and the request id.
func newEcho(s *Server, spec *openapi3.T, routes map[string]bool) *echo.Echo {
	log := s.log().With("component", "api")
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.JSONSerializer = jsonSerializer{}
	e.IPExtractor = clientIPExtractor(s.TrustedProxies)
	e.HTTPErrorHandler = errorHandler(log, spec)

	// First, so every answer is counted: the validator's 4xx, panics
	// (rendered by accessLog) and unknown paths included.
	if s.Metrics != nil {
		e.Use(countRequests(s.Metrics, routes))
	}
	e.Use(requestID())
	if s.TracerProvider != nil {
		s.tracer = tracing.Tracer(s.TracerProvider)
		e.Use(traceRequests(s.tracer, routes))
	}
	e.Use(accessLog(log))
	e.Use(func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			limit := RequestTimeout
			if exportFilePath(c.Request().URL.Path) {
				limit = s.Exports.streamTimeout()
			}
			ctx, cancel := context.WithTimeout(c.Request().Context(), limit)
			defer cancel()
			if p := c.Request().URL.Path; (s.Exports.PublicURL == "" && exportDownloadPath(p)) ||
				(s.IngestBaseURL == "" && (strings.HasPrefix(p, "/v1/inbound-endpoints") || strings.HasPrefix(p, "/v1/pull-endpoints"))) {
				// Only export downloads and inbound and pull endpoints
				// (their ingest URLs) link back to this server.
				ctx = withOrigin(ctx, s.requestOrigin(c))
			}
			c.SetRequest(c.Request().WithContext(ctx))
			return next(c)
		}
	})
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		DisablePrintStack: true,
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			ctx := c.Request().Context()
			log.ErrorContext(ctx, "panic", "request_id", RequestID(ctx), "error", err.Error(), "stack", string(stack))
			return err
		},
	}))
	return e
}

// exportFilePath reports whether path is a CSV download
// (/v1/exports/{id}/file), which may take longer than RequestTimeout.
func exportFilePath(path string) bool {
	return strings.HasPrefix(path, "/v1/exports/") && strings.HasSuffix(path, "/file")
}

func exportDownloadPath(path string) bool {
	return strings.HasPrefix(path, "/v1/exports/") && strings.HasSuffix(path, "/download")
}

// requestOrigin is "scheme://host" as the client addressed this server.
// The scheme is the connection's, or a trusted proxy's X-Forwarded-Proto:
// Echo's c.Scheme() believes that header (and two others) from anyone.
func (s *Server) requestOrigin(c echo.Context) string {
	r := c.Request()
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); (p == "http" || p == "https") && s.fromTrustedProxy(r.RemoteAddr) {
		scheme = p
	}
	return scheme + "://" + r.Host
}

// fromTrustedProxy reports whether the TCP peer is one of TrustedProxies.
func (s *Server) fromTrustedProxy(remoteAddr string) bool {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	for _, p := range s.TrustedProxies {
		if p.Contains(ap.Addr().Unmap()) {
			return true
		}
	}
	return false
}

// specPath reports whether the validator owns path: everything except the
// documentation and console routes, so unknown paths get the validator's 404.
func specPath(path string) bool {
	return path != "/openapi.yaml" && path != "/openapi.json" && path != "/docs" && !strings.HasPrefix(path, "/docs/") &&
		path != "/console" && !strings.HasPrefix(path, "/console/")
}

func requestID() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			id := ids.NewRequest()
			c.Response().Header().Set("X-Request-Id", id)
			c.SetRequest(c.Request().WithContext(withRequestID(c.Request().Context(), id)))
			return next(c)
		}
	}
}

func accessLog(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err) // render now so the status below is the one sent
			}
			ctx := c.Request().Context()
			attrs := []any{
				"request_id", RequestID(ctx),
				"method", c.Request().Method,
				"route", c.Path(),
				"status", c.Response().Status,
				"duration_ms", float64(time.Since(start).Microseconds()) / 1000,
			}
			if pid := projectID(ctx); pid != "" {
				attrs = append(attrs, "project_id", pid)
			}
			log.InfoContext(ctx, "http request", attrs...)
			return nil
		}
	}
}

// countRequests counts every answer by route template (never the raw
// path: its label must stay bounded), method and status. Requests that
// matched no route template are counted as metrics.UnmatchedRoute.
func countRequests(m *metrics.Metrics, routes map[string]bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			if err := next(c); err != nil {
				c.Error(err) // render now so the status below is the one sent
			}
			route := c.Path()
			if !routes[route] {
				route = metrics.UnmatchedRoute
			}
			m.ObserveHTTP(route, c.Request().Method, c.Response().Status, time.Since(start))
			return nil
		}
	}
}

// authenticate is the validator's AuthenticationFunc for bearerAuth: it
// resolves the API key (with its project's rate limits) and leaves it on
// the echo context for attachAuth. A client address with too many failed
// authentications in the last minute is refused with 429 RATE_LIMITED
// before any key lookup.
func (s *Server) authenticate(ctx context.Context, in *openapi3filter.AuthenticationInput) error {
	c := echomiddleware.GetEchoContext(ctx)
	req := in.RequestValidationInput.Request
	now := s.limitNow()
	client := s.clientKey(c)
	failLimit := s.authFailureLimit()
	if ok, wait := s.authFailures.Check(client, failLimit, now); !ok {
		return &echo.HTTPError{Code: http.StatusTooManyRequests, Message: "rate limited", Internal: errAuthRateLimited(wait)}
	}
	unauthorized := func() error {
		s.authFailures.Allow(client, failLimit, now)
		return &echo.HTTPError{Code: http.StatusUnauthorized, Message: "unauthorized", Internal: errUnauthorized}
	}
	h := req.Header.Get("Authorization")
	scheme, token, _ := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || !credentials.WellFormedAPIKey(token) {
		return unauthorized()
	}
	hash := credentials.HashAPIKey(token)
	p, gen, ok := s.auth.get(hash, now)
	if ok {
		c.Set(authKey, p)
		return nil
	}
	k, limits, err := s.Store.Authenticate(req.Context(), hash)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return unauthorized()
	case err != nil:
		return &echo.HTTPError{Code: http.StatusInternalServerError, Message: "authentication failed", Internal: err}
	}
	p = principal{key: k, limits: limits}
	s.auth.put(hash, p, gen, now)
	c.Set(authKey, p)
	return nil
}

// attachAuth moves the authenticated key from the echo context into the
// request context, where the strict handlers read it. It runs after the
// validator, which has already replaced the request body it consumed.
func attachAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if p, ok := c.Get(authKey).(principal); ok {
			c.SetRequest(c.Request().WithContext(withAPIKey(c.Request().Context(), p.key)))
		}
		return next(c)
	}
}
