package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hookd/hookd/cleanup"
	"github.com/hookd/hookd/delivery"
	"github.com/hookd/hookd/handlers"
	"github.com/hookd/hookd/metrics"
	"github.com/hookd/hookd/netguard"
	"github.com/hookd/hookd/secrets"
	"github.com/hookd/hookd/store"
)

// Config is everything `hookd serve` can be told. Each field is a flag with
// an HOOKD_… environment equivalent (flag name upper-cased, '-' → '_'); a
// flag on the command line wins over the environment.
type Config struct {
	// Role is what `hookd serve` runs: "all" (the API and delivery, the
	// default), "api" (the API only) or "worker" (delivery only, with
	// /healthz and /readyz on Addr).
	Role string
	// Addr is the listen address of the API (of the probes in the worker
	// role), host:port. Default ":8080".
	Addr string
	// DatabaseURL is "postgres://…" or "sqlite:PATH". Empty: SQLite at
	// DataDir/hookd.db.
	DatabaseURL string
	// DataDir holds the default SQLite file and the generated master key.
	// Default "./data".
	DataDir string
	// DBMaxConns caps PostgreSQL connections of this process (1–1000).
	// Default 25.
	DBMaxConns int
	// MasterKey seals signing secrets: "ID:BASE64(32 bytes)". Empty: the
	// key file DataDir/master.key, generated on first start with SQLite.
	MasterKey string
	// MasterKeysOld lists retired master keys (comma-separated, same form)
	// that can still open secrets sealed before a rotation.
	MasterKeysOld string
	// DevAllowHTTP allows http:// endpoint URLs. Development only.
	DevAllowHTTP bool
	// DevAllowCIDRs allows endpoint addresses in these otherwise blocked
	// prefixes, e.g. "127.0.0.1/32". Development only.
	DevAllowCIDRs string
	// ShutdownTimeout bounds the graceful shutdown after SIGINT/SIGTERM
	// (1s–10m). Default 15s.
	ShutdownTimeout time.Duration
	// DrainDelay is how long, after SIGINT/SIGTERM, /readyz answers 503
	// while requests are still served, so a load balancer can stop sending
	// new ones before the listener closes (0–1m). Default 0.
	DrainDelay time.Duration
	// Workers is how many delivery attempts this process runs at once.
	Workers int
	// EndpointConcurrency caps attempts in flight to one endpoint per
	// process.
	EndpointConcurrency int
	// SendHandoff gives a new message straight to free workers at its
	// commit (PostgreSQL): this process's (role all), or a worker
	// process's (role api hands over, role worker takes); off, every
	// message is claimed from the queue. Default on.
	SendHandoff bool
	// AttemptTimeout bounds one delivery attempt.
	AttemptTimeout time.Duration
	// RescueAfter is how long a message stays with a worker before another
	// process may take it over (a crashed worker's messages come back after
	// this); it must exceed AttemptTimeout.
	RescueAfter time.Duration
	// PollInterval is how often workers look for retries that fell due.
	PollInterval time.Duration
	// RetrySlow, RetryFast are comma-separated delays of the slow and fast
	// (429) retry tracks; MaxAttempts is the attempt budget;
	// RetryAfterCap bounds a receiver's Retry-After.
	RetrySlow, RetryFast string
	MaxAttempts          int
	RetryAfterCap        time.Duration
	// BreakerFailures and BreakerDuration disable an endpoint that failed
	// this many attempts in a row, or every attempt for this long (0 turns
	// a rule off); from BreakerProbeAfter failures in a row its attempts
	// are spaced, one probe at a time, waiting up to BreakerBackoffMax.
	BreakerFailures   int
	BreakerDuration   time.Duration
	BreakerProbeAfter int
	BreakerBackoffMax time.Duration
	// RetentionPayload is how long a finished message keeps its payload
	// (projects may set their own); RetentionMetadata how long the message
	// and its attempts are kept at all; CleanupInterval how often the
	// clean-up runs (one process at a time).
	RetentionPayload  time.Duration
	RetentionMetadata time.Duration
	CleanupInterval   time.Duration
	// CAFile is a PEM bundle trusted for receivers in addition to the
	// system roots.
	CAFile string
	// DebugAddr, if set, serves Go's pprof profiles there (keep it on
	// localhost).
	DebugAddr string
	// LogFormat is "auto" (text on a terminal, JSON otherwise), "json" or
	// "text".
	LogFormat string
	// LogLevel is "debug", "info", "warn" or "error". Default "info".
	LogLevel string
	// ExportTTL is how long a CSV export can be downloaded after it is
	// created (1m–720h). Default 24h.
	ExportTTL time.Duration
	// PublicURL is this hookd's external base URL, "https://host[:port][/path]",
	// used to build export download links. Empty: the scheme and Host of
	// the request asking for the link.
	PublicURL string
	// Console serves the web console at /console/ on Addr.
	Console bool
	// IngestAddr, if set, is a listener of its own for inbound webhooks'
	// ingest URLs (and the probes), so operators can expose it publicly
	// and keep the API private. The API listener serves ingest too.
	IngestAddr string
	// IngestURL is the external base of ingest URLs shown to users
	// (default: PublicURL, else the request's scheme and Host).
	IngestURL string
	// IngestLimitPerEndpoint and IngestLimitPerSource cap ingest requests
	// per minute (per process) per inbound endpoint and per address and
	// endpoint; 0 is unlimited.
	IngestLimitPerEndpoint int
	IngestLimitPerSource   int
	// RateLimitDefault is the management API limit, in requests per minute
	// per project, of projects without their own (1–1,000,000), counted
	// per process. Default 1000.
	RateLimitDefault int
	// AuthFailureLimit is how many failed authentications per minute one
	// client address may make before its requests answer 429 RATE_LIMITED
	// (0–1,000,000; 0 turns the check off), counted per process. Default
	// 20.
	AuthFailureLimit int
	// TrustedProxies lists the addresses (CIDRs, comma-separated) of
	// reverse proxies whose X-Forwarded-For header names the client. Empty:
	// the client is the TCP peer and the header is ignored.
	TrustedProxies string
	// MetricsAddr says where Prometheus metrics are served: "" on the API
	// listener at /metrics (the default), HOST:PORT on a listener of their
	// own (recommended in production, so they are not public), "off" not
	// at all (no counting either).
	MetricsAddr string
	// MetricsEndpointLimit is how many endpoints, the busiest by due
	// messages, get their own queue series (0–1000; 0: none). Default 20.
	MetricsEndpointLimit int
	// OTLPEndpoint, if set, turns tracing on and exports spans there over
	// OTLP/HTTP, e.g. http://collector:4318/v1/traces (the exporter's
	// OTEL_EXPORTER_OTLP_* variables, such as headers, still apply).
	OTLPEndpoint string
	// TraceSampleRatio is the share of requests traced (0–1), drawn by
	// hookd even for a caller's sampled traceparent. Default 1.
	TraceSampleRatio float64
	// TraceHeader adds a traceparent header to deliveries (tracing on).
	TraceHeader bool

	allowCIDRs     []netip.Prefix
	trustedProxies []netip.Prefix
}

