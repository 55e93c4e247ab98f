package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hookd/hookd/signature"
)

// listenMaxBody bounds what `hookd listen` reads of one delivery.
const listenMaxBody = 2 << 20

// listen runs a local receiver for developers: it prints every delivery and
// whether its signature verifies against the given secrets, and answers
// with a fixed status. ready, if not nil, receives the address.
func listen(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, ready chan<- string) error {
	fs := newFlagSet("listen", stderr)
	addr := fs.String("addr", "127.0.0.1:9000", "address to listen on")
	secretList := fs.String("secrets", "", "signing secrets (whsec_…) to verify with, comma-separated")
	status := fs.Int("status", 200, "HTTP status to answer every delivery with (try 500 or 429 to watch retries)")
	tolerance := fs.Duration("tolerance", signature.DefaultTolerance, "accepted clock difference of X-Webhook-Timestamp (0 disables the check)")
	// HOOKD_LISTEN_…, not serve's HOOKD_ADDR: a shell set up for serve
	// must not move the receiver onto hookd's own port.
	env := envVars{Prefix: "HOOKD_LISTEN_"}
	fs.Usage = usage(fs, "hookd listen [--addr 127.0.0.1:9000] [--secrets whsec_…,…] [--status 200]", env)
	if ok, err := commandFlags(fs, args, getenv, stdout, env); !ok {
		return err
	}
	if *status < 100 || *status > 599 {
		return fmt.Errorf("%w: --status (HOOKD_LISTEN_STATUS) must be an HTTP status (100-599)", errUsage)
	}
	secrets := splitList(*secretList)

	var mu sync.Mutex // one delivery printed at a time
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, listenMaxBody))
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(stdout, "── %s %s %s from %s\n", time.Now().Format("15:04:05.000"), r.Method, r.URL.RequestURI(), r.RemoteAddr)
		for _, h := range []string{signature.HeaderID, signature.HeaderTimestamp, "User-Agent"} {
			if v := r.Header.Get(h); v != "" {
				fmt.Fprintf(stdout, "   %s: %s\n", h, v)
			}
		}
		switch {
		case err != nil:
			fmt.Fprintf(stdout, "   body: read error: %v\n", err)
		case len(secrets) == 0:
			fmt.Fprintln(stdout, "   signature: not checked (start with --secrets to verify)")
		default:
			if verr := signature.Verify(r.Header, body, secrets, *tolerance, time.Now()); verr != nil {
				fmt.Fprintf(stdout, "   signature: INVALID (%v)\n", verr)
			} else {
				fmt.Fprintln(stdout, "   signature: valid")
			}
		}
		fmt.Fprintf(stdout, "   body (%d bytes): %s\n   answered %d\n", len(body), printable(body), *status)
		w.WriteHeader(*status)
	})
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	fmt.Fprintf(stderr, "hookd listen: receiving on http://%s/ (answering %d); point an endpoint here with the development allow-list on\n", ln.Addr(), *status)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// printable shows a body on one line, cut at 2,000 characters.
func printable(b []byte) string {
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r", `\r`), "\n", `\n`)
	if len(s) > 2000 {
		s = s[:2000] + "…"
	}
	return s
}
