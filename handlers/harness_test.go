package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/hookd/hookd/delivery"
	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/handlers"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/internal/fakedns"
	"github.com/hookd/hookd/internal/syncbuf"
	"github.com/hookd/hookd/internal/tcpproxy"
	"github.com/hookd/hookd/internal/testclock"
	"github.com/hookd/hookd/internal/testdb"
	"github.com/hookd/hookd/metrics"
	"github.com/hookd/hookd/netguard"
	"github.com/hookd/hookd/secrets"
	"github.com/hookd/hookd/store"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"),
		goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"),
	)
}

// publicIP is the address test host names resolve to: public, so allowed.
const publicIP = "93.184.216.34"

// tenant is one project with an API key and a client that uses it.
type tenant struct {
	project store.Project
	key     string
	client  *gen.ClientWithResponses
}

// env is a running hookd API on a fresh database, with two tenants.
type env struct {
	t       testing.TB
	dialect string
	dbURL   string
	store   *store.Store
	server  *handlers.Server
	url     string
	dns     *fakedns.Resolver
	logs    *syncbuf.Buffer // everything the server logged, at debug level
	proxy   *tcpproxy.Proxy
	// stopEngine stops the delivery engine (a drain) and returns when it
	// has; set when options.engine is.
	stopEngine func()
	a, b       tenant
}

// options change what setupWith starts.
type options struct {
	// receivers allows http:// endpoints on 127.0.0.1 (the test receivers),
	// as the development allow-list does.
	receivers bool
	// engine, if set, runs a delivery engine with this config.
	engine *delivery.Config
	// caFile is trusted for https:// receivers.
	caFile string
	// proxy puts a TCP proxy between hookd and PostgreSQL (env.proxy).
	proxy bool
	// keyring, if set, replaces the random master keyring.
	keyring *secrets.Keyring
	// exports configures CSV exports; now, if set, is the server's clock.
	exports handlers.ExportOptions
	now     func() time.Time
	// server, if set, adjusts the server (limits, clock) before the router
	// is built.
	server func(*handlers.Server)
	// metrics, if set, turns metrics on with these options (Stats is the
	// test's store) and serves them at /metrics.
	metrics *metrics.Options
}

// setup starts hookd's full router on a real HTTP listener over a fresh
// database of the dialect. Every response the clients get is validated
// against openapi.yaml.
func setup(t testing.TB, dialect string) *env { return setupWith(t, dialect, options{}) }

// testEngineConfig is a delivery config with retry delays short enough for
// tests.
func testEngineConfig() *delivery.Config {
	return &delivery.Config{
		Workers:        16,
		AttemptTimeout: 2 * time.Second,
		Lease:          4 * time.Second,
		PollInterval:   20 * time.Millisecond,
		DrainTimeout:   5 * time.Second,
		Schedule: delivery.Schedule{
			Slow:          []time.Duration{300 * time.Millisecond, 600 * time.Millisecond},
			Fast:          []time.Duration{100 * time.Millisecond},
			MaxAttempts:   3,
			RetryAfterCap: 3 * time.Second,
		},
		UserAgent: "hookd/test",
		Breaker:   delivery.Breaker{ProbeBackoff: 20 * time.Millisecond, ProbeBackoffMax: 100 * time.Millisecond},
	}
}

