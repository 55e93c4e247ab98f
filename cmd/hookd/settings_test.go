package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/internal/syncbuf"
	"github.com/hookd/hookd/internal/testdb"
	"github.com/hookd/hookd/netguard"
)

// TestProjectUpdateAndList: `hookd project update` changes only the
// settings given, validates them, prints the result; `project list` shows
// the settings; on both databases.
func TestProjectUpdateAndList(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := env(map[string]string{"HOOKD_DATABASE_URL": testdb.New(t, d)})
			require.NoError(t, run(ctx, []string{"project", "create", "acme"}, e, io.Discard, io.Discard))

			var out bytes.Buffer
			require.NoError(t, run(ctx, []string{"project", "list"}, e, &out, io.Discard))
			require.Regexp(t, `\tacme\t\S+\trate_limit=default send_rate_limit=unlimited retention_hours=default unknown_event_types=allowed\n$`, out.String())

			out.Reset()
			require.NoError(t, run(ctx, []string{"project", "update", "acme", "--rate-limit", "500", "--retention-hours", "48"}, e, &out, io.Discard))
			require.Contains(t, out.String(), `updated project "acme"`)
			require.Contains(t, out.String(), "rate_limit=500/min send_rate_limit=unlimited retention_hours=48")

			out.Reset()
			require.NoError(t, run(ctx, []string{"project", "update", "acme", "--send-rate-limit", "60"}, e, &out, io.Discard))
			require.Contains(t, out.String(), "rate_limit=500/min send_rate_limit=60/min retention_hours=48", "flags not given keep their values")

			out.Reset()
			require.NoError(t, run(ctx, []string{"project", "update", "acme", "--rate-limit", "0", "--retention-hours", "0"}, e, &out, io.Discard))
			require.Contains(t, out.String(), "rate_limit=default send_rate_limit=60/min retention_hours=default")

			out.Reset()
			require.NoError(t, run(ctx, []string{"project", "update", "acme", "--allow-unknown-event-types=false"}, e, &out, io.Discard))
			require.Contains(t, out.String(), "retention_hours=default unknown_event_types=refused")

			for _, c := range []struct {
				args []string
				want string
			}{
				{[]string{"--rate-limit", "-1"}, "--rate-limit must be 0 to 1000000, got -1"},
				{[]string{"--send-rate-limit", "1000001"}, "--send-rate-limit must be 0 to 1000000"},
				{[]string{"--retention-hours", "2161"}, "--retention-hours must be 0 to 2160"},
				{[]string{"--rate-limit", "many"}, `invalid value "many"`},
				{nil, "nothing to change"},
			} {
				err := run(ctx, append([]string{"project", "update", "acme"}, c.args...), e, io.Discard, io.Discard)
				require.ErrorIs(t, err, errUsage)
				require.ErrorContains(t, err, c.want)
			}
			require.ErrorContains(t, run(ctx, []string{"project", "update", "nope", "--rate-limit", "1"}, e, io.Discard, io.Discard), `no project named "nope"`)
			require.ErrorContains(t, run(ctx, []string{"project", "update", "--rate-limit", "1"}, e, io.Discard, io.Discard), "the name comes first")
			// The command's own flags are not read from the environment.
			stray := env(map[string]string{"HOOKD_DATABASE_URL": e("HOOKD_DATABASE_URL"), "HOOKD_RATE_LIMIT": "7"})
			require.ErrorContains(t, run(ctx, []string{"project", "update", "acme"}, stray, io.Discard, io.Discard), "nothing to change")

			out.Reset()
			require.NoError(t, run(ctx, []string{"project", "list"}, e, &out, io.Discard))
			require.Contains(t, out.String(), "\tacme\t")
			require.Contains(t, out.String(), "rate_limit=default send_rate_limit=60/min retention_hours=default")
		})
	}
}

// TestRateLimitFlagsReachTheServer: --rate-limit-default and
// --auth-failure-limit (or their variables) configure the running server.
func TestRateLimitFlagsReachTheServer(t *testing.T) {
	t.Parallel()
	stdout := &syncbuf.Buffer{}
	addr, stop := startServe(t, []string{"--addr", "127.0.0.1:0", "--data-dir", filepath.Join(t.TempDir(), "data"), "--rate-limit-default", "3"},
		env(map[string]string{"HOOKD_AUTH_FAILURE_LIMIT": "2"}), stdout)
	key := keyRE.FindString(stdout.String())
	require.NotEmpty(t, key)
	url := "http://" + addr + "/v1/endpoints"
	for range 3 {
		require.Equal(t, http.StatusOK, get(t, url, key))
	}
	resp := getResp(t, url, key)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Regexp(t, `^(19|20)$`, resp.Header.Get("Retry-After"), "3 a minute: the next one in 20 s (less the time the test took)")

	bad := "hk_live_" + strings.Repeat("Z", 32)
	require.Equal(t, http.StatusUnauthorized, get(t, url, bad))
	require.Equal(t, http.StatusUnauthorized, get(t, url, bad))
	resp = getResp(t, url, bad)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Regexp(t, `^(29|30)$`, resp.Header.Get("Retry-After"), "2 a minute: the next one in 30 s")
	require.Equal(t, http.StatusOK, get(t, "http://"+addr+"/healthz", ""))
	require.NoError(t, stop())
}

func getResp(t *testing.T, url, key string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	return resp
}

// TestRateLimitFlagsAreDocumented: serve --help names the variables of the
// rate-limit flags (their bad values are in TestBadConfigurationSaysWhatToFix),
// and trusted proxies parse as addresses and prefixes.
func TestRateLimitFlagsAreDocumented(t *testing.T) {
	t.Parallel()
	var stdout bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"serve", "--help"}, env(nil), &stdout, io.Discard))
	for _, v := range []string{"HOOKD_RATE_LIMIT_DEFAULT", "HOOKD_AUTH_FAILURE_LIMIT", "HOOKD_TRUSTED_PROXIES"} {
		require.Contains(t, stdout.String(), v)
	}
	ps, err := netguard.ParseCIDRs("10.1.2.3, 192.168.7.1/16, 2001:db8::/48")
	require.NoError(t, err)
	require.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.1.2.3/32"), netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("2001:db8::/48")}, ps)
}
