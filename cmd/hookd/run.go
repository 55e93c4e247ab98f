package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/hookd/hookd/delivery"
	"github.com/hookd/hookd/handlers"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/metrics"
	"github.com/hookd/hookd/netguard"
	"github.com/hookd/hookd/secrets"
	"github.com/hookd/hookd/store"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// errUsage marks errors caused by how hookd was called (exit status 2).
var errUsage = errors.New("usage")

func exitCode(err error) int {
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

const help = `hookd — self-hosted webhook delivery

usage: hookd <command> [flags]

commands:
  serve                          run the API server (migrates the database first)
  migrate                        apply database migrations and exit
  project create NAME            create a project
  project list                   list projects
  apikey create --project NAME [--mode live|test] [--label L]
                                 create an API key (printed once)
  masterkey generate [--id ID]   print a new master key for --master-key
  listen [--addr A] [--secrets whsec_…] [--status N]
                                 a local receiver that prints deliveries and checks signatures
  version                        print the version
  help                           show this text

"hookd <command> --help" lists a command's flags and their HOOKD_… environment variables.
`

// run is the whole program: main only supplies the process's arguments,
// environment, output streams and a context cancelled by SIGINT/SIGTERM.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, help)
		return fmt.Errorf("%w: no command given", errUsage)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, rest, getenv, stdout, stderr, nil)
	case "migrate":
		return migrate(ctx, rest, getenv, stdout, stderr)
	case "project":
		return project(ctx, rest, getenv, stdout, stderr)
	case "apikey":
		return apikey(ctx, rest, getenv, stdout, stderr)
	case "masterkey":
		return masterkey(rest, stdout, stderr)
	case "listen":
		return listen(ctx, rest, getenv, stdout, stderr, nil)
	case "version", "--version":
		fmt.Fprintln(stdout, "hookd", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, help)
		return nil
	}
	fmt.Fprint(stderr, help)
	return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// commandFlags parses a command's flags (and, except for noEnv, their
// environment variables). ok is false when the command should stop: help
// was asked for and printed to stdout (err nil), or the flags are wrong
// (err says how, marked errUsage).
func commandFlags(fs *flag.FlagSet, args []string, getenv func(string) string, stdout io.Writer, noEnv ...string) (ok bool, err error) {
	if err := parseFlags(fs, args, getenv, noEnv...); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
			return false, nil
		}
		return false, fmt.Errorf("%w: %w", errUsage, err)
	}
	return true, nil
}