// dbFlags are the flags every command that opens the database takes.
func dbFlags(fs *flag.FlagSet, c *Config) {
	fs.StringVar(&c.DatabaseURL, "database-url", "", `database: "postgres://user@host:5432/db" or "sqlite:PATH"; empty uses SQLite in --data-dir`)
	fs.StringVar(&c.DataDir, "data-dir", "data", "directory of the default SQLite database and generated master key")
	fs.IntVar(&c.DBMaxConns, "db-max-conns", store.DefaultMaxConns, "maximum PostgreSQL connections of this process (1-1000)")
	fs.StringVar(&c.LogFormat, "log-format", "auto", "log format: auto (text on a terminal, JSON otherwise), json or text")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
}

func serveFlags(fs *flag.FlagSet, c *Config) {
	dbFlags(fs, c)
	fs.StringVar(&c.Role, "role", roleAll, "what this process runs: all (API and delivery), api (the API only) or worker (delivery only; --addr serves just /healthz and /readyz)")
	fs.StringVar(&c.Addr, "addr", ":8080", "listen address of the API (host:port); in the worker role, of /healthz and /readyz")
	fs.StringVar(&c.MasterKey, "master-key", "", `master key sealing signing secrets, "ID:BASE64" of 32 bytes; empty uses DATA_DIR/master.key (generated on first start with SQLite)`)
	fs.StringVar(&c.MasterKeysOld, "master-keys-old", "", "retired master keys, comma-separated, still used to open older secrets")
	fs.BoolVar(&c.DevAllowHTTP, "dev-allow-http", false, "DEVELOPMENT ONLY: allow http:// endpoint URLs")
	fs.StringVar(&c.DevAllowCIDRs, "dev-allow-cidrs", "", "DEVELOPMENT ONLY: comma-separated CIDRs endpoints may use although blocked, e.g. 127.0.0.1/32")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long a graceful shutdown may take (1s-10m); attempts in flight get this long to finish")
	fs.IntVar(&c.Workers, "workers", 64, "delivery attempts this process runs at once (1-10000)")
	fs.IntVar(&c.EndpointConcurrency, "endpoint-concurrency", 8, "attempts in flight to one endpoint per process (1-1000)")
	fs.BoolVar(&c.SendHandoff, "send-handoff", true, "give new messages straight to free workers at their commit (PostgreSQL): this process's (role all), or a worker process's (role api; a worker with it true takes them); false: workers claim every message from the queue")
	fs.DurationVar(&c.AttemptTimeout, "attempt-timeout", 30*time.Second, "bound of one delivery attempt")
	fs.DurationVar(&c.RescueAfter, "rescue-after", 60*time.Second, "a message held this long by a worker that stopped answering (crash) is delivered by another; must exceed --attempt-timeout")
	fs.DurationVar(&c.PollInterval, "poll-interval", 500*time.Millisecond, "how often workers look for retries that fell due (new messages wake them at once)")
	fs.StringVar(&c.RetrySlow, "retry-slow", "30m,2h,6h,12h,24h,48h,72h", "delays before retries of ordinary failures (5xx, 408, network, timeout); the last repeats")
	fs.StringVar(&c.RetryFast, "retry-fast", "30s,60s,120s,240s,300s", "delays before retries after consecutive 429 answers; then the slow track")
	fs.IntVar(&c.MaxAttempts, "max-attempts", 8, "attempts per message before it goes to the DLQ (1-100)")
	fs.DurationVar(&c.RetryAfterCap, "retry-after-cap", 24*time.Hour, "upper bound of a receiver's Retry-After")
	breaker := delivery.DefaultBreaker()
	fs.IntVar(&c.BreakerFailures, "breaker-failures", breaker.DisableAfterFailures, "disable an endpoint after this many failed attempts in a row (0: never on a count)")
	fs.DurationVar(&c.BreakerDuration, "breaker-duration", breaker.DisableAfter, "disable an endpoint that has failed every attempt for this long (0: never on time)")
	fs.IntVar(&c.BreakerProbeAfter, "breaker-probe-after", breaker.ProbeAfterFailures, "from this many failures in a row, attempts to the endpoint are spaced out, one probe at a time (0: never)")
	fs.DurationVar(&c.RetentionPayload, "retention-payload", cleanup.DefaultPayloadRetention, "how long a finished message keeps its payload, unless its project or the message says otherwise (1h-2160h)")
	fs.DurationVar(&c.RetentionMetadata, "retention-metadata", cleanup.DefaultMetadataRetention, "how long a finished message and its attempts are kept at all (24h-87600h, at least --retention-payload)")
	fs.DurationVar(&c.CleanupInterval, "cleanup-interval", cleanup.DefaultInterval, "how often the retention clean-up runs (1s-1h; one process at a time does it)")
	fs.DurationVar(&c.BreakerBackoffMax, "breaker-backoff-max", breaker.ProbeBackoffMax, "longest wait between probes of a failing endpoint (waits start at 1s and double)")
	fs.StringVar(&c.DebugAddr, "debug-addr", "", "serve Go pprof profiles on this address, e.g. 127.0.0.1:6060 (off when empty; keep it private)")
	fs.StringVar(&c.CAFile, "ca-file", "", "PEM bundle of extra CAs trusted for https:// receivers (beside the system roots)")
	fs.DurationVar(&c.ExportTTL, "export-ttl", handlers.DefaultExportTTL, "how long a CSV export can be downloaded after it is created (1m-720h)")
	fs.StringVar(&c.PublicURL, "public-url", "", "external base URL of this hookd, e.g. https://hookd.example.com, for export download links (empty: the request's scheme and Host)")
	fs.IntVar(&c.RateLimitDefault, "rate-limit-default", handlers.DefaultRateLimitPerMinute, "management API requests per minute per project, for projects without their own limit (1-1000000; counted per process)")
	fs.IntVar(&c.AuthFailureLimit, "auth-failure-limit", handlers.DefaultAuthFailureLimit, "failed authentications per minute from one client address before it gets 429 RATE_LIMITED (0 turns it off; counted per process)")
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", "", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For names the client (empty: the TCP peer is the client)")
	fs.StringVar(&c.IngestAddr, "ingest-addr", "", "a listener of its own (host:port) for inbound webhooks' ingest URLs, to expose to providers while the API stays private (the API listener serves ingest too)")
	fs.StringVar(&c.IngestURL, "ingest-url", "", "external base URL of ingest URLs, e.g. https://hooks.example.com (empty: --public-url, else the request's scheme and Host)")
	fs.IntVar(&c.IngestLimitPerEndpoint, "ingest-limit-per-endpoint", handlers.DefaultIngestLimitPerEndpoint, "ingest requests per minute one inbound endpoint accepts, per process (0: unlimited)")
	fs.IntVar(&c.IngestLimitPerSource, "ingest-limit-per-source", handlers.DefaultIngestLimitPerSource, "ingest requests per minute one address may make to one inbound endpoint, per process (0: unlimited)")
	fs.BoolVar(&c.Console, "console", true, "serve the web console at /console on --addr (it works through the API with the key its user signs in with); false turns it off")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "", `where Prometheus metrics are served: empty for /metrics on --addr, HOST:PORT for a listener of their own (recommended in production), or "off"`)
	fs.IntVar(&c.MetricsEndpointLimit, "metrics-endpoint-limit", metrics.DefaultEndpointLimit, "how many of the busiest endpoints get their own queue-depth series (0-1000; 0 for none)")
	fs.StringVar(&c.OTLPEndpoint, "otlp-endpoint", "", "send OpenTelemetry traces over OTLP/HTTP to this URL, e.g. http://collector:4318/v1/traces (empty: no tracing)")
	fs.Float64Var(&c.TraceSampleRatio, "trace-sample-ratio", 1, "share of requests traced, 0-1, drawn by hookd even when the caller sends a sampled traceparent (a message's attempts follow its request)")
	fs.BoolVar(&c.TraceHeader, "trace-header", false, "with tracing on, send each attempt's W3C traceparent header to the receiver")
	fs.DurationVar(&c.DrainDelay, "drain-delay", 0, "after a stop signal, keep serving with /readyz at 503 this long before closing the listener (0-1m); set it to your load balancer's health-check interval")
}

