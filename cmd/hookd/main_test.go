package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/hookd/hookd/internal/syncbuf"
	"github.com/hookd/hookd/internal/testdb"
	"github.com/hookd/hookd/secrets"
)

func TestMain(m *testing.M) {
	// Re-executed by TestSignalsShutDownGracefully as the real binary.
	if os.Getenv("HOOKD_TEST_RUN_MAIN") == "1" {
		os.Args = append([]string{"hookd"}, strings.Fields(os.Getenv("HOOKD_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
		goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"),
	)
}

var keyRE = regexp.MustCompile(`hk_live_[A-Za-z0-9]{32}`)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// startServe runs `hookd serve` in-process and returns its address and a
// stop function that cancels it and returns its error.
func startServe(t *testing.T, args []string, getenv func(string) string, stdout io.Writer) (addr string, stop func() error) {
	t.Helper()
	return startServeLogging(t, args, getenv, stdout, &syncbuf.Buffer{})
}

// startServeLogging is startServe with the log written to stderr.
func startServeLogging(t *testing.T, args []string, getenv func(string) string, stdout io.Writer, stderr *syncbuf.Buffer) (addr string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	go func() { errc <- serve(ctx, args, getenv, stdout, stderr, ready) }()
	select {
	case addr = <-ready:
	case err := <-errc:
		cancel()
		t.Fatalf("serve exited early: %v\n%s", err, stderr)
	case <-time.After(patience):
		cancel()
		t.Fatalf("serve did not start\n%s", stderr)
	}
	var once sync.Once
	var stopErr error
	// stop may be called off the test goroutine (to watch a drain), so it
	// reports a serve that does not stop as an error, not with t.Fatal.
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-errc:
			case <-time.After(drainDelay + patience):
				stopErr = errors.New("serve did not stop")
			}
		})
		return stopErr
	}
	t.Cleanup(func() { _ = stop() })
	return addr, stop
}

