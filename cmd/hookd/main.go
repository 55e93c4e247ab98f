// Command hookd is the hookd webhook delivery service: the API server and
// its operator commands. Run `hookd help` for the commands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// defaultGCPercent is hookd's garbage-collector target when GOGC is not set:
// a send and its delivery allocate about 40 KB (request bodies, JSON,
// database buffers) that die young, and at Go's default of 100 the
// collector took about a sixth of hookd's CPU under load. 400 cut hookd's
// CPU per message by 6-26 % in alternating runs, for about 25 MB more
// memory (docs/benchmarks.md). GOGC (and GOMEMLIMIT) still override it.
const defaultGCPercent = 400

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "hookd:", err)
		os.Exit(exitCode(err))
	}
}