// parse is commandFlags followed by validating the config.
func parse(fs *flag.FlagSet, c *Config, args []string, getenv func(string) string, stdout io.Writer, serving bool, noEnv ...string) (ok bool, err error) {
	if ok, err := commandFlags(fs, args, getenv, stdout, noEnv...); !ok {
		return false, err
	}
	if err := c.validate(serving); err != nil {
		return false, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return true, nil
}

// openStore opens and migrates the database.
func openStore(ctx context.Context, c *Config, log *slog.Logger) (*store.Store, error) {
	st, err := store.Open(ctx, c.storeOptions())
	if err != nil {
		return nil, err
	}
	applied, err := st.Migrate(ctx)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	if len(applied) > 0 {
		log.Info("applied database migrations", "versions", applied, "database", st.Where())
	}
	return st, nil
}

// serve runs the API until ctx is cancelled, then shuts down gracefully.
// ready, if not nil, receives the listening address (tests use it).
func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, ready chan<- string) error {
	var c Config
	fs := newFlagSet("serve", stderr)
	serveFlags(fs, &c)
	fs.Usage = usage(fs, "hookd serve [flags]")
	if ok, err := parse(fs, &c, args, getenv, stdout, true); !ok {
		return err
	}
	log := newLogger(&c, stderr)

	st, err := openStore(ctx, &c, log)
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
	if err := bootstrap(ctx, st, stdout, log, "http://"+displayAddrString(c.Addr)); err != nil {
		return err
	}

	policy := &netguard.Policy{AllowHTTP: c.DevAllowHTTP, AllowCIDRs: c.allowCIDRs}
	if policy.Development() {
		log.Warn("DEVELOPMENT URL ALLOW-LIST IS ON: endpoints may use these otherwise blocked destinations; never run production like this",
			"allow_http", c.DevAllowHTTP, "allow_cidrs", c.DevAllowCIDRs)
	}
	srv, err := handlers.New(st, kr, policy, log)
	if err != nil {
		return err
	}
	dcfg, err := c.deliveryConfig()
	if err != nil {
		return err
	}
	sender, err := delivery.NewSender(delivery.SenderOptions{Policy: policy, ExtraCAFile: c.CAFile, UserAgent: dcfg.UserAgent})
	if err != nil {
		return fmt.Errorf("--ca-file (HOOKD_CA_FILE): %w", err)
	}
	if c.MetricsAddr != "off" {
		m, err := metrics.New(metrics.Options{Stats: st, EndpointLimit: c.MetricsEndpointLimit, Logger: log})
		if err != nil {
			return err
		}
		srv.Metrics, srv.ServeMetrics, dcfg.Observer = m, c.MetricsAddr == "", m
	}
	engine, err := delivery.New(st, kr, sender, dcfg, log)
	if err != nil {
		return err
	}
	router, err := handlers.NewRouter(srv)
	if err != nil {
		return err
	}
	httpServer := &http.Server{
		Handler:           router,
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
	if srv.Metrics != nil && !srv.ServeMetrics {
		stopMetrics, err := serveMetrics(ctx, c.MetricsAddr, srv.Metrics, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (another process may hold it; choose one with --addr)", c.Addr, err)
	}
	log.Info("hookd is serving", "version", version, "addr", ln.Addr().String(), "database", st.Where(),
		"docs", "http://"+displayAddr(ln.Addr())+"/docs")
	if ready != nil {
		ready <- ln.Addr().String()
	}

	errc := make(chan error, 1)
	go func() { errc <- httpServer.Serve(ln) }()
	engineCtx, stopEngine := context.WithCancel(context.WithoutCancel(ctx))
	defer stopEngine()
	engineDone := make(chan struct{})
	go func() {
		defer close(engineDone)
		_ = engine.Run(engineCtx)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	log.Info("shutting down", "drain_delay", c.DrainDelay.String(), "timeout", c.ShutdownTimeout.String())
	srv.SetDraining()
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
func bootstrap(ctx context.Context, st *store.Store, stdout io.Writer, log *slog.Logger, baseURL string) error {
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
	fmt.Fprintf(stdout, "\n%s\n  hookd created project \"default\" and its first API key.\n  It is shown only this once; keep it somewhere safe:\n\n    %s\n\n  Try it:  curl -H 'Authorization: Bearer %s' %s/v1/endpoints\n%s\n\n",
		line, secret, secret, baseURL, line)
	return nil
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c Config
	fs := newFlagSet("migrate", stderr)
	dbFlags(fs, &c)
	fs.Usage = usage(fs, "hookd migrate [flags]")
	if ok, err := parse(fs, &c, args, getenv, stdout, false); !ok {
		return err
	}
	st, err := store.Open(ctx, c.storeOptions())
	if err != nil {
		return err
	}
	defer st.Close()
	applied, err := st.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintf(stdout, "%s is up to date\n", st.Where())
		return nil
	}
	fmt.Fprintf(stdout, "applied migrations %v to %s\n", applied, st.Where())
	return nil
}

func project(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "create" && args[0] != "list") {
		return fmt.Errorf("%w: hookd project create NAME | hookd project list", errUsage)
	}
	var c Config
	fs := newFlagSet("project "+args[0], stderr)
	dbFlags(fs, &c)
	fs.Usage = usage(fs, "hookd project create NAME [flags] | hookd project list [flags]")
	rest, name := args[1:], ""
	if args[0] == "create" {
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return fmt.Errorf("%w: hookd project create NAME [flags] (the name comes first)", errUsage)
		}
		name, rest = rest[0], rest[1:]
	}
	if ok, err := parse(fs, &c, rest, getenv, stdout, false); !ok {
		return err
	}
	log := newLogger(&c, stderr)
	st, err := openStore(ctx, &c, log)
	if err != nil {
		return err
	}
	defer st.Close()
	if args[0] == "list" {
		ps, err := st.ListProjects(ctx)
		if err != nil {
			return err
		}
		for _, p := range ps {
			fmt.Fprintf(stdout, "%s\t%s\t%s\n", p.ID, p.Name, p.CreatedAt.UTC().Format(time.RFC3339))
		}
		return nil
	}
	if err := validProjectName(name); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	p := store.Project{ID: ids.NewUUID(), Name: name, CreatedAt: store.Now()}
	if err := st.CreateProject(ctx, p); err != nil {
		if errors.Is(err, store.ErrDuplicateName) {
			return fmt.Errorf("a project named %q exists already", name)
		}
		return err
	}
	fmt.Fprintf(stdout, "created project %q (%s)\ncreate its first API key with: hookd apikey create --project %s\n", name, p.ID, name)
	return nil
}

func validProjectName(name string) error {
	if strings.TrimSpace(name) == "" || len(name) > 255 {
		return errors.New("a project name is 1 to 255 characters, not only spaces")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return errors.New("a project name may not hold control characters")
		}
	}
	return nil
}

