package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/internal/syncbuf"
	"github.com/hookd/hookd/internal/testdb"
	"github.com/hookd/hookd/secrets"
)

// consoleDir is the console's npm project, from this package's directory.
const consoleDir = "../../console"

// browserTools finds Node.js, the console's installed test packages and
// Chromium. Outside CI a missing one skips the browser tests with what to
// install; under CI (CI set) it fails them.
func browserTools(t *testing.T) (node, chromium string) {
	t.Helper()
	missing := func(what string) {
		if os.Getenv("CI") != "" {
			t.Fatalf("browser tests need %s (.ci/run installs it)", what)
		}
		t.Skipf("browser tests skipped: they need %s (make console-deps; apt-get install chromium)", what)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("Node.js")
	}
	if _, err := os.Stat(filepath.Join(consoleDir, "node_modules", "playwright-core")); err != nil {
		missing("the console's npm packages")
	}
	chromium = os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		missing("Chromium at " + chromium)
	}
	return node, chromium
}

// consoleReceiver answers 200 at /ok and /ok/fixed, 500 at /fail and 400
// anywhere else (/reject).
func consoleReceiver(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/ok", "/ok/fixed":
			_, _ = io.WriteString(w, `{"received":true}`)
		case "/fail":
			http.Error(w, "receiver is down", http.StatusInternalServerError)
		default:
			http.Error(w, "unknown event", http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestConsoleInABrowser runs the console's browser tests (console/e2e)
// in headless Chromium against a real hookd on each database and a real
// receiver: sign-in, endpoints and their keys, messages with their
// attempts, retries, DLQ replay, charts, exports, API keys, event types,
// inbound endpoints and rejections, with axe-core on every page. The
// screenshots go to console/e2e/screenshots/DIALECT.
func TestConsoleInABrowser(t *testing.T) {
	node, chromium := browserTools(t)
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			dbURL := testdb.New(t, dialect)
			key := secrets.GenerateMasterKey("console")
			stdout := &syncbuf.Buffer{}
			addr, stop := startServe(t, []string{"--addr", "127.0.0.1:0", "--database-url", dbURL, "--master-key", key.String(),
				"--data-dir", t.TempDir(), "--dev-allow-http", "--dev-allow-cidrs", "127.0.0.1/32", "--poll-interval", "50ms",
				"--retry-slow", "1h", "--log-level", "warn"}, env(nil), stdout)
			defer func() { require.NoError(t, stop()) }()
			apiKey := keyRE.FindString(stdout.String())
			require.NotEmpty(t, apiKey)
			rcv := consoleReceiver(t)

			shots, err := filepath.Abs(filepath.Join(consoleDir, "e2e", "screenshots", dialect))
			require.NoError(t, err)
			// A bound for a hung browser, far beyond the ~15 s a run takes.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, "e2e/console.mjs")
			cmd.Dir = consoleDir
			cmd.Env = append(os.Environ(), "HOOKD_URL=http://"+addr, "HOOKD_API_KEY="+apiKey, "RECEIVER_URL="+rcv.URL,
				"CHROMIUM="+chromium, "SCREENSHOTS="+shots)
			out, err := cmd.CombinedOutput()
			t.Logf("console browser tests on %s:\n%s", dialect, out)
			require.NoError(t, err, "the browser tests failed (the failing page is in %s/failure.png)", shots)
		})
	}
}

// TestConsoleFlag: serve answers the console at /console/ by default and
// not at all with --console=false; the API is the same either way. With
// --public-url, where export downloads redirect, the policy allows that
// origin too.
func TestConsoleFlag(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{true, false} {
		args := []string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--public-url", "https://hookd.example.com:8443/base"}
		if !on {
			args = append(args, "--console=false")
		}
		stdout := &syncbuf.Buffer{}
		addr, stop := startServe(t, args, env(nil), stdout)
		resp, err := http.Get("http://" + addr + "/console/")
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if on {
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'self'")
			require.Contains(t, resp.Header.Get("Content-Security-Policy"), "; connect-src 'self' https://hookd.example.com:8443")
		} else {
			require.Equal(t, http.StatusNotFound, resp.StatusCode)
		}
		require.Equal(t, http.StatusOK, get(t, "http://"+addr+"/v1/projects", keyRE.FindString(stdout.String())))
		require.NoError(t, stop())
	}
}