// envVars says which environment variable sets each flag of a command, so
// that a command's parsing and its --help always agree. A flag's variable
// is Prefix ("HOOKD_" when empty) followed by the flag's name upper-cased
// with '-' as '_'; the flags listed in None have no variable (a command's
// own arguments, which a stray variable must not change).
type envVars struct {
	Prefix string
	None   []string
}

// name is the variable of flagName, or "" if it has none.
func (e envVars) name(flagName string) string {
	if slices.Contains(e.None, flagName) {
		return ""
	}
	prefix := e.Prefix
	if prefix == "" {
		prefix = "HOOKD_"
	}
	return prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseFlags parses args, then fills every flag not given on the command
// line from its environment variable (env says which; flags without one are
// left alone). Errors name the flag and its variable; the flag package's
// own output is silenced.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string, env envVars) error {
	out := fs.Output()
	fs.SetOutput(io.Discard)
	defer fs.SetOutput(out)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w (see --help)", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		name := env.name(f.Name)
		if given[f.Name] || name == "" {
			return
		}
		if v := getenv(name); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q (the --%s flag): %w", name, v, f.Name, err))
			}
		}
	})
	return errors.Join(errs...)
}

// usage prints a command's synopsis and flags to the flag set's output,
// each flag with the environment variable env gives it, if any.
func usage(fs *flag.FlagSet, synopsis string, env envVars) func() {
	return func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: %s\n", synopsis)
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n == 0 {
			return
		}
		fmt.Fprintln(w, "\nflags ([VARIABLE]: the environment variable read when the flag is not given):")
		fs.VisitAll(func(f *flag.Flag) {
			def, variable := "", ""
			if f.DefValue != "" && f.DefValue != "false" {
				def = fmt.Sprintf(" (default %s)", f.DefValue)
			}
			if v := env.name(f.Name); v != "" {
				variable = "  [" + v + "]"
			}
			fmt.Fprintf(w, "  --%s%s%s\n      %s\n", f.Name, variable, def, f.Usage)
		})
	}
}