// setupWith is setup with options.
func setupWith(t testing.TB, dialect string, o options) *env {
	t.Helper()
	ctx := context.Background()
	dbURL := testdb.New(t, dialect)
	openURL := dbURL
	var proxy *tcpproxy.Proxy
	if o.proxy {
		u, err := url.Parse(dbURL)
		require.NoError(t, err)
		proxy = tcpproxy.Start(t, u.Host)
		u.Host = proxy.Addr()
		openURL = u.String()
	}
	st, err := store.Open(ctx, store.Options{DatabaseURL: openURL})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	_, err = st.Migrate(ctx)
	require.NoError(t, err)

	kr, err := secrets.NewKeyring(secrets.GenerateMasterKey("test"))
	require.NoError(t, err)
	if o.keyring != nil {
		kr = o.keyring
	}
	dns := fakedns.New()
	for _, h := range []string{"hooks.example.com", "other.example.com", "third.example.com"} {
		dns.Set(h, publicIP)
	}
	dns.Set("internal.example.com", "10.1.2.3")
	logs := &syncbuf.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	policy := &netguard.Policy{Resolver: dns}
	if o.receivers {
		policy.AllowHTTP = true
		policy.AllowCIDRs = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	}
	srv, err := handlers.New(st, kr, policy, log)
	require.NoError(t, err)
	srv.Exports, srv.Now = o.exports, o.now
	if o.metrics != nil {
		mo := *o.metrics
		mo.Stats, mo.Logger = st, log
		srv.Metrics, err = metrics.New(mo)
		require.NoError(t, err)
		srv.ServeMetrics = true
	}
	var stopEngine func()
	if o.engine != nil {
		sender, err := delivery.NewSender(delivery.SenderOptions{Policy: policy, ExtraCAFile: o.caFile, UserAgent: o.engine.UserAgent})
		require.NoError(t, err)
		cfg := *o.engine
		if srv.Metrics != nil {
			cfg.Observer = srv.Metrics
		}
		eng, err := delivery.New(st, kr, sender, cfg, log)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = eng.Run(ctx) }()
		stopEngine = sync.OnceFunc(func() { cancel(); <-done })
		t.Cleanup(stopEngine)
	}
	if o.server != nil {
		o.server(srv)
	}
	router, err := handlers.NewRouter(srv)
	require.NoError(t, err)
	hs := httptest.NewServer(router)
	t.Cleanup(func() {
		hs.Close()
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	})

	e := &env{t: t, dialect: dialect, dbURL: dbURL, store: st, server: srv, url: hs.URL, dns: dns, logs: logs, proxy: proxy, stopEngine: stopEngine}
	e.a = e.newTenant("project-a")
	e.b = e.newTenant("project-b")
	return e
}

func (e *env) newTenant(name string) tenant {
	e.t.Helper()
	p := store.Project{ID: ids.NewUUID(), Name: name, CreatedAt: store.Now()}
	require.NoError(e.t, e.store.CreateProject(context.Background(), p))
	key, row := handlers.NewAPIKey(p.ID, "live", "test")
	require.NoError(e.t, e.store.CreateAPIKey(context.Background(), row))
	return tenant{project: p, key: key, client: e.client(key)}
}

// client returns a generated client sending key (none if "").
func (e *env) client(key string) *gen.ClientWithResponses {
	e.t.Helper()
	c, err := gen.NewClientWithResponses(e.url,
		gen.WithHTTPClient(&http.Client{Transport: &contractCheck{t: e.t, next: http.DefaultTransport}}),
		gen.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
			if key != "" {
				req.Header.Set("Authorization", "Bearer "+key)
			}
			return nil
		}))
	require.NoError(e.t, err)
	return c
}

// do sends a raw request (for inputs the generated client cannot produce)
// through the same contract check.
func (e *env) do(method, path, key, contentType string, body []byte) (int, gen.ErrorEnvelope, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	require.NoError(e.t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := (&http.Client{Transport: &contractCheck{t: e.t, next: http.DefaultTransport}}).Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	var env gen.ErrorEnvelope
	_ = json.Unmarshal(raw, &env)
	return resp.StatusCode, env, raw
}

// createEndpoint makes an endpoint for tenant tn and returns its answer.
func (e *env) createEndpoint(tn tenant, url string) gen.EndpointCreated {
	e.t.Helper()
	r, err := tn.client.CreateEndpointWithResponse(context.Background(), gen.CreateEndpointRequest{Url: url})
	require.NoError(e.t, err)
	require.Equal(e.t, http.StatusCreated, r.StatusCode(), string(r.Body))
	return r.JSON201.Data
}

// snapshot renders every resource row (last_used_at aside) so a test can
// prove a request changed nothing.
func (e *env) snapshot() string {
	e.t.Helper()
	var sb strings.Builder
	for _, table := range []string{"projects", "api_keys", "endpoints", "signing_keys"} {
		rows, err := e.store.DB().Query("SELECT * FROM " + table + " ORDER BY id")
		require.NoError(e.t, err)
		cols, err := rows.Columns()
		require.NoError(e.t, err)
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(e.t, rows.Scan(ptrs...))
			fmt.Fprintf(&sb, "%s:", table)
			for i, c := range cols {
				if c != "last_used_at" {
					fmt.Fprintf(&sb, " %s=%v", c, vals[i])
				}
			}
			sb.WriteByte('\n')
		}
		require.NoError(e.t, rows.Err())
		rows.Close() //nolint:sqlclosecheck // closed per table inside the loop
	}
	return sb.String()
}

// forEachDialect runs fn on a fresh env per database, in parallel.
func forEachDialect(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	forEachDialectWith(t, options{}, fn)
}

// forEachDialectWith is forEachDialect with options.
func forEachDialectWith(t *testing.T, o options, fn func(t *testing.T, e *env)) {
	t.Helper()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			fn(t, setupWith(t, d, o))
		})
	}
}

