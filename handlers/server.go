package handlers

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/metrics"
	"github.com/hookd/hookd/netguard"
	"github.com/hookd/hookd/secrets"
	"github.com/hookd/hookd/store"
)

// Server implements gen.StrictServerInterface. Build it with its fields set;
// Store, Keyring and Policy are required (New checks).
type Server struct {
	Store   *store.Store
	Keyring *secrets.Keyring
	Policy  *netguard.Policy
	Logger  *slog.Logger // nil means slog.Default()
	// Metrics, if not nil, counts API requests and accepted messages; nil
	// turns that off.
	Metrics *metrics.Metrics
	// ServeMetrics makes NewRouter serve Metrics at /metrics (metrics on
	// the API listener rather than their own).
	ServeMetrics bool

	draining atomic.Bool
	auth     authCache
}

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