// validate checks c and says what to fix.
func (c *Config) validate(serving bool) error {
	var errs []error
	if c.DBMaxConns < 1 || c.DBMaxConns > 1000 {
		errs = append(errs, fmt.Errorf("--db-max-conns (HOOKD_DB_MAX_CONNS) must be 1 to 1000, got %d", c.DBMaxConns))
	}
	switch c.LogFormat {
	case "auto", "json", "text":
	default:
		errs = append(errs, fmt.Errorf("--log-format (HOOKD_LOG_FORMAT) must be auto, json or text, got %q", c.LogFormat))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if u := c.DatabaseURL; u != "" && !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") && !strings.HasPrefix(u, "sqlite:") {
		errs = append(errs, errors.New(`--database-url (HOOKD_DATABASE_URL) must start with "postgres://", "postgresql://" or "sqlite:"`))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir (HOOKD_DATA_DIR) must not be empty"))
	}
	if serving {
		switch c.Role {
		case roleAll, roleAPI, roleWorker:
		default:
			errs = append(errs, fmt.Errorf("--role (HOOKD_ROLE) must be all, api or worker, got %q", c.Role))
		}
		if c.Role != roleAll && c.isSQLite() {
			errs = append(errs, fmt.Errorf("--role (HOOKD_ROLE) %s needs PostgreSQL (--database-url), where api and worker processes share one database; with SQLite run one process with --role all", c.Role))
		}
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			errs = append(errs, fmt.Errorf("--addr (HOOKD_ADDR) must be host:port such as :8080 or 127.0.0.1:8080, got %q", c.Addr))
		}
		if c.ShutdownTimeout < time.Second || c.ShutdownTimeout > 10*time.Minute {
			errs = append(errs, fmt.Errorf("--shutdown-timeout (HOOKD_SHUTDOWN_TIMEOUT) must be 1s to 10m, got %s", c.ShutdownTimeout))
		}
		if c.DrainDelay < 0 || c.DrainDelay > time.Minute {
			errs = append(errs, fmt.Errorf("--drain-delay (HOOKD_DRAIN_DELAY) must be 0 to 1m, got %s", c.DrainDelay))
		}
		if c.Workers < 1 || c.Workers > 10000 {
			errs = append(errs, fmt.Errorf("--workers (HOOKD_WORKERS) must be 1 to 10000, got %d", c.Workers))
		}
		if c.EndpointConcurrency < 1 || c.EndpointConcurrency > 1000 {
			errs = append(errs, fmt.Errorf("--endpoint-concurrency (HOOKD_ENDPOINT_CONCURRENCY) must be 1 to 1000, got %d", c.EndpointConcurrency))
		}
		if _, err := c.deliveryConfig(); err != nil {
			errs = append(errs, err)
		}
		// The retention clean-up runs in every role.
		if c.RetentionPayload < time.Hour || c.RetentionPayload > 2160*time.Hour {
			errs = append(errs, errors.New("--retention-payload (HOOKD_RETENTION_PAYLOAD) must be 1h to 2160h"))
		}
		if c.RetentionMetadata < 24*time.Hour || c.RetentionMetadata > 87600*time.Hour || c.RetentionMetadata < c.RetentionPayload {
			errs = append(errs, errors.New("--retention-metadata (HOOKD_RETENTION_METADATA) must be 24h to 87600h and at least --retention-payload"))
		}
		if c.CleanupInterval < time.Second || c.CleanupInterval > time.Hour {
			errs = append(errs, errors.New("--cleanup-interval (HOOKD_CLEANUP_INTERVAL) must be 1s to 1h"))
		}
		if c.MetricsAddr != "" && c.MetricsAddr != "off" {
			if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
				errs = append(errs, fmt.Errorf(`--metrics-addr (HOOKD_METRICS_ADDR) must be empty, "off" or host:port such as 127.0.0.1:9090, got %q`, c.MetricsAddr))
			}
		}
		if c.MetricsEndpointLimit < 0 || c.MetricsEndpointLimit > 1000 {
			errs = append(errs, fmt.Errorf("--metrics-endpoint-limit (HOOKD_METRICS_ENDPOINT_LIMIT) must be 0 to 1000, got %d", c.MetricsEndpointLimit))
		}
		if c.CAFile != "" {
			if _, err := os.Stat(c.CAFile); err != nil {
				errs = append(errs, fmt.Errorf("--ca-file (HOOKD_CA_FILE): %w", err))
			}
		}
		if c.ExportTTL < time.Minute || c.ExportTTL > 720*time.Hour {
			errs = append(errs, fmt.Errorf("--export-ttl (HOOKD_EXPORT_TTL) must be 1m to 720h, got %s", c.ExportTTL))
		}
		if err := checkOTLPEndpoint(c.OTLPEndpoint); err != nil {
			errs = append(errs, fmt.Errorf("--otlp-endpoint (HOOKD_OTLP_ENDPOINT): %w", err))
		}
		if c.TraceSampleRatio < 0 || c.TraceSampleRatio > 1 {
			errs = append(errs, fmt.Errorf("--trace-sample-ratio (HOOKD_TRACE_SAMPLE_RATIO) must be 0 to 1, got %v", c.TraceSampleRatio))
		}
		if c.TraceHeader && c.OTLPEndpoint == "" {
			errs = append(errs, errors.New("--trace-header (HOOKD_TRACE_HEADER) needs tracing on: set --otlp-endpoint"))
		}
		if err := checkPublicURL(c.PublicURL); err != nil {
			errs = append(errs, fmt.Errorf("--public-url (HOOKD_PUBLIC_URL): %w", err))
		}
		if err := checkPublicURL(c.IngestURL); err != nil {
			errs = append(errs, fmt.Errorf("--ingest-url (HOOKD_INGEST_URL): %w", err))
		}
		if c.IngestAddr != "" {
			if _, _, err := net.SplitHostPort(c.IngestAddr); err != nil {
				errs = append(errs, fmt.Errorf("--ingest-addr (HOOKD_INGEST_ADDR) must be host:port such as :8081, got %q", c.IngestAddr))
			}
		}
		if c.IngestLimitPerEndpoint < 0 || c.IngestLimitPerSource < 0 {
			errs = append(errs, errors.New("--ingest-limit-per-endpoint and --ingest-limit-per-source (HOOKD_INGEST_LIMIT_*) must be 0 (unlimited) or more"))
		}
		if c.RateLimitDefault < 1 || c.RateLimitDefault > store.MaxRateLimitPerMinute {
			errs = append(errs, fmt.Errorf("--rate-limit-default (HOOKD_RATE_LIMIT_DEFAULT) must be 1 to %d requests per minute, got %d", store.MaxRateLimitPerMinute, c.RateLimitDefault))
		}
		if c.AuthFailureLimit < 0 || c.AuthFailureLimit > store.MaxRateLimitPerMinute {
			errs = append(errs, fmt.Errorf("--auth-failure-limit (HOOKD_AUTH_FAILURE_LIMIT) must be 0 (off) to %d per minute, got %d", store.MaxRateLimitPerMinute, c.AuthFailureLimit))
		}
		// The same rules as the allow-list: a bare address is one host, and
		// a prefix wide enough to let almost anyone forge X-Forwarded-For is
		// refused.
		proxies, err := netguard.ParseCIDRs(c.TrustedProxies)
		if err != nil {
			errs = append(errs, fmt.Errorf("--trusted-proxies (HOOKD_TRUSTED_PROXIES): %w", err))
		}
		c.trustedProxies = proxies
		cidrs, err := netguard.ParseCIDRs(c.DevAllowCIDRs)
		if err != nil {
			errs = append(errs, fmt.Errorf("--dev-allow-cidrs (HOOKD_DEV_ALLOW_CIDRS): %w", err))
		}
		c.allowCIDRs = cidrs
		if c.MasterKey != "" {
			if _, err := secrets.ParseMasterKey(c.MasterKey); err != nil {
				errs = append(errs, fmt.Errorf("--master-key (HOOKD_MASTER_KEY): %w", err))
			}
		}
		if _, err := parseOldMasterKeys(c.MasterKeysOld); err != nil {
			errs = append(errs, fmt.Errorf("--master-keys-old (HOOKD_MASTER_KEYS_OLD): %w", err))
		}
	}
	return errors.Join(errs...)
}

