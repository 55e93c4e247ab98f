package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// helpCommands lists every command and subcommand `hookd help` documents,
// plus the groups (project, apikey, masterkey) above subcommands, so a
// command added to the help text is covered here without editing the test.
func helpCommands(t *testing.T) [][]string {
	t.Helper()
	_, list, ok := strings.Cut(help, "commands:\n")
	require.True(t, ok, "the help text has a commands section")
	word := regexp.MustCompile(`^[a-z]+$`)
	seen := map[string]bool{}
	var out [][]string
	add := func(cmd []string) {
		if k := strings.Join(cmd, " "); !seen[k] {
			seen[k] = true
			out = append(out, cmd)
		}
	}
	for _, line := range strings.Split(list, "\n") {
		if !strings.HasPrefix(line, "  ") || strings.HasPrefix(line, "   ") {
			continue // a continuation line or the text after the list
		}
		synopsis := regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), 2)[0]
		var cmd []string
		for _, f := range strings.Fields(synopsis) {
			if !word.MatchString(f) {
				break
			}
			cmd = append(cmd, f)
		}
		require.NotEmpty(t, cmd, line)
		if len(cmd) > 1 {
			add(cmd[:1])
		}
		add(cmd)
	}
	require.GreaterOrEqual(t, len(out), 14, "%v", out)
	return out
}

// TestEveryCommandHelpExitsZero asks every command and subcommand for
// --help and -h: each must print its help on stdout, nothing on stderr, and
// succeed (main exits 0 exactly when run returns nil). The help names only
// environment variables the command reads.
func TestEveryCommandHelpExitsZero(t *testing.T) {
	t.Parallel()
	cmds := helpCommands(t)
	cmds = append(cmds, []string{"project", "update", "acme"}, []string{"project", "create", "acme"}, nil)
	for _, cmd := range cmds {
		for _, flag := range []string{"--help", "-h"} {
			args := append(append([]string(nil), cmd...), flag)
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), args, env(nil), &stdout, &stderr)
			require.NoError(t, err, "hookd %s", strings.Join(args, " "))
			require.Contains(t, stdout.String(), "usage:", "hookd %s", strings.Join(args, " "))
			require.Empty(t, stderr.String(), "hookd %s", strings.Join(args, " "))
			if len(cmd) > 0 && cmd[0] != "serve" && cmd[0] != "migrate" {
				for _, v := range []string{"[HOOKD_ADDR]", "[HOOKD_STATUS]", "[HOOKD_PROJECT]", "[HOOKD_ID]", "[HOOKD_BATCH_SIZE]", "[HOOKD_RATE_LIMIT]", "[HOOKD_MODE]"} {
					require.NotContains(t, stdout.String(), v, "hookd %s documents a variable it does not read", strings.Join(args, " "))
				}
			}
		}
	}
}

// TestProjectUpdateHelpExitStatus runs the real binary (this test
// executable re-entering main): `hookd project update --help` printed a
// usage error and exited 2; it prints the help and exits 0.
func TestProjectUpdateHelpExitStatus(t *testing.T) {
	t.Parallel()
	c := exec.Command(os.Args[0], "-test.run=^$")
	c.Env = append(os.Environ(), "HOOKD_TEST_RUN_MAIN=1", "HOOKD_TEST_ARGS=project update --help", "GORACE=atexit_sleep_ms=0")
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	require.NoError(t, c.Run(), "exit status 0\nstdout: %s\nstderr: %s", &stdout, &stderr)
	require.Contains(t, stdout.String(), "usage: hookd project update NAME")
	require.Contains(t, stdout.String(), "--retention-hours")
	require.Empty(t, stderr.String())
}