func apikey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return fmt.Errorf("%w: hookd apikey create --project NAME [--mode live|test] [--label L]", errUsage)
	}
	var c Config
	var projectName, mode, label string
	fs := newFlagSet("apikey create", stderr)
	dbFlags(fs, &c)
	fs.StringVar(&projectName, "project", "", "name of the project the key belongs to (required)")
	fs.StringVar(&mode, "mode", "live", "live or test: the key's prefix, hk_live_ or hk_test_")
	fs.StringVar(&label, "label", "", "a label shown in the key list (at most 100 characters)")
	fs.Usage = usage(fs, "hookd apikey create --project NAME [--mode live|test] [--label L]")
	if ok, err := parse(fs, &c, args[1:], getenv, stdout, false, "project", "mode", "label"); !ok {
		return err
	}
	switch {
	case projectName == "":
		return fmt.Errorf("%w: --project NAME is required", errUsage)
	case mode != "live" && mode != "test":
		return fmt.Errorf("%w: --mode must be live or test, got %q", errUsage, mode)
	case len(label) > 100:
		return fmt.Errorf("%w: --label is at most 100 characters", errUsage)
	case strings.ContainsFunc(label, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("%w: --label may not hold control characters", errUsage)
	}
	log := newLogger(&c, stderr)
	st, err := openStore(ctx, &c, log)
	if err != nil {
		return err
	}
	defer st.Close()
	p, err := st.ProjectByName(ctx, projectName)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no project named %q (see hookd project list)", projectName)
	} else if err != nil {
		return err
	}
	secret, k := handlers.NewAPIKey(p.ID, mode, label)
	if err := st.CreateAPIKey(ctx, k); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "created API key %s for project %q; it is shown only this once:\n", k.ID, p.Name)
	fmt.Fprintln(stdout, secret)
	return nil
}

func masterkey(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "generate" {
		return fmt.Errorf("%w: hookd masterkey generate [--id ID]", errUsage)
	}
	fs := newFlagSet("masterkey generate", stderr)
	id := fs.String("id", "mk-"+time.Now().UTC().Format("20060102"), "the key's id (1-32 of A-Z a-z 0-9 _ . -), stored beside every secret it seals")
	fs.Usage = usage(fs, "hookd masterkey generate [--id ID]")
	if ok, err := commandFlags(fs, args[1:], func(string) string { return "" }, stdout); !ok {
		return err
	}
	if err := secrets.ValidKeyID(*id); err != nil {
		return fmt.Errorf("%w: --id: %w", errUsage, err)
	}
	k := secrets.GenerateMasterKey(*id)
	fmt.Fprintln(stdout, k.String())
	return nil
}

// serveMetrics serves the metrics at /metrics on a listener of their own
// until the returned function is called (after the API has shut down, so
// the last scrapes still see the drain).
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