// checkPublicURL accepts "" or an absolute http(s) URL with a host and no
// credentials, query or fragment.
func checkPublicURL(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("must be an absolute http:// or https:// URL with no credentials, query or fragment, such as https://hookd.example.com, got %q", raw)
	}
	return nil
}

// checkOTLPEndpoint accepts "" (tracing off) or an absolute http(s) URL.
func checkOTLPEndpoint(raw string) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" {
		return fmt.Errorf("must be an absolute http:// or https:// URL such as http://collector:4318/v1/traces, got %q", redactURL(raw))
	}
	return nil
}

// redactURL is raw without its password and query (which may hold a
// collector's credentials), for logs and errors.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(not a URL)"
	}
	u.RawQuery, u.Fragment = "", ""
	return u.Redacted()
}

// exportOptions is the export configuration of the API.
func (c *Config) exportOptions() handlers.ExportOptions {
	return handlers.ExportOptions{TTL: c.ExportTTL, PublicURL: strings.TrimSuffix(c.PublicURL, "/")}
}

// applyLimits sets the API rate limit settings on the server.
func (c *Config) applyLimits(srv *handlers.Server) {
	srv.RateLimitDefault = c.RateLimitDefault
	srv.AuthFailureLimit = c.AuthFailureLimit
	if c.AuthFailureLimit == 0 {
		srv.AuthFailureLimit = -1 // the flag's 0 is "off"; the field's 0 is "default"
	}
	srv.TrustedProxies = c.trustedProxies
	srv.IngestBaseURL = strings.TrimSuffix(cmp.Or(c.IngestURL, c.PublicURL), "/")
	srv.IngestLimitPerEndpoint, srv.IngestLimitPerSource = unlimitedIfZero(c.IngestLimitPerEndpoint), unlimitedIfZero(c.IngestLimitPerSource)
}

