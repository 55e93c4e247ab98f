package store

import (
	"context"
	"crypto/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/internal/testdb"
)

// TestRemoteWorkersFromAnnouncements: an api process hands messages round
// robin to the workers it heard from within workerForgotten, with the
// lease each announced; a worker that says it left, or stays silent, is
// dropped; malformed announcements change nothing.
func TestRemoteWorkersFromAnnouncements(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	var r remoteWorkers
	_, ok := r.pick(t0)
	require.False(t, ok, "nobody announced")

	for _, bad := range []string{"", "hookd_take_a", "hookd_take_a x", "other 60", "hookd_take_a -1", "hookd_take_a 0"} {
		r.heard(bad, t0)
	}
	require.Zero(t, r.count(t0))

	r.heard("hookd_take_a 60", t0)
	r.heard("hookd_take_b 1.5", t0)
	require.Equal(t, 2, r.count(t0))
	seen := map[string]time.Duration{}
	for range 4 {
		w, ok := r.pick(t0)
		require.True(t, ok)
		seen[w.channel] = w.lease
	}
	require.Equal(t, map[string]time.Duration{"hookd_take_a": time.Minute, "hookd_take_b": 1500 * time.Millisecond}, seen)

	// a keeps announcing, b falls silent.
	r.heard("hookd_take_a 30", t0.Add(2*time.Second))
	later := t0.Add(workerForgotten + time.Millisecond)
	require.Equal(t, 1, r.count(later))
	for range 3 {
		w, ok := r.pick(later)
		require.True(t, ok)
		require.Equal(t, "hookd_take_a", w.channel)
		require.Equal(t, 30*time.Second, w.lease)
	}

	// a leaves.
	r.heard("hookd_take_a 0", later)
	_, ok = r.pick(later)
	require.False(t, ok)
}

// TestHandedNotificationFits: PostgreSQL takes the notification of the
// most messages one batch hands over (its payload limit is 8,000 bytes).
func TestHandedNotificationFits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, Options{DatabaseURL: testdb.New(t, "postgres")})
	require.NoError(t, err)
	defer s.Close()
	parts := []string{rand.Text()}
	for range maxHandedPerNotify {
		parts = append(parts, ids.NewUUID())
	}
	_, err = s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, takeChannel(s.instance), strings.Join(parts, " "))
	require.NoError(t, err)
	// Filled up to 8,000 bytes, it is refused: the limit is real.
	parts = append(parts, strings.Repeat("x", 8000-len(strings.Join(parts, " "))))
	_, err = s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, takeChannel(s.instance), strings.Join(parts, " "))
	require.Error(t, err)
}

// internalHandoff grants every Reserve (or none) and records Starts.
type internalHandoff struct {
	mu      sync.Mutex
	grant   bool
	started []string
}

func (h *internalHandoff) Reserve(string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.grant
}
func (h *internalHandoff) Unreserve(string)  {}
func (h *internalHandoff) Accepting() bool   { return true }
func (h *internalHandoff) Waits(string) bool { return true }
func (h *internalHandoff) Start(m Message, _ DeliveryTarget, _ string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.started = append(h.started, m.ID)
}

// TestTakeKeepsLeasesSafe: a worker process takes a handed message only
// with five sixths of its lease left (one handed long before is given
// back, due at once, for a claim), a waiting message is given back once
// it has waited a sixth of the lease, and a stopping process gives back
// every waiting one; none of them is started.
func TestTakeKeepsLeasesSafe(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, Options{DatabaseURL: testdb.New(t, "postgres")})
	require.NoError(t, err)
	defer s.Close()
	_, err = s.Migrate(ctx)
	require.NoError(t, err)
	pg := s.hot.(postgresPath)
	now := Now()
	p := Project{ID: ids.NewUUID(), Name: "p", CreatedAt: now}
	require.NoError(t, s.CreateProject(ctx, p))
	e := Endpoint{ID: ids.NewEndpoint(), ProjectID: p.ID, URL: "https://x.example.com/", URLNormalized: "https://x.example.com/", Headers: Headers{}, CreatedAt: now, UpdatedAt: now}
	require.NoError(t, s.CreateEndpoint(ctx, e, SigningKey{ID: ids.NewSigningKey(), ProjectID: p.ID, EndpointID: e.ID, MasterKeyID: "k", SecretSealed: []byte("s"), KeyHint: "h", CreatedAt: now}))
	h := &internalHandoff{grant: true}
	s.SetHandoff(h, time.Minute)

	// handed stores a message leased under token for left.
	handed := func(token string, left time.Duration) string {
		m := Message{ID: ids.NewUUID(), ProjectID: p.ID, EndpointID: e.ID, Status: StatusQueued, Payload: []byte(`{}`), PayloadSHA256: "sha",
			SizeBytes: 2, Headers: Headers{}, NextAttemptAt: &now, CreatedAt: now, UpdatedAt: now}
		s.ClearHandoff(h) // (stored by another process: not handed over here)
		_, _, err := s.InsertMessage(ctx, m)
		s.SetHandoff(h, time.Minute)
		require.NoError(t, err)
		_, err = s.pool.Exec(ctx, `UPDATE messages SET lease_token = $1, lease_until = now() + make_interval(secs => $2) WHERE id = $3`, token, left.Seconds(), m.ID)
		require.NoError(t, err)
		return m.ID
	}
	leaseOf := func(id string) *string {
		var tok *string
		require.NoError(t, s.pool.QueryRow(ctx, `SELECT lease_token FROM messages WHERE id = $1`, id).Scan(&tok))
		return tok
	}

	fresh, stale := handed("tok1", 59*time.Second), handed("tok1", 45*time.Second)
	pg.take("tok1 " + fresh + " " + stale)
	require.Equal(t, []string{fresh}, h.started, "only the one with most of its lease left")
	require.NotNil(t, leaseOf(fresh))
	require.Nil(t, leaseOf(stale), "given back, due at once")

	// No free worker: it waits; past its wait, it is given back.
	h.mu.Lock()
	h.grant = false
	h.mu.Unlock()
	waits := handed("tok2", 59*time.Second)
	pg.take("tok2 " + waits)
	require.Len(t, s.waiting.jobs, 1)
	s.waiting.jobs[0].until = time.Now().Add(-time.Millisecond)
	waiting, started := pg.retryWaiting(false)
	require.Zero(t, waiting)
	require.Zero(t, started)
	require.Nil(t, leaseOf(waits))

	// A stopping process gives back what waits.
	waits = handed("tok3", 59*time.Second)
	pg.take("tok3 " + waits)
	waiting, _ = pg.retryWaiting(false)
	require.Equal(t, 1, waiting, "still waiting for a worker")
	require.NotNil(t, leaseOf(waits))
	pg.retryWaiting(true)
	require.Nil(t, leaseOf(waits))
	require.Empty(t, s.waiting.jobs)
	require.Equal(t, []string{fresh}, h.started)
}