func get(t *testing.T, url, key string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func TestFirstStartPrintsAWorkingKeyOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	args := []string{"--addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--log-format", "json"}

	stdout := &syncbuf.Buffer{}
	addr, stop := startServe(t, args, env(nil), stdout)
	key := keyRE.FindString(stdout.String())
	require.NotEmpty(t, key, "the banner shows the key: %s", stdout)
	require.Contains(t, stdout.String(), `project "default"`)
	require.Contains(t, stdout.String(), "Or sign in with it at http://127.0.0.1:0/console/", "the banner names the console")
	require.Equal(t, http.StatusOK, get(t, "http://"+addr+"/v1/endpoints", key))
	require.Equal(t, http.StatusUnauthorized, get(t, "http://"+addr+"/v1/endpoints", ""))
	require.NoError(t, stop())

	st, err := os.Stat(filepath.Join(dir, "data", "master.key"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	stdout2 := &syncbuf.Buffer{}
	addr, stop = startServe(t, args, env(nil), stdout2)
	require.Empty(t, stdout2.String(), "the key is printed only on the first start")
	require.Equal(t, http.StatusOK, get(t, "http://"+addr+"/v1/endpoints", key), "the key survives a restart")
	require.NoError(t, stop())
}

func TestEnvironmentConfiguresAndFlagsWin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e := env(map[string]string{
		"HOOKD_ADDR":       "127.0.0.1:1", // overridden by the flag below
		"HOOKD_DATA_DIR":   filepath.Join(dir, "envdata"),
		"HOOKD_LOG_FORMAT": "text",
	})
	stdout := &syncbuf.Buffer{}
	addr, stop := startServe(t, []string{"--addr", "127.0.0.1:0"}, e, stdout)
	require.NotEqual(t, "127.0.0.1:1", addr)
	_, err := os.Stat(filepath.Join(dir, "envdata", "hookd.db"))
	require.NoError(t, err, "HOOKD_DATA_DIR was used")
	require.NoError(t, stop())
}

func TestBadConfigurationSaysWhatToFix(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"Addr":               {[]string{"--addr", "8080"}, nil, "--addr (HOOKD_ADDR) must be host:port"},
		"LogLevel":           {nil, map[string]string{"HOOKD_LOG_LEVEL": "loud"}, "--log-level (HOOKD_LOG_LEVEL)"},
		"LogFormat":          {[]string{"--log-format", "xml"}, nil, "--log-format (HOOKD_LOG_FORMAT)"},
		"DBURL":              {[]string{"--database-url", "mysql://x"}, nil, "--database-url (HOOKD_DATABASE_URL) must start with"},
		"MaxConns":           {[]string{"--db-max-conns", "0"}, nil, "--db-max-conns (HOOKD_DB_MAX_CONNS) must be 1 to 1000"},
		"CIDR":               {[]string{"--dev-allow-cidrs", "127.0.0.1/99"}, nil, "--dev-allow-cidrs (HOOKD_DEV_ALLOW_CIDRS)"},
		"MasterKey":          {[]string{"--master-key", "nope"}, nil, "--master-key (HOOKD_MASTER_KEY)"},
		"ShutdownTimeout":    {[]string{"--shutdown-timeout", "1ms"}, nil, "--shutdown-timeout (HOOKD_SHUTDOWN_TIMEOUT) must be 1s to 10m"},
		"EnvNotABool":        {nil, map[string]string{"HOOKD_DEV_ALLOW_HTTP": "maybe"}, `HOOKD_DEV_ALLOW_HTTP="maybe"`},
		"UnknownFlag":        {[]string{"--colour", "red"}, nil, "flag provided but not defined"},
		"ExtraArgument":      {[]string{"--dev-allow-http", "maybe"}, nil, `unexpected argument "maybe"`},
		"EnvNotANumber":      {nil, map[string]string{"HOOKD_DB_MAX_CONNS": "x"}, `HOOKD_DB_MAX_CONNS="x" (the --db-max-conns flag)`},
		"FlagNotDuration":    {[]string{"--shutdown-timeout", "abc"}, nil, `invalid value "abc" for flag -shutdown-timeout`},
		"AllowEverything":    {[]string{"--dev-allow-cidrs", "0.0.0.0/0"}, nil, "would allow far too much"},
		"DrainDelay":         {[]string{"--drain-delay", "2m"}, nil, "--drain-delay (HOOKD_DRAIN_DELAY) must be 0 to 1m"},
		"Role":               {[]string{"--role", "both"}, nil, "--role (HOOKD_ROLE) must be all, api or worker"},
		"RoleOnSQLite":       {nil, map[string]string{"HOOKD_ROLE": "worker"}, "--role (HOOKD_ROLE) worker needs PostgreSQL"},
		"ExportTTL":          {[]string{"--export-ttl", "10s"}, nil, "--export-ttl (HOOKD_EXPORT_TTL) must be 1m to 720h"},
		"PublicURL":          {nil, map[string]string{"HOOKD_PUBLIC_URL": "hookd.example.com"}, "--public-url (HOOKD_PUBLIC_URL): must be an absolute"},
		"PublicURLQuery":     {[]string{"--public-url", "https://h.example.com/?a=1"}, nil, "--public-url (HOOKD_PUBLIC_URL)"},
		"MetricsAddr":        {[]string{"--metrics-addr", "9090"}, nil, `--metrics-addr (HOOKD_METRICS_ADDR) must be empty, "off" or host:port`},
		"MetricsLimit":       {nil, map[string]string{"HOOKD_METRICS_ENDPOINT_LIMIT": "-1"}, "--metrics-endpoint-limit (HOOKD_METRICS_ENDPOINT_LIMIT) must be 0 to 1000"},
		"RetentionPayload":   {[]string{"--retention-payload", "30m"}, nil, "--retention-payload (HOOKD_RETENTION_PAYLOAD) must be 1h to 2160h"},
		"RetentionMetadata":  {nil, map[string]string{"HOOKD_RETENTION_METADATA": "100h", "HOOKD_RETENTION_PAYLOAD": "200h"}, "--retention-metadata (HOOKD_RETENTION_METADATA) must be 24h to 87600h and at least --retention-payload"},
		"CleanupInterval":    {[]string{"--cleanup-interval", "2h"}, nil, "--cleanup-interval (HOOKD_CLEANUP_INTERVAL) must be 1s to 1h"},
		"BreakerNegative":    {[]string{"--breaker-failures", "-1"}, nil, "may not be negative (0 turns a rule off)"},
		"BreakerBackoff":     {[]string{"--breaker-backoff-max", "100ms"}, nil, "--breaker-backoff-max (HOOKD_BREAKER_BACKOFF_MAX) must be 1s to 24h"},
		"RateLimitZero":      {[]string{"--rate-limit-default", "0"}, nil, "--rate-limit-default (HOOKD_RATE_LIMIT_DEFAULT) must be 1 to 1000000"},
		"RateLimitHuge":      {nil, map[string]string{"HOOKD_RATE_LIMIT_DEFAULT": "1000001"}, "--rate-limit-default (HOOKD_RATE_LIMIT_DEFAULT) must be 1 to 1000000"},
		"AuthLimitNegative":  {[]string{"--auth-failure-limit", "-1"}, nil, "--auth-failure-limit (HOOKD_AUTH_FAILURE_LIMIT) must be 0 (off) to 1000000"},
		"ProxyNotAnAddress":  {[]string{"--trusted-proxies", "proxy.local"}, nil, "--trusted-proxies (HOOKD_TRUSTED_PROXIES)"},
		"ProxyEverything":    {nil, map[string]string{"HOOKD_TRUSTED_PROXIES": "0.0.0.0/0"}, "would allow far too much"},
		"ProxyEverythingV6":  {[]string{"--trusted-proxies", "10.0.0.1, ::/0"}, nil, "would allow far too much"},
		"AuthLimitNotNumber": {nil, map[string]string{"HOOKD_AUTH_FAILURE_LIMIT": "lots"}, `HOOKD_AUTH_FAILURE_LIMIT="lots"`},
		"OTLPEndpoint":       {[]string{"--otlp-endpoint", "collector:4318"}, nil, "--otlp-endpoint (HOOKD_OTLP_ENDPOINT): must be an absolute"},
		"OTLPRedacted":       {[]string{"--otlp-endpoint", "ftp://user:s3cr3t@c/v1/traces?token=t0k3n"}, nil, `got "ftp://user:xxxxx@c/v1/traces"`},
		"TraceSampleRatio":   {[]string{"--otlp-endpoint", "http://c:4318/v1/traces", "--trace-sample-ratio", "1.5"}, nil, "--trace-sample-ratio (HOOKD_TRACE_SAMPLE_RATIO) must be 0 to 1"},
		"TraceHeaderAlone":   {nil, map[string]string{"HOOKD_TRACE_HEADER": "true"}, "--trace-header (HOOKD_TRACE_HEADER) needs tracing on"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"serve", "--data-dir", t.TempDir()}, c.args...)
			err := run(context.Background(), args, env(c.env), io.Discard, io.Discard)
			require.ErrorContains(t, err, c.want)
		})
	}
}