// unlimitedIfZero maps a flag's 0 ("unlimited") to the server field's -1
// (whose 0 is "default").
func unlimitedIfZero(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

func (c *Config) isSQLite() bool {
	return c.DatabaseURL == "" || strings.HasPrefix(c.DatabaseURL, "sqlite:")
}

func (c *Config) storeOptions() store.Options {
	return store.Options{DatabaseURL: c.DatabaseURL, DataDir: c.DataDir, MaxConns: c.DBMaxConns}
}

// parseOldMasterKeys reads a --master-keys-old list.
func parseOldMasterKeys(list string) ([]secrets.MasterKey, error) {
	var old []secrets.MasterKey
	for _, s := range splitList(list) {
		k, err := secrets.ParseMasterKey(s)
		if err != nil {
			return nil, err
		}
		old = append(old, k)
	}
	return old, nil
}

// missingMasterKeys lists the master key ids in inUse that kr lacks.
func missingMasterKeys(kr *secrets.Keyring, inUse []string) []string {
	var missing []string
	for _, id := range inUse {
		if !kr.Has(id) {
			missing = append(missing, id)
		}
	}
	return missing
}

// keyring builds the master keyring. With no --master-key it uses the key
// file in the data directory, creating it only for SQLite and only while the
// database holds no sealed secret (processes sharing a PostgreSQL database
// must share one explicit key). It refuses a keyring that cannot open every
// master key id in inUse, so a lost or changed key is noticed at start, not
// at the first delivery.
func (c *Config) keyring(log *slog.Logger, inUse []string) (*secrets.Keyring, error) {
	var active secrets.MasterKey
	if c.MasterKey != "" {
		k, err := secrets.ParseMasterKey(c.MasterKey)
		if err != nil {
			return nil, err
		}
		active = k
	} else {
		path := filepath.Join(c.DataDir, "master.key")
		k, created, err := secrets.LoadOrCreateKeyFile(path, c.isSQLite() && len(inUse) == 0)
		if err != nil {
			switch {
			case errors.Is(err, os.ErrNotExist) && len(inUse) > 0:
				return nil, fmt.Errorf("the master key file %s is missing, but the database holds signing secrets sealed by master key %s: restore the file or pass that key with --master-key", path, strings.Join(inUse, ", "))
			case errors.Is(err, os.ErrNotExist):
				return nil, fmt.Errorf("no master key: set --master-key (HOOKD_MASTER_KEY); every process on this PostgreSQL must use the same one (make one with `hookd masterkey generate`)")
			}
			return nil, err
		}
		if created {
			log.Warn("generated a new master key for signing secrets; back it up, losing it loses every signing secret", "path", path, "master_key_id", k.ID)
		} else {
			log.Info("using the master key file", "path", path, "master_key_id", k.ID)
		}
		active = k
	}
	old, err := parseOldMasterKeys(c.MasterKeysOld)
	if err != nil {
		return nil, err
	}
	kr, err := secrets.NewKeyring(active, old...)
	if err != nil {
		return nil, err
	}
	if missing := missingMasterKeys(kr, inUse); len(missing) > 0 {
		return nil, fmt.Errorf("signing secrets or endpoint headers in the database were sealed by master key %s, which this process does not have: pass it with --master-key or --master-keys-old", strings.Join(missing, ", "))
	}
	return kr, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level (HOOKD_LOG_LEVEL) must be debug, info, warn or error, got %q", s)
	}
	return l, nil
}

