package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/hookd/hookd/signature"
)

// listenMaxBody bounds what `hookd listen` reads of one delivery.
const listenMaxBody = 2 << 20

const listenSynopsis = `hookd listen [--addr 127.0.0.1:9000] [--secrets whsec_…,…] [--status 200]
hookd listen --inbound ID --api-key hk_… [--api-url http://localhost:8080] [--forward-to URL]

A local receiver for development. For each delivery it prints the method,
path and sender, then the id and timestamp headers and User-Agent, then
every other request header sorted by name (values of credential-looking
headers, such as Authorization or X-Api-Key, masked but for their last 4
characters), whether the signature verifies against --secrets, and the body.
Both signature schemes are checked: hookd's default (X-Webhook-Signature)
and Standard Webhooks (webhook-signature), whichever the delivery carries.

With --inbound it listens to an inbound endpoint instead (like stripe
listen): it long-polls hookd for the webhooks the endpoint receives from
now on, prints each one and, with --forward-to, posts it to that local URL
with its headers and exact body, printing the answer. Create a cli-mode
endpoint for it (POST /v1/inbound-endpoints {"mode":"cli","name":…}) and
give its ingest URL to the provider.`

// listen runs a local receiver for developers: it prints every delivery and
// whether its signature verifies against the given secrets, and answers
// with a fixed status. ready, if not nil, receives the address.
func listen(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, ready chan<- string) error {
	fs := newFlagSet("listen", stderr)
	addr := fs.String("addr", "127.0.0.1:9000", "address to listen on")
	secretList := fs.String("secrets", "", "signing secrets (whsec_…) to verify with, comma-separated")
	status := fs.Int("status", 200, "HTTP status to answer every delivery with (try 500 or 429 to watch retries)")
	tolerance := fs.Duration("tolerance", signature.DefaultTolerance, "accepted clock difference of the delivery's timestamp (0 disables the check)")
	inboundID := fs.String("inbound", "", "listen to this inbound endpoint's webhooks (its id) instead of receiving deliveries")
	apiURL := fs.String("api-url", "http://localhost:8080", "with --inbound: hookd's API base URL")
	apiKey := fs.String("api-key", "", "with --inbound: an API key of the endpoint's project (hk_…)")
	forwardTo := fs.String("forward-to", "", "with --inbound: post each webhook to this local URL (empty: print only)")
	// HOOKD_LISTEN_…, not serve's HOOKD_ADDR: a shell set up for serve
	// must not move the receiver onto hookd's own port.
	env := envVars{Prefix: "HOOKD_LISTEN_"}
	fs.Usage = usage(fs, listenSynopsis, env)
	if ok, err := commandFlags(fs, args, getenv, stdout, env); !ok {
		return err
	}
	if *status < 100 || *status > 599 {
		return fmt.Errorf("%w: --status (HOOKD_LISTEN_STATUS) must be an HTTP status (100-599)", errUsage)
	}
	secrets := splitList(*secretList)
	if *inboundID != "" {
		if *apiKey == "" {
			return fmt.Errorf("%w: --inbound needs --api-key (HOOKD_LISTEN_API_KEY)", errUsage)
		}
		return listenInbound(ctx, inboundListener{api: strings.TrimSuffix(*apiURL, "/"), key: *apiKey, id: *inboundID, forwardTo: *forwardTo,
			out: stdout, errOut: stderr}, ready)
	}

	var mu sync.Mutex // one delivery printed at a time
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, listenMaxBody))
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(stdout, "── %s %s %s from %s\n", time.Now().Format("15:04:05.000"), r.Method, r.URL.RequestURI(), r.RemoteAddr)
		printHeaders(stdout, r.Header)
		switch {
		case err != nil:
			fmt.Fprintf(stdout, "   body: read error: %v\n", err)
		case len(secrets) == 0:
			fmt.Fprintln(stdout, "   signature: not checked (start with --secrets to verify)")
		default:
			verify, scheme := signature.Verify, "hookbridge"
			if signature.IsStandard(r.Header) {
				verify, scheme = signature.VerifyStandard, "standard webhooks"
			}
			if verr := verify(r.Header, body, secrets, *tolerance, time.Now()); verr != nil {
				fmt.Fprintf(stdout, "   signature: INVALID, %s scheme (%v)\n", scheme, verr)
			} else {
				fmt.Fprintf(stdout, "   signature: valid, %s scheme\n", scheme)
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

// firstHeaders are printed first, in this order; the others follow sorted.
var firstHeaders = []string{signature.HeaderID, signature.HeaderTimestamp,
	http.CanonicalHeaderKey(signature.StandardHeaderID), http.CanonicalHeaderKey(signature.StandardHeaderTimestamp), "User-Agent"}

// printHeaders prints a delivery's request headers, one line per value:
// firstHeaders, then every other header sorted by name. Values of
// credential-looking headers (credentialHeader) are masked by maskValue;
// control characters are shown escaped, so a header cannot drive the
// terminal.
func printHeaders(w io.Writer, h http.Header) {
	names := make([]string, 0, len(h))
	for name := range h {
		if !slices.Contains(firstHeaders, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range append(slices.Clone(firstHeaders), names...) {
		for _, v := range h.Values(name) {
			if credentialHeader(name) {
				v = maskValue(v)
			} else if strings.ContainsFunc(v, unicode.IsControl) {
				v = strconv.Quote(v)
			}
			fmt.Fprintf(w, "   %s: %s\n", name, v)
		}
	}
}

// credentialWords mark header names whose values listen masks: receivers
// authenticate deliveries with custom headers (hookd refuses a custom
// Authorization, so X-Api-Key and the like), and a terminal is often
// shared or recorded. Over-matching (X-Idempotency-Key) only costs
// readability.
var credentialWords = []string{"auth", "token", "secret", "passw", "key", "cookie", "session", "credential"}

// credentialHeader reports whether the header name looks like it carries a
// credential.
func credentialHeader(name string) bool {
	lower := strings.ToLower(name)
	return slices.ContainsFunc(credentialWords, func(w string) bool { return strings.Contains(lower, w) })
}

// maskValue hides a credential: an auth scheme word in front ("Bearer")
// stays, and of the rest only the last 4 characters, when it has at least
// 12, so a developer can tell which credential arrived.
func maskValue(v string) string {
	scheme, secret := "", v
	if i := strings.IndexByte(v, ' '); i > 0 && !strings.ContainsFunc(v[:i], func(r rune) bool { return !unicode.IsLetter(r) }) {
		scheme, secret = v[:i+1], strings.TrimLeft(v[i+1:], " ")
	}
	rs := []rune(secret)
	tail := ""
	if len(rs) >= 12 {
		tail = strconv.QuoteToGraphic(string(rs[len(rs)-4:]))
		tail = tail[1 : len(tail)-1]
	}
	return fmt.Sprintf("%s****%s (masked, %d characters)", scheme, tail, len(rs))
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
