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
	"github.com/hookd/hookd/internal/poll"
	"github.com/hookd/hookd/internal/testdb"
	"github.com/hookd/hookd/netguard"
	"github.com/hookd/hookd/secrets"
	"github.com/hookd/hookd/store"
)

// TestBacklogNeedsLongDueMessages: a claim that comes back full marks a
// backlog (handoffs stop, so new messages queue behind the old ones) only
// when its messages have been due longer than backlogAge. A full claim of
// messages that just fell due, such as the rest of a publish to more
// endpoints than there were free workers, leaves the handoff on; a full
// claim of long-due messages turns it off until a claim finds none.
func TestBacklogNeedsLongDueMessages(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			h := newHarness(t, d, Config{Workers: 4, ClaimBatch: 2, EndpointConcurrency: 4, AttemptTimeout: 5 * time.Second},
				func(http.ResponseWriter, *http.Request) {})
			e, st, p, ep := h.e, h.st, h.project, h.endpoint
			// The engine's clock stands still at the start, so the fresh
			// messages below have been due for no time at all however slow
			// the machine is, and the old ones for about a minute.
			start := store.Now()
			e.now = func() time.Time { return start }
			t.Cleanup(e.wg.Wait) // the attempts started finish before the store closes

			send := func(dueFor time.Duration) {
				at := store.Now().Add(-dueFor)
				_, created, err := st.InsertMessage(ctx, store.Message{ID: ids.NewUUID(), ProjectID: p.ID, EndpointID: ep.ID, Status: store.StatusQueued,
					Payload: []byte(`{}`), PayloadSHA256: "x", SizeBytes: 2, Headers: store.Headers{}, NextAttemptAt: &at, CreatedAt: at, UpdatedAt: at})
				require.NoError(t, err)
				require.True(t, created)
			}
			backlog := func() bool {
				e.mu.Lock()
				defer e.mu.Unlock()
				return e.backlog
			}
			claim := func() bool {
				full, _ := e.claimAndStart(ctx)
				return full
			}

			send(0)
			send(0)
			require.True(t, claim(), "two fresh messages fill a claim of two")
			require.False(t, backlog(), "fresh messages are no backlog")

			send(time.Minute)
			send(time.Minute)
			require.True(t, claim())
			require.True(t, backlog(), "a full claim of messages due for a minute is a backlog")

			// (A claim with no free worker leaves the backlog as it was:
			// wait for the four attempts to end.)
			poll.Until(t, time.Minute, func() bool {
				e.mu.Lock()
				defer e.mu.Unlock()
				return e.inflight == 0
			}, "the attempts end")
			require.False(t, claim(), "nothing left")
			require.False(t, backlog(), "the backlog is over")
		})
	}
}

// harness is an engine over a real store of one dialect, with one project
// and one endpoint (HMAC off) at a real receiver that answers with handle.
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
