package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hookd/hookd/netguard"
	"github.com/hookd/hookd/secrets"
	"github.com/hookd/hookd/store"
)

// Config is everything `hookd serve` can be told. Each field is a flag with
// an HOOKD_… environment equivalent (flag name upper-cased, '-' → '_'); a
// flag on the command line wins over the environment.
type Config struct {
	// Addr is the listen address of the API, host:port. Default ":8080".
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
	// LogFormat is "auto" (text on a terminal, JSON otherwise), "json" or
	// "text".
	LogFormat string
	// LogLevel is "debug", "info", "warn" or "error". Default "info".
	LogLevel string

	allowCIDRs []netip.Prefix
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
	fs.StringVar(&c.Addr, "addr", ":8080", "listen address of the API (host:port)")
	fs.StringVar(&c.MasterKey, "master-key", "", `master key sealing signing secrets, "ID:BASE64" of 32 bytes; empty uses DATA_DIR/master.key (generated on first start with SQLite)`)
	fs.StringVar(&c.MasterKeysOld, "master-keys-old", "", "retired master keys, comma-separated, still used to open older secrets")
	fs.BoolVar(&c.DevAllowHTTP, "dev-allow-http", false, "DEVELOPMENT ONLY: allow http:// endpoint URLs")
	fs.StringVar(&c.DevAllowCIDRs, "dev-allow-cidrs", "", "DEVELOPMENT ONLY: comma-separated CIDRs endpoints may use although blocked, e.g. 127.0.0.1/32")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long a graceful shutdown may take (1s-10m)")
}

// envName is the environment variable of a flag.
func envName(flagName string) string {
	return "HOOKD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseFlags parses args, then fills every flag not given on the command line
// from its environment variable.
func parseFlags(fs *flag.FlagSet, args []string, getenv func(string) string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", envName(f.Name), v, err))
			}
		}
	})
	return errors.Join(errs...)
}

// usage prints a command's flags with their environment variables.
func usage(fs *flag.FlagSet, w io.Writer, synopsis string) func() {
	return func() {
		fmt.Fprintf(w, "usage: %s\n\nflags (each also read from its environment variable):\n", synopsis)
		fs.VisitAll(func(f *flag.Flag) {
			def := ""
			if f.DefValue != "" && f.DefValue != "false" {
				def = fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(w, "  --%s  [%s]%s\n      %s\n", f.Name, envName(f.Name), def, f.Usage)
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
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			errs = append(errs, fmt.Errorf("--addr (HOOKD_ADDR) must be host:port such as :8080 or 127.0.0.1:8080, got %q", c.Addr))
		}
		if c.ShutdownTimeout < time.Second || c.ShutdownTimeout > 10*time.Minute {
			errs = append(errs, fmt.Errorf("--shutdown-timeout (HOOKD_SHUTDOWN_TIMEOUT) must be 1s to 10m, got %s", c.ShutdownTimeout))
		}
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
		for _, old := range splitList(c.MasterKeysOld) {
			if _, err := secrets.ParseMasterKey(old); err != nil {
				errs = append(errs, fmt.Errorf("--master-keys-old (HOOKD_MASTER_KEYS_OLD): %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

func (c *Config) isSQLite() bool {
	return c.DatabaseURL == "" || strings.HasPrefix(c.DatabaseURL, "sqlite:")
}

func (c *Config) storeOptions() store.Options {
	return store.Options{DatabaseURL: c.DatabaseURL, DataDir: c.DataDir, MaxConns: c.DBMaxConns}
}

// keyring builds the master keyring. With no --master-key it uses the key
// file in the data directory, creating it only for SQLite: processes sharing
// a PostgreSQL database must share one explicit key.
func (c *Config) keyring(log *slog.Logger) (*secrets.Keyring, error) {
	var active secrets.MasterKey
	if c.MasterKey != "" {
		k, err := secrets.ParseMasterKey(c.MasterKey)
		if err != nil {
			return nil, err
		}
		active = k
	} else {
		path := filepath.Join(c.DataDir, "master.key")
		k, created, err := secrets.LoadOrCreateKeyFile(path, c.isSQLite())
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
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
	var old []secrets.MasterKey
	for _, s := range splitList(c.MasterKeysOld) {
		k, err := secrets.ParseMasterKey(s)
		if err != nil {
			return nil, err
		}
		old = append(old, k)
	}
	return secrets.NewKeyring(active, old...)
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
