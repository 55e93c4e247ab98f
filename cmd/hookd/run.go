package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/hookd/hookd/handlers"
	"github.com/hookd/hookd/ids"
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
  serve [--role all|api|worker]  run the API and/or the delivery engine (migrates the database first)
  migrate                        apply database migrations and exit
  project create NAME            create a project
  project list                   list projects with their settings
  project update NAME [--rate-limit N] [--send-rate-limit N] [--retention-hours N] [--allow-unknown-event-types BOOL]
                                 change a project's settings (only the flags given):
                                 management API requests/min (0 = server default),
                                 sends/min (0 = unlimited), payload retention in
                                 hours (1-2160; 0 = the server's --retention-payload)
  apikey create --project NAME [--mode live|test] [--label L]
                                 create an API key (printed once)
  masterkey generate [--id ID]   print a new master key for --master-key
  masterkey rotate --master-key NEW --master-keys-old OLD[,OLD2]
                                 re-seal every signing secret under the NEW master key
  listen [--addr A] [--secrets whsec_…] [--status N]
                                 a local receiver that prints deliveries and checks signatures
  listen --inbound ID --api-key K [--forward-to URL]
                                 print (and forward locally) an inbound endpoint's webhooks
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
		return masterkey(ctx, rest, getenv, stdout, stderr)
	case "listen":
		return listen(ctx, rest, getenv, stdout, stderr, nil)
	case "version", "--version":
		if len(rest) > 0 && isHelp(rest[0]) {
			fmt.Fprintln(stdout, "usage: hookd version\n\nprints hookd's version")
			return nil
		}
		fmt.Fprintln(stdout, "hookd", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, help)
		return nil
	}
	fmt.Fprint(stderr, help)
	return fmt.Errorf("%w: unknown command %q", errUsage, cmd)
}

// isHelp reports whether arg asks for help, as the flag package reads it.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--h", "--help":
		return true
	}
	return false
}

// groupHelp answers `hookd GROUP --help` for a command with subcommands:
// their synopses on stdout.
func groupHelp(stdout io.Writer, group string, synopses ...string) {
	for i, s := range synopses {
		prefix := "usage: "
		if i > 0 {
			prefix = "       "
		}
		fmt.Fprintln(stdout, prefix+s)
	}
	fmt.Fprintf(stdout, "\n\"hookd %s <subcommand> --help\" lists a subcommand's flags.\n", group)
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// commandFlags parses a command's flags and the environment variables env
// gives them. ok is false when the command should stop: help was asked for
// and printed to stdout (err nil), or the flags are wrong (err says how,
// marked errUsage).
func commandFlags(fs *flag.FlagSet, args []string, getenv func(string) string, stdout io.Writer, env envVars) (ok bool, err error) {
	if err := parseFlags(fs, args, getenv, env); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(fs, stdout)
			return false, nil
		}
		return false, fmt.Errorf("%w: %w", errUsage, err)
	}
	return true, nil
}

// printUsage prints fs's usage (its --help) to stdout.
func printUsage(fs *flag.FlagSet, stdout io.Writer) {
	fs.SetOutput(stdout)
	fs.Usage()
}