// newLogger writes structured logs to w: text on a terminal (auto), JSON
// otherwise.
func newLogger(c *Config, w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	format := c.LogFormat
	if format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// deliveryConfig turns the delivery flags into a delivery.Config; the error
// names the flag to fix.
func (c *Config) deliveryConfig() (delivery.Config, error) {
	slow, err := parseDurations(c.RetrySlow)
	if err != nil {
		return delivery.Config{}, fmt.Errorf("--retry-slow (HOOKD_RETRY_SLOW): %w", err)
	}
	fast, err := parseDurations(c.RetryFast)
	if err != nil {
		return delivery.Config{}, fmt.Errorf("--retry-fast (HOOKD_RETRY_FAST): %w", err)
	}
	dc := delivery.Config{
		Workers:             c.Workers,
		EndpointConcurrency: c.EndpointConcurrency,
		AttemptTimeout:      c.AttemptTimeout,
		Lease:               c.RescueAfter,
		PollInterval:        c.PollInterval,
		DrainTimeout:        c.ShutdownTimeout,
		Schedule:            delivery.Schedule{Slow: slow, Fast: fast, MaxAttempts: c.MaxAttempts, RetryAfterCap: c.RetryAfterCap},
		UserAgent:           "hookd/" + version,
		NoHandoff:           !c.SendHandoff,
		TraceHeader:         c.TraceHeader,
		Breaker: delivery.Breaker{
			DisableAfterFailures: offIfZero(c.BreakerFailures),
			DisableAfter:         time.Duration(offIfZero(int(c.BreakerDuration))),
			ProbeAfterFailures:   offIfZero(c.BreakerProbeAfter),
			ProbeBackoffMax:      c.BreakerBackoffMax,
		},
	}
	switch {
	case c.AttemptTimeout <= 0:
		return dc, errors.New("--attempt-timeout (HOOKD_ATTEMPT_TIMEOUT) must be positive")
	case c.RescueAfter <= c.AttemptTimeout:
		return dc, fmt.Errorf("--rescue-after (HOOKD_RESCUE_AFTER, %s) must be longer than --attempt-timeout (%s)", c.RescueAfter, c.AttemptTimeout)
	case c.BreakerFailures < 0 || c.BreakerDuration < 0 || c.BreakerProbeAfter < 0:
		return dc, errors.New("--breaker-failures, --breaker-duration and --breaker-probe-after may not be negative (0 turns a rule off)")
	case c.BreakerBackoffMax < time.Second || c.BreakerBackoffMax > 24*time.Hour:
		return dc, errors.New("--breaker-backoff-max (HOOKD_BREAKER_BACKOFF_MAX) must be 1s to 24h")
	case c.PollInterval <= 0 || c.PollInterval > time.Minute:
		return dc, errors.New("--poll-interval (HOOKD_POLL_INTERVAL) must be more than 0 and at most 1m")
	}
	if err := dc.Schedule.Validate(); err != nil {
		return dc, fmt.Errorf("retry schedule (--retry-slow, --retry-fast, --max-attempts, --retry-after-cap): %w", err)
	}
	return dc, nil
}

// cleanupConfig is the retention clean-up's configuration.
func (c *Config) cleanupConfig() cleanup.Config {
	return cleanup.Config{Interval: c.CleanupInterval,
		Retention: store.Retention{Payload: c.RetentionPayload, Metadata: c.RetentionMetadata}}
}

// offIfZero maps a flag's 0 ("off") to the engine's negative "off" (its 0
// means "default").
func offIfZero(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

func parseDurations(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range splitList(s) {
		d, err := time.ParseDuration(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration such as 30s or 2h", f)
		}
		out = append(out, d)
	}
	return out, nil
}

// downloadOrigin is the origin of --public-url ("" when unset), where
// export downloads redirect: the console's policy must let it fetch there.
func (c *Config) downloadOrigin() string {
	u, err := url.Parse(c.PublicURL)
	if c.PublicURL == "" || err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