var (
	specOnce   = mustSpec()
	specRouter = mustRouter(specOnce)
)

func mustSpec() *openapi3.T {
	spec, err := gen.GetSpec()
	if err != nil {
		panic(err)
	}
	spec.Servers = nil
	return spec
}

func mustRouter(spec *openapi3.T) routers.Router {
	r, err := gorillamux.NewRouter(spec)
	if err != nil {
		panic(err)
	}
	return r
}

// contractCheck validates every response against openapi.yaml: its status
// must be documented for the operation and its body must match the schema.
// Responses to paths or methods the spec does not have must be the error
// envelope. It also checks that X-Request-Id equals meta.request_id.
type contractCheck struct {
	t interface {
		Errorf(format string, args ...any)
	}
	next http.RoundTripper
}

func (c *contractCheck) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	where := req.Method + " " + req.URL.Path

	rid := resp.Header.Get("X-Request-Id")
	if !strings.HasPrefix(rid, "req_") {
		c.t.Errorf("%s: X-Request-Id %q", where, rid)
	}
	// A payload read back is the user's JSON, not an envelope.
	rawPayload := resp.StatusCode == http.StatusOK && strings.HasSuffix(req.URL.Path, "/payload")
	if len(body) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && !rawPayload {
		var m struct {
			Meta struct {
				RequestID string `json:"request_id"`
			} `json:"meta"`
		}
		if err := json.Unmarshal(body, &m); err != nil || m.Meta.RequestID != rid {
			c.t.Errorf("%s: meta.request_id %q does not match X-Request-Id %q (%v)", where, m.Meta.RequestID, rid, err)
		}
	}

	route, params, routeErr := specRouter.FindRoute(req)
	if routeErr != nil {
		// Not an operation of the spec: the body must be the error envelope.
		var v any
		decodeErr := json.Unmarshal(body, &v)
		switch {
		case decodeErr != nil:
			c.t.Errorf("%s: %d with a non-JSON body %q", where, resp.StatusCode, body)
		case specOnce.Components.Schemas["ErrorEnvelope"].Value.VisitJSON(v) != nil:
			c.t.Errorf("%s: %d body is not the error envelope: %s", where, resp.StatusCode, body)
		}
		return resp, nil
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		c.t.Errorf("%s: response %d breaks openapi.yaml: %v\nbody: %s", where, resp.StatusCode, err, body)
	}
	return resp, nil
}

func readAll(t testing.TB, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// recorder collects what contractCheck reports, to test the check itself.
type recorder struct{ errs []string }

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// TestContractCheckCatchesDrift proves the response check can fail: a body
// missing a required field, an undocumented status and a mismatched request
// id are each reported.
func TestContractCheckCatchesDrift(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		status int
		body   string
		rid    string
	}{
		"MissingField":       {200, `{"data":{},"meta":{"request_id":"req_x"}}`, "req_x"},
		"UndocumentedStatus": {418, `{"error":{"code":"X","message":"m"},"meta":{"request_id":"req_x"}}`, "req_x"},
		"RequestIDMismatch":  {200, `{"data":{"status":"ok"},"meta":{"request_id":"req_y"}}`, "req_x"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("X-Request-Id", c.rid)
				w.WriteHeader(c.status)
				_, _ = w.Write([]byte(c.body))
			}))
			defer hs.Close()
			rec := &recorder{}
			resp, err := (&http.Client{Transport: &contractCheck{t: rec, next: http.DefaultTransport}}).Get(hs.URL + "/healthz")
			require.NoError(t, err)
			_ = resp.Body.Close()
			require.NotEmpty(t, rec.errs)
		})
	}
}

func jsonBody(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// clock is the handlers tests' settable clock.
type clock = testclock.Clock

// newClock starts an hour ahead of real time, so messages the test sends
// are in its past.
func newClock() *clock { return testclock.At(time.Now().UTC().Add(time.Hour).Truncate(time.Second)) }

// forEachDialectOnClock is forEachDialect with a fresh copy of start's
// fake clock per dialect, which opts builds the options around.
func forEachDialectOnClock(t *testing.T, start *clock, opts func(*clock) options, fn func(t *testing.T, e *env, clk *clock)) {
	t.Helper()
	at := start.Now()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			clk := newClockAt(at)
			fn(t, setupWith(t, d, opts(clk)), clk)
		})
	}
}

// newClockAt starts at t.
func newClockAt(t time.Time) *clock { return testclock.At(t) }