func TestPostgresNeedsAnExplicitMasterKey(t *testing.T) {
	t.Parallel()
	dbURL := testdb.NewPostgres(t)
	err := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--database-url", dbURL}, env(nil), io.Discard, io.Discard)
	require.ErrorContains(t, err, "HOOKD_MASTER_KEY")

	key := secrets.GenerateMasterKey("prod")
	stdout := &syncbuf.Buffer{}
	addr, stop := startServe(t, []string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir()},
		env(map[string]string{"HOOKD_DATABASE_URL": dbURL, "HOOKD_MASTER_KEY": key.String()}), stdout)
	require.Equal(t, http.StatusOK, get(t, "http://"+addr+"/readyz", ""))
	require.NoError(t, stop())
}

func TestOperatorCommands(t *testing.T) {
	t.Parallel()
	dbURL := testdb.NewPostgres(t)
	ctx := context.Background()
	e := env(map[string]string{"HOOKD_DATABASE_URL": dbURL})
	var out bytes.Buffer

	require.NoError(t, run(ctx, []string{"migrate"}, e, &out, io.Discard))
	require.Regexp(t, `applied migrations \[1 2( \d+)*\]`, out.String())
	out.Reset()
	require.NoError(t, run(ctx, []string{"migrate"}, e, &out, io.Discard))
	require.Contains(t, out.String(), "up to date")

	out.Reset()
	require.NoError(t, run(ctx, []string{"project", "create", "acme"}, e, &out, io.Discard))
	require.Contains(t, out.String(), `created project "acme"`)
	require.ErrorContains(t, run(ctx, []string{"project", "create", "acme"}, e, io.Discard, io.Discard), "exists already")

	out.Reset()
	require.NoError(t, run(ctx, []string{"apikey", "create", "--project", "acme", "--mode", "test", "--label", "ci"}, e, &out, io.Discard))
	testKey := strings.TrimSpace(out.String())
	require.Regexp(t, `^hk_test_[A-Za-z0-9]{32}$`, testKey, "stdout holds only the key, for scripts")
	require.ErrorContains(t, run(ctx, []string{"apikey", "create", "--project", "nope"}, e, io.Discard, io.Discard), `no project named "nope"`)
	require.ErrorContains(t, run(ctx, []string{"apikey", "create"}, e, io.Discard, io.Discard), "--project NAME is required")
	require.ErrorContains(t, run(ctx, []string{"apikey", "create", "--project", "acme", "--mode", "prod"}, e, io.Discard, io.Discard), "--mode must be live or test")

	out.Reset()
	require.NoError(t, run(ctx, []string{"project", "list"}, e, &out, io.Discard))
	require.Contains(t, out.String(), "\tacme\t")

	// The CLI's key authenticates against a server on the same database and
	// sees project acme (which has no endpoints yet); no bootstrap happens
	// because the database already holds a project.
	stdout := &syncbuf.Buffer{}
	addr, stop := startServe(t, []string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir()},
		env(map[string]string{"HOOKD_DATABASE_URL": dbURL, "HOOKD_MASTER_KEY": secrets.GenerateMasterKey("m").String()}), stdout)
	require.Equal(t, http.StatusOK, get(t, "http://"+addr+"/v1/endpoints", testKey))
	require.Empty(t, stdout.String())
	require.NoError(t, stop())

	out.Reset()
	require.NoError(t, run(ctx, []string{"masterkey", "generate", "--id", "k2026"}, e, &out, io.Discard))
	k, err := secrets.ParseMasterKey(out.String())
	require.NoError(t, err)
	require.Equal(t, "k2026", k.ID)

	require.ErrorContains(t, run(ctx, []string{"masterkey", "generate", "--id", "ab:cd"}, e, io.Discard, io.Discard), `master key id "ab:cd"`)
	require.ErrorContains(t, run(ctx, []string{"project", "create", "   "}, e, io.Discard, io.Discard), "not only spaces")

	// A command's own flags are not read from the environment.
	stray := env(map[string]string{"HOOKD_DATABASE_URL": dbURL, "HOOKD_PROJECT": "acme", "HOOKD_MODE": "test"})
	require.ErrorContains(t, run(ctx, []string{"apikey", "create"}, stray, io.Discard, io.Discard), "--project NAME is required")
	out.Reset()
	require.NoError(t, run(ctx, []string{"apikey", "create", "--project", "acme"}, stray, &out, io.Discard))
	require.Regexp(t, `^hk_live_`, out.String(), "HOOKD_MODE did not apply")

	require.ErrorIs(t, run(ctx, []string{"frobnicate"}, e, io.Discard, io.Discard), errUsage)
	require.ErrorIs(t, run(ctx, nil, e, io.Discard, io.Discard), errUsage)
}