// parse is commandFlags followed by validating the config.
func parse(fs *flag.FlagSet, c *Config, args []string, getenv func(string) string, stdout io.Writer, serving bool, env envVars) (ok bool, err error) {
	if ok, err := commandFlags(fs, args, getenv, stdout, env); !ok {
		return false, err
	}
	if err := c.validate(serving); err != nil {
		return false, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return true, nil
}

// openStore opens and migrates the database of c.
func openStore(ctx context.Context, c *Config, log *slog.Logger) (*store.Store, error) {
	return openStoreWith(ctx, c.storeOptions(), log)
}

// openStoreWith opens and migrates the database opts names.
func openStoreWith(ctx context.Context, opts store.Options, log *slog.Logger) (*store.Store, error) {
	opts.Log = log
	st, err := store.Open(ctx, opts)
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

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c Config
	fs := newFlagSet("migrate", stderr)
	dbFlags(fs, &c)
	fs.Usage = usage(fs, "hookd migrate [flags]", envVars{})
	if ok, err := parse(fs, &c, args, getenv, stdout, false, envVars{}); !ok {
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
	const synopsis = "hookd project create NAME | hookd project list | hookd project update NAME [--rate-limit N] [--send-rate-limit N] [--retention-hours N] [--allow-unknown-event-types BOOL]"
	if len(args) > 0 && isHelp(args[0]) {
		groupHelp(stdout, "project", "hookd project create NAME [flags]", "hookd project list [flags]",
			"hookd project update NAME [--rate-limit N] [--send-rate-limit N] [--retention-hours N] [--allow-unknown-event-types BOOL] [flags]")
		return nil
	}
	if len(args) == 0 || (args[0] != "create" && args[0] != "list" && args[0] != "update") {
		return fmt.Errorf("%w: %s", errUsage, synopsis)
	}
	var c Config
	var rateLimit, sendRateLimit, retentionHours int
	var allowUnknown bool
	fs := newFlagSet("project "+args[0], stderr)
	dbFlags(fs, &c)
	var noEnv []string
	if args[0] == "update" {
		fs.IntVar(&rateLimit, "rate-limit", 0, "management API requests per minute (0-1000000; 0 = the server's --rate-limit-default)")
		fs.IntVar(&sendRateLimit, "send-rate-limit", 0, "sends (POST /v1/webhooks/send) per minute (0-1000000; 0 = unlimited)")
		fs.IntVar(&retentionHours, "retention-hours", 0, "hours the payloads of finished messages are kept (1-2160; 0 = the server's --retention-payload, 336 h by default)")
		fs.BoolVar(&allowUnknown, "allow-unknown-event-types", true, "whether POST /v1/events may publish types the project has not created (default true)")
		noEnv = []string{"rate-limit", "send-rate-limit", "retention-hours", "allow-unknown-event-types"}
	}
	env := envVars{None: noEnv}
	fs.Usage = usage(fs, projectSynopsis(args[0]), env)
	rest, name := args[1:], ""
	if args[0] != "list" {
		if len(rest) > 0 && isHelp(rest[0]) {
			printUsage(fs, stdout)
			return nil
		}
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return fmt.Errorf("%w: hookd project %s NAME [flags] (the name comes first)", errUsage, args[0])
		}
		name, rest = rest[0], rest[1:]
	}
	if ok, err := parse(fs, &c, rest, getenv, stdout, false, env); !ok {
		return err
	}
	var settings store.ProjectSettings
	if args[0] == "update" {
		given := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
		for name, field := range map[string]struct {
			v     *int
			field **int
		}{
			"rate-limit":      {&rateLimit, &settings.RateLimitPerMinute},
			"send-rate-limit": {&sendRateLimit, &settings.SendRateLimitPerMinute},
			"retention-hours": {&retentionHours, &settings.RetentionHours},
		} {
			if given[name] {
				*field.field = field.v
			}
		}
		if given["allow-unknown-event-types"] {
			settings.AllowUnknownEventTypes = &allowUnknown
		}
		if settings == (store.ProjectSettings{}) {
			return fmt.Errorf("%w: nothing to change: give --rate-limit, --send-rate-limit, --retention-hours or --allow-unknown-event-types", errUsage)
		}
	}
	log := newLogger(&c, stderr)
	st, err := openStore(ctx, &c, log)
	if err != nil {
		return err
	}
	defer st.Close()
	switch args[0] {
	case "list":
		ps, err := st.ListProjects(ctx)
		if err != nil {
			return err
		}
		for _, p := range ps {
			fmt.Fprintf(stdout, "%s\t%s\t%s\t%s\n", p.ID, p.Name, p.CreatedAt.UTC().Format(time.RFC3339), projectSettings(p))
		}
		return nil
	case "update":
		p, err := st.UpdateProjectSettings(ctx, name, settings)
		var bad *store.RangeError
		switch {
		case errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("no project named %q (see hookd project list)", name)
		case errors.As(err, &bad): // the store checks the ranges
			flagOf := map[string]string{"rate_limit_per_minute": "rate-limit", "send_rate_limit_per_minute": "send-rate-limit", "retention_hours": "retention-hours"}
			return fmt.Errorf("%w: --%s must be 0 to %d, got %d", errUsage, flagOf[bad.Column], bad.Max, bad.Got)
		case err != nil:
			return err
		}
		fmt.Fprintf(stdout, "updated project %q (%s): %s\n", p.Name, p.ID, projectSettings(p))
		fmt.Fprintln(stdout, "running hookd processes apply new rate limits within a second")
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

// projectSynopsis is the usage line of `hookd project SUB`.
func projectSynopsis(sub string) string {
	switch sub {
	case "create":
		return "hookd project create NAME [flags]"
	case "update":
		return "hookd project update NAME [--rate-limit N] [--send-rate-limit N] [--retention-hours N] [--allow-unknown-event-types BOOL] [flags]"
	}
	return "hookd project list [flags]"
}

// projectSettings renders a project's settings for people and scripts, e.g.
// "rate_limit=500/min send_rate_limit=unlimited retention_hours=default":
// a 0 setting shows what it means.
func projectSettings(p store.Project) string {
	show := func(v int, unit, zero string) string {
		if v == 0 {
			return zero
		}
		return strconv.Itoa(v) + unit
	}
	unknown := "allowed"
	if !p.AllowUnknownEventTypes {
		unknown = "refused"
	}
	return fmt.Sprintf("rate_limit=%s send_rate_limit=%s retention_hours=%s unknown_event_types=%s",
		show(p.RateLimitPerMinute, "/min", "default"), show(p.SendRateLimitPerMinute, "/min", "unlimited"), show(p.RetentionHours, "", "default"), unknown)
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
	if len(args) > 0 && isHelp(args[0]) {
		groupHelp(stdout, "apikey", "hookd apikey create --project NAME [--mode live|test] [--label L] [flags]")
		return nil
	}
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
	env := envVars{None: []string{"project", "mode", "label"}}
	fs.Usage = usage(fs, "hookd apikey create --project NAME [--mode live|test] [--label L]", env)
	if ok, err := parse(fs, &c, args[1:], getenv, stdout, false, env); !ok {
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
