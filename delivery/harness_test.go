package delivery

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/internal/testdb"
	"github.com/hookd/hookd/netguard"
	"github.com/hookd/hookd/secrets"
	"github.com/hookd/hookd/store"
)

// The engine tested from inside: a real store of each dialect, one
// project, one endpoint (HMAC off) at a real receiver.

// forEachDialect runs fn as a parallel subtest per database dialect.
func forEachDialect(t *testing.T, fn func(t *testing.T, dialect string)) {
	t.Helper()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			fn(t, d)
		})
	}
}

// harness is an engine (not running until a test runs it) over a fresh
// store, with one project and one endpoint at a receiver answering with
// handle.
type harness struct {
	e        *Engine
	st       *store.Store
	project  store.Project
	endpoint store.Endpoint
}

func newHarness(t *testing.T, dialect string, cfg Config, handle http.HandlerFunc) harness {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{DatabaseURL: testdb.New(t, dialect)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	_, err = st.Migrate(ctx)
	require.NoError(t, err)
	p := store.Project{ID: ids.NewUUID(), Name: "engine", CreatedAt: store.Now()}
	require.NoError(t, st.CreateProject(ctx, p))
	rc := httptest.NewServer(handle)
	t.Cleanup(rc.Close)
	now := store.Now()
	ep := store.Endpoint{ID: ids.NewEndpoint(), ProjectID: p.ID, URL: rc.URL + "/e", URLNormalized: rc.URL + "/e", Headers: store.Headers{}, CreatedAt: now, UpdatedAt: now}
	key := store.SigningKey{ID: ids.NewSigningKey(), ProjectID: p.ID, EndpointID: ep.ID, MasterKeyID: "k", SecretSealed: []byte("unused: hmac off"), KeyHint: "abcd", CreatedAt: now}
	require.NoError(t, st.CreateEndpoint(ctx, ep, key))
	kr, err := secrets.NewKeyring(secrets.GenerateMasterKey("k"))
	require.NoError(t, err)
	sender, err := NewSender(SenderOptions{Policy: &netguard.Policy{AllowHTTP: true, AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}})
	require.NoError(t, err)
	e, err := New(st, kr, sender, cfg, nil)
	require.NoError(t, err)
	return harness{e: e, st: st, project: p, endpoint: ep}
}

// run runs the engine until the returned stop is called; stop returns
// Run's error.
func (h harness) run() (stop func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.e.Run(ctx) }()
	return func() error {
		cancel()
		return <-done
	}
}

// insert stores a queued message to the endpoint, due for dueFor already.
func (h harness) insert(t *testing.T, dueFor time.Duration) string {
	t.Helper()
	at := store.Now().Add(-dueFor)
	m, created, err := h.st.InsertMessage(context.Background(), store.Message{ID: ids.NewUUID(), ProjectID: h.project.ID, EndpointID: h.endpoint.ID,
		Status: store.StatusQueued, Payload: []byte(`{}`), PayloadSHA256: "x", SizeBytes: 2, Headers: store.Headers{}, NextAttemptAt: &at, CreatedAt: at, UpdatedAt: at})
	require.NoError(t, err)
	require.True(t, created)
	return m.ID
}

func (h harness) message(t *testing.T, id string) store.Message {
	t.Helper()
	m, err := h.st.GetMessage(context.Background(), h.project.ID, id)
	require.NoError(t, err)
	return m
}

// inFlight is how many worker slots the engine counts as taken.
func (h harness) inFlight() int {
	return h.e.q.Snapshot().InFlight
}