func TestServeHelpListsEveryFlagWithItsVariable(t *testing.T) {
	t.Parallel()
	var stdout bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"serve", "--help"}, env(nil), &stdout, io.Discard))
	for _, v := range []string{"HOOKD_ADDR", "HOOKD_DATABASE_URL", "HOOKD_DATA_DIR", "HOOKD_DB_MAX_CONNS", "HOOKD_MASTER_KEY", "HOOKD_MASTER_KEYS_OLD",
		"HOOKD_DEV_ALLOW_HTTP", "HOOKD_DEV_ALLOW_CIDRS", "HOOKD_SHUTDOWN_TIMEOUT", "HOOKD_DRAIN_DELAY", "HOOKD_LOG_FORMAT", "HOOKD_LOG_LEVEL", "HOOKD_ROLE"} {
		require.Contains(t, stdout.String(), v)
	}
}

// TestSignalsShutDownGracefully runs the real binary (this test executable
// re-entering main), sends SIGTERM or SIGINT, and expects exit status 0 well
// within the configured shutdown bound.
func TestSignalsShutDownGracefully(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "HOOKD_TEST_RUN_MAIN=1",
				"HOOKD_TEST_ARGS=serve --addr 127.0.0.1:0 --log-format json --shutdown-timeout 5s --data-dir "+filepath.Join(t.TempDir(), "d"))
			stderr, err := cmd.StderrPipe()
			require.NoError(t, err)
			cmd.Stdout = io.Discard
			require.NoError(t, cmd.Start())
			addrRE := regexp.MustCompile(`"addr":"([0-9.:]+)"`)
			sc := bufio.NewScanner(stderr)
			addr := ""
			for sc.Scan() {
				if m := addrRE.FindStringSubmatch(sc.Text()); m != nil {
					addr = m[1]
					break
				}
			}
			require.NotEmpty(t, addr)
			rest := &syncbuf.Buffer{}
			copied := make(chan struct{})
			go func() {
				defer close(copied)
				for sc.Scan() {
					_, _ = rest.Write(append(sc.Bytes(), '\n'))
				}
			}()
			require.Equal(t, http.StatusOK, get(t, "http://"+addr+"/healthz", ""))

			require.NoError(t, cmd.Process.Signal(sig))
			select {
			case <-copied: // stderr ends when hookd exits
			case <-time.After(patience):
				_ = cmd.Process.Kill()
				t.Fatal("hookd did not exit after the signal")
			}
			// Exit status 0 means the graceful shutdown finished within
			// --shutdown-timeout (serve returns an error otherwise): what a
			// wall-clock bound on the exit checked before, and failed on a
			// loaded machine. (Wait after the reads: it closes the pipe.)
			require.NoError(t, cmd.Wait(), "exit status 0")
			require.Contains(t, rest.String(), `"msg":"shutting down"`)
			require.Contains(t, rest.String(), `"msg":"stopped"`, "a graceful stop")
		})
	}
}

