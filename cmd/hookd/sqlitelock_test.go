//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/internal/syncbuf"
)

// TestOneServePerSQLiteDatabase: while a `hookd serve` (a real process)
// serves a SQLite data directory, a second serve on it refuses to start,
// naming the directory and the first process; other commands still run
// beside it. When the first process dies, even by SIGKILL, the next serve
// starts; and after that one exits cleanly, the next starts again.
func TestOneServePerSQLiteDatabase(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	args := []string{"--addr", "127.0.0.1:0", "--log-format", "json", "--data-dir", dir}

	first := exec.Command(os.Args[0], "-test.run=^$")
	first.Env = append(os.Environ(), "HOOKD_TEST_RUN_MAIN=1", "HOOKD_TEST_ARGS=serve --addr 127.0.0.1:0 --log-format json --data-dir "+dir)
	stderr, err := first.StderrPipe()
	require.NoError(t, err)
	first.Stdout = io.Discard
	require.NoError(t, first.Start())
	t.Cleanup(func() { _ = first.Process.Kill(); _ = first.Wait() })
	serving := regexp.MustCompile(`"msg":"hookd is serving"`)
	var log bytes.Buffer
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if serving.MatchString(sc.Text()) {
			break
		}
	}
	require.Regexp(t, serving, log.String(), "the first serve did not start")
	go func() { _, _ = io.Copy(io.Discard, stderr) }()

	// A second serve fails at once; it never gets to listen.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() { done <- serve(ctx, args, env(nil), io.Discard, &syncbuf.Buffer{}, ready) }()
	select {
	case err = <-done:
	case addr := <-ready:
		cancel()
		t.Fatalf("a second serve started on %s beside the first (stopped: %v)", addr, <-done)
	}
	require.Error(t, err)
	require.ErrorContains(t, err, "directory "+dir)
	require.ErrorContains(t, err, fmt.Sprintf("process %d", first.Process.Pid))
	require.ErrorContains(t, err, "only one process may serve a SQLite database")
	require.Equal(t, 1, exitCode(err))

	// Short commands run beside the server.
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"project", "create", "beside", "--data-dir", dir, "--log-format", "json"}, env(nil), &out, io.Discard))
	require.Contains(t, out.String(), `created project "beside"`)

	// A crash releases the lock: the kernel drops it with the process.
	require.NoError(t, first.Process.Kill())
	_ = first.Wait()
	_, stop := startServe(t, args, env(nil), io.Discard)
	require.NoError(t, stop())
	b, err := os.ReadFile(filepath.Join(dir, "hookd.db.lock"))
	require.NoError(t, err)
	require.Equal(t, strconv.Itoa(os.Getpid())+"\n", string(b), "the lock file names its holder")

	// A clean exit releases it too.
	_, stop = startServe(t, args, env(nil), io.Discard)
	require.NoError(t, stop())
}
