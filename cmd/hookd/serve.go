package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/hookd/hookd/cleanup"
	"github.com/hookd/hookd/console"
	"github.com/hookd/hookd/delivery"
	"github.com/hookd/hookd/handlers"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/metrics"
	"github.com/hookd/hookd/netguard"
	"github.com/hookd/hookd/secrets"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/tracing"
)

// Roles of `hookd serve` (--role).
const (
	roleAll    = "all"    // the API and the delivery engine
	roleAPI    = "api"    // the API only: sends are stored, workers deliver them
	roleWorker = "worker" // the delivery engine, with /healthz and /readyz on --addr
)

// service is what one `hookd serve` process runs for its role.
type service struct {
	// handler serves --addr: the whole API, or only the probes (worker).
	handler http.Handler
	// probes answers /readyz; SetDraining turns it to 503 on shutdown.
	probes *handlers.Server
	// engine delivers messages; nil in the api role.
	engine *delivery.Engine
	// metrics counts requests and attempts; nil with --metrics-addr off.
	metrics *metrics.Metrics
	// tracer records spans (a no-op one without --otlp-endpoint);
	// stopTracing flushes and stops it.
	tracer      trace.TracerProvider
	stopTracing func(context.Context) error
}

// serve runs hookd in its role until ctx is cancelled, then shuts down
// gracefully. ready, if not nil, receives the listening address (tests use
// it).
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, ready chan<- string) error {
	var c Config
	fs := newFlagSet("serve", stderr)
	serveFlags(fs, &c)
	fs.Usage = usage(fs, "hookd serve [flags]", envVars{})
	if ok, err := parse(fs, &c, args, getenv, stdout, true, envVars{}); !ok {
		return err
	}
	log := newLogger(&c, stderr)

	opts := c.storeOptions()
	opts.ApplicationName = "hookd " + c.Role
	if path, ok := store.SQLitePath(opts); ok {
		// One server per SQLite file, taken before migrations run.
		release, err := lockSQLite(path)
		if err != nil {
			return err
		}
		defer release()
	}
	st, err := openStoreWith(ctx, opts, log)
	if err != nil {
		return err
	}
	defer st.Close()
	inUse, err := st.MasterKeyIDsInUse(ctx)
	if err != nil {
		return err
	}
	kr, err := c.keyring(log, inUse)
	if err != nil {
		return err
	}
	if c.Role != roleWorker {
		// The first API process of an empty database prints its key.
		if err := bootstrap(ctx, st, stdout, log, "http://"+displayAddrString(c.Addr), c.Console); err != nil {
			return err
		}
	}
	svc, err := newService(&c, st, kr, log)
	if err != nil {
		return err
	}
	return svc.run(ctx, &c, st, log, ready)
}

// newService builds the parts of c.Role: the API (api, all) or only the
// probes (worker), and the delivery engine (worker, all).
func newService(c *Config, st *store.Store, kr *secrets.Keyring, log *slog.Logger) (*service, error) {
	// The URL rules apply to endpoint URLs in the API and again when the
	// engine connects.
	policy := &netguard.Policy{AllowHTTP: c.DevAllowHTTP, AllowCIDRs: c.allowCIDRs}
	if policy.Development() {
		log.Warn("DEVELOPMENT URL ALLOW-LIST IS ON: endpoints may use these otherwise blocked destinations; never run production like this",
			"allow_http", c.DevAllowHTTP, "allow_cidrs", c.DevAllowCIDRs)
	}
	svc := &service{}
	tp, stop, err := tracing.Setup(context.Background(), tracing.Options{Endpoint: c.OTLPEndpoint, SampleRatio: c.TraceSampleRatio, Version: version, Role: c.Role})
	if err != nil {
		return nil, fmt.Errorf("--otlp-endpoint (HOOKD_OTLP_ENDPOINT): %w", err)
	}
	svc.stopTracing = stop
	if c.OTLPEndpoint != "" {
		svc.tracer = tp
		log.Info("tracing on", "otlp_endpoint", redactURL(c.OTLPEndpoint), "sample_ratio", c.TraceSampleRatio, "trace_header", c.TraceHeader)
	}
	if c.MetricsAddr != "off" {
		m, err := metrics.New(metrics.Options{Stats: st, EndpointLimit: c.MetricsEndpointLimit, Logger: log})
		if err != nil {
			return nil, err
		}
		svc.metrics = m
	}
	metricsOnAddr := svc.metrics != nil && c.MetricsAddr == "" // at /metrics on --addr
	if c.Role == roleWorker {
		svc.probes = &handlers.Server{Store: st, Logger: log, Metrics: svc.metrics, ServeMetrics: metricsOnAddr}
		router, err := handlers.NewProbeRouter(svc.probes)
		if err != nil {
			return nil, err
		}
		svc.handler = router
	} else {
		srv, err := handlers.New(st, kr, policy, log)
		if err != nil {
			return nil, err
		}
		srv.Exports = c.exportOptions()
		srv.Metrics, srv.ServeMetrics = svc.metrics, metricsOnAddr
		srv.TracerProvider = svc.tracer
		c.applyLimits(srv)
		if c.Console {
			if srv.Console, err = console.Handler(console.Options{DownloadOrigin: c.downloadOrigin()}); err != nil {
				return nil, fmt.Errorf("console: %w", err)
			}
		}
		log.Info("API rate limits (counted per process)", "management_per_minute_default", c.RateLimitDefault,
			"auth_failures_per_minute_per_address", c.AuthFailureLimit, "trusted_proxies", c.TrustedProxies)
		router, err := handlers.NewRouter(srv)
		if err != nil {
			return nil, err
		}
		svc.probes, svc.handler = srv, router
	}
	if c.Role == roleAPI {
		return svc, nil
	}
	dcfg, err := c.deliveryConfig() // (validate checked the flags already)
	if err != nil {
		return nil, err
	}
	sender, err := delivery.NewSender(delivery.SenderOptions{Policy: policy, ExtraCAFile: c.CAFile, UserAgent: dcfg.UserAgent})
	if err != nil {
		return nil, fmt.Errorf("--ca-file (HOOKD_CA_FILE): %w", err)
	}
	if svc.metrics != nil {
		dcfg.Observer = svc.metrics
	}
	dcfg.TracerProvider = svc.tracer
	svc.engine, err = delivery.New(st, kr, sender, dcfg, log)
	if err != nil {
		return nil, err
	}
	return svc, nil
}