// TestLostOrWrongMasterKeyIsRefusedAtStart: once the database holds sealed
// signing secrets, hookd will not start with a keyring that cannot open
// them, and never generates a replacement key file.
func TestLostOrWrongMasterKeyIsRefusedAtStart(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	args := []string{"--addr", "127.0.0.1:0", "--data-dir", dir}
	stdout := &syncbuf.Buffer{}
	addr, stop := startServe(t, args, env(nil), stdout)
	key := keyRE.FindString(stdout.String())
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/endpoints", strings.NewReader(`{"url":"https://93.184.216.34/hooks"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	require.NoError(t, stop())

	other := secrets.GenerateMasterKey("other")
	err = run(context.Background(), append([]string{"serve", "--master-key", other.String()}, args...), env(nil), io.Discard, io.Discard)
	require.ErrorContains(t, err, "which this process does not have")

	keyFile := filepath.Join(dir, "master.key")
	b, err := os.ReadFile(keyFile)
	require.NoError(t, err)
	require.NoError(t, os.Remove(keyFile))
	err = run(context.Background(), append([]string{"serve"}, args...), env(nil), io.Discard, io.Discard)
	require.ErrorContains(t, err, "master key file")
	require.ErrorContains(t, err, "is missing")
	_, err = os.Stat(keyFile)
	require.True(t, os.IsNotExist(err), "no replacement key was generated")

	// The old key as a retired key next to a new active one works.
	old, err := secrets.ParseMasterKey(string(b))
	require.NoError(t, err)
	addr, stop = startServe(t, append([]string{"--master-key", other.String(), "--master-keys-old", old.String()}, args...), env(nil), &syncbuf.Buffer{})
	require.Equal(t, http.StatusOK, get(t, "http://"+addr+"/readyz", ""))
	require.NoError(t, stop())
}