// startRiver, set only in the River benchmark variant (-tags river,
// river.go), makes River's workers deliver instead of the engine's claims.
var startRiver func(ctx context.Context, st *store.Store, engine *delivery.Engine, workers int, log *slog.Logger) (stop func(), err error)

// run listens on c.Addr and runs the engine (if any) until ctx ends, then
// drains: /readyz turns 503 for c.DrainDelay, and the HTTP server and the
// engine stop together within c.ShutdownTimeout.
func (svc *service) run(ctx context.Context, c *Config, st *store.Store, log *slog.Logger, ready chan<- string) error {
	if svc.stopTracing != nil {
		defer func() {
			// The spans of the drain go out too, if the collector answers.
			flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := svc.stopTracing(flushCtx); err != nil {
				log.Warn("could not flush traces", "error", err.Error())
			}
		}()
	}
	httpServer := &http.Server{
		Handler:           svc.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 * 1024,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if c.DebugAddr != "" {
		if err := serveDebug(ctx, c.DebugAddr, log); err != nil {
			return err
		}
	}
	if c.IngestAddr != "" && c.Role != roleWorker {
		stopIngest, err := serveIngest(ctx, c.IngestAddr, svc.probes, log)
		if err != nil {
			return err
		}
		defer stopIngest()
	}
	if svc.metrics != nil && c.MetricsAddr != "" {
		stopMetrics, err := serveMetrics(ctx, c.MetricsAddr, svc.metrics, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (another process may hold it; choose one with --addr)", c.Addr, err)
	}
	attrs := []any{"version", version, "role", c.Role, "addr", ln.Addr().String(), "database", st.Where(), "delivery", svc.engine != nil,
		// On PostgreSQL: the API hands new messages to this process's
		// workers or to worker processes, and workers take them.
		"send_handoff", c.SendHandoff && !c.isSQLite()}
	if c.Role == roleWorker {
		attrs = append(attrs, "api", "off: /healthz and /readyz only")
	} else {
		attrs = append(attrs, "docs", "http://"+displayAddr(ln.Addr())+"/docs")
		if c.Console {
			attrs = append(attrs, "console", "http://"+displayAddr(ln.Addr())+"/console/")
		}
	}
	log.Info("hookd is serving", attrs...)
	if ready != nil {
		ready <- ln.Addr().String()
	}

	if startRiver != nil && svc.engine != nil {
		stopRiver, err := startRiver(ctx, st, svc.engine, c.Workers, log)
		if err != nil {
			return err
		}
		defer stopRiver()
	}
	errc := make(chan error, 1)
	go func() { errc <- httpServer.Serve(ln) }()
	engineCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	engineDone := make(chan struct{})
	go func() {
		defer close(engineDone)
		switch {
		case svc.engine != nil:
			_ = svc.engine.Run(engineCtx)
		case c.SendHandoff:
			// An api process hands its sends to the worker processes
			// that announce themselves (PostgreSQL).
			st.HandToWorkers(engineCtx)
		}
	}()
	// Every role may run the retention clean-up; a lease in the database
	// lets one process at a time do it.
	cleanupDone := make(chan struct{})
	go func() {
		defer close(cleanupDone)
		cleanup.New(st, c.cleanupConfig(), log.With("component", "cleanup")).Run(engineCtx)
	}()
	// However serve ends (a listener error included), the engine drains and
	// the clean-up stops before the store closes under them.
	defer func() {
		stopEngine()
		<-engineDone
		<-cleanupDone
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	log.Info("shutting down", "drain_delay", c.DrainDelay.String(), "timeout", c.ShutdownTimeout.String())
	svc.probes.SetDraining()
	if c.DrainDelay > 0 {
		select {
		case err := <-errc:
			return fmt.Errorf("serve: %w", err)
		case <-time.After(c.DrainDelay):
		}
	}
	// Stop taking work on both sides at once: the API finishes its requests,
	// the engine its attempts in flight (recording them) and releases the
	// rest for other processes. Both are bounded by the shutdown timeout.
	stopEngine()
	sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer cancel()
	shutdownErr := httpServer.Shutdown(sctx)
	if shutdownErr != nil {
		_ = httpServer.Close()
	}
	<-engineDone
	<-cleanupDone
	if shutdownErr != nil {
		return fmt.Errorf("graceful shutdown did not finish within %s: %w", c.ShutdownTimeout, shutdownErr)
	}
	log.Info("stopped")
	return nil
}

func displayAddr(a net.Addr) string { return displayAddrString(a.String()) }

// displayAddrString turns a listen address into one a browser can open.
func displayAddrString(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// bootstrap creates project "default" and one API key on an empty database
// and prints the key once, on stdout, outside the log stream.
func bootstrap(ctx context.Context, st *store.Store, stdout io.Writer, log *slog.Logger, baseURL string, console bool) error {
	p := store.Project{ID: ids.NewUUID(), Name: "default", CreatedAt: store.Now()}
	secret, k := handlers.NewAPIKey(p.ID, "live", "bootstrap")
	created, err := st.Bootstrap(ctx, p, k)
	if err != nil {
		return err
	}
	if !created {
		return nil
	}
	log.Info("created project default with a first API key", "project_id", p.ID, "key_id", k.ID, "key_prefix", k.Prefix)
	line := strings.Repeat("=", 72)
	consoleLine := ""
	if console {
		consoleLine = fmt.Sprintf("  Or sign in with it at %s/console/\n", baseURL)
	}
	fmt.Fprintf(stdout, "\n%s\n  hookd created project \"default\" and its first API key.\n  It is shown only this once; keep it somewhere safe:\n\n    %s\n\n  Try it:  curl -H 'Authorization: Bearer %s' %s/v1/endpoints\n%s%s\n\n",
		line, secret, secret, baseURL, consoleLine, line)
	return nil
}

// serveDebug serves net/http/pprof on addr until ctx ends.
func serveDebug(ctx context.Context, addr string, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("--debug-addr (HOOKD_DEBUG_ADDR): %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	go func() { <-ctx.Done(); _ = srv.Close() }()
	log.Warn("serving pprof profiles", "addr", ln.Addr().String())
	return nil
}

// serveMetrics serves the metrics at /metrics on a listener of their own
// until the returned function is called (after the API has shut down, so
// the last scrapes still see the drain).
// serveIngest serves the ingest route (and the probes) of srv on addr
// until stop is called.
func serveIngest(ctx context.Context, addr string, srv *handlers.Server, log *slog.Logger) (stop func(), err error) {
	router, err := handlers.NewIngestRouter(srv)
	if err != nil {
		return nil, err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--ingest-addr (HOOKD_INGEST_ADDR): %w", err)
	}
	hs := &http.Server{Handler: router, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second, WriteTimeout: 60 * time.Second,
		IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 * 1024, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	done := make(chan struct{})
	go func() { defer close(done); _ = hs.Serve(ln) }()
	log.Info("serving ingest", "addr", ln.Addr().String(), "path", handlers.IngestPathPrefix+"{id}/{token}")
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if hs.Shutdown(sctx) != nil {
			_ = hs.Close()
		}
		<-done
	}, nil
}

func serveMetrics(ctx context.Context, addr string, m *metrics.Metrics, log *slog.Logger) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.Handle("GET "+metrics.Path, m.Handler())
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr (HOOKD_METRICS_ADDR): %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	log.Info("serving metrics", "addr", ln.Addr().String(), "path", metrics.Path)
	return func() { _ = srv.Close(); <-done }, nil
}
