package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/internal/poll"
	"github.com/hookd/hookd/internal/testdb"
	"github.com/hookd/hookd/store"
)

func (h *fakeHandoff) counts() (asked, started int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.asked), len(h.started)
}

func (h *fakeHandoff) startedAt(i int) handed {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.started[i]
}

func (h *fakeHandoff) grant(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.free = n
}

// TestHandoffAcrossProcesses: an api process (a store that follows the
// worker processes' announcements) stores each send leased to a worker
// process it heard from, and that process, told at commit, starts the
// message with its endpoint and keys and no claim; what it has no free
// worker for it gives back, due at once; once it stops, the api process
// hears it leave and queues its sends for the claims again. A publish is
// handed over the same way.
func TestHandoffAcrossProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	api, worker, p := twoProcesses(t)
	f := fixture{s: api, project: p}
	e, k := f.endpoint(t, "https://remote.example.com/")

	require.Zero(t, api.RemoteWorkers(), "no worker heard from yet")
	h := &fakeHandoff{free: 1}
	worker.SetHandoff(h, time.Minute)
	wctx, stopWorker := context.WithCancel(ctx)
	workerDone := make(chan struct{})
	go func() { defer close(workerDone); worker.ListenDue(wctx) }()
	actx, stopAPI := context.WithCancel(ctx)
	apiDone := make(chan struct{})
	go func() { defer close(apiDone); api.HandToWorkers(actx) }()
	t.Cleanup(func() { stopWorker(); stopAPI(); <-workerDone; <-apiDone })
	poll.Until(t, time.Minute, func() bool { return api.RemoteWorkers() == 1 })

	// Handed over: the worker process starts it, leased under the api
	// process's token, and no claim sees it.
	sent, created, err := api.InsertMessage(ctx, newMessage(p.ID, e.ID, nil))
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, store.StatusQueued, sent.Status)
	poll.Until(t, time.Minute, func() bool { _, n := h.counts(); return n == 1 })
	got := h.startedAt(0)
	require.Equal(t, sent.ID, got.m.ID)
	require.Equal(t, store.StatusQueued, got.m.Status)
	require.Equal(t, []byte(`{"a":1}`), got.m.Payload)
	require.Equal(t, e.URL, got.t.Endpoint.URL)
	require.Len(t, got.t.Keys, 1)
	require.Equal(t, k.SecretSealed, got.t.Keys[0].SecretSealed)
	stored, err := api.GetMessage(ctx, p.ID, sent.ID)
	require.NoError(t, err)
	require.Equal(t, store.StatusQueued, stored.Status)
	require.NotNil(t, stored.LeaseToken)
	require.Equal(t, got.token, *stored.LeaseToken)
	require.NotNil(t, stored.LeaseUntil)
	require.True(t, stored.LeaseUntil.After(time.Now().Add(30*time.Second)), "leased for the worker's lease (a minute)")
	claimed, _, err := worker.ClaimDue(ctx, "claimer", time.Minute, 10, nil)
	require.NoError(t, err)
	require.Empty(t, claimed, "a handed-over message is not claimed while leased")

	// No free worker there for its endpoint: the message waits in the
	// worker process, leased as it was handed (no write), and starts
	// once a worker is free.
	waits, _, err := api.InsertMessage(ctx, newMessage(p.ID, e.ID, nil))
	require.NoError(t, err)
	poll.Until(t, time.Minute, func() bool { n, _ := h.counts(); return n >= 3 }, "the worker process retries for a worker")
	_, started := h.counts()
	require.Equal(t, 1, started)
	h.grant(1)
	poll.Until(t, time.Minute, func() bool { _, n := h.counts(); return n == 2 })
	got = h.startedAt(1)
	require.Equal(t, waits.ID, got.m.ID)
	stored, err = api.GetMessage(ctx, p.ID, waits.ID)
	require.NoError(t, err)
	require.NotNil(t, stored.LeaseToken)
	require.Equal(t, got.token, *stored.LeaseToken, "it ran under the lease it was handed with")

	// The worker process stops accepting (it works through a backlog)
	// while a message waits: the message is given back, due at once, and
	// a claim takes it; the api process hears it and hands it nothing
	// more until it accepts again.
	back, _, err := api.InsertMessage(ctx, newMessage(p.ID, e.ID, nil))
	require.NoError(t, err)
	asked, _ := h.counts()
	poll.Until(t, time.Minute, func() bool { n, _ := h.counts(); return n > asked }, "the message waits for a worker")
	h.mu.Lock()
	h.refuse = true
	h.mu.Unlock()
	poll.Until(t, time.Minute, func() bool {
		m, err := api.GetMessage(ctx, p.ID, back.ID)
		require.NoError(t, err)
		return m.LeaseToken == nil
	}, "the waiting message is given back")
	claimsOnly(t, worker, back.ID)
	poll.Until(t, time.Minute, func() bool { return api.RemoteWorkers() == 0 })
	sendQueued(t, api, worker, p.ID, e.ID, "not handed to a worker that accepts nothing")
	h.mu.Lock()
	h.refuse = false
	h.mu.Unlock()
	poll.Until(t, time.Minute, func() bool { return api.RemoteWorkers() == 1 })
	_, started = h.counts()
	require.Equal(t, 2, started)

	// A publish: each subscribed endpoint's message is handed over, under
	// one token.
	e2, _ := f.endpoint(t, "https://remote2.example.com/")
	h.grant(2)
	m := newMessage(p.ID, "", nil)
	typ, evID := "order.created", ids.NewUUID()
	m.EventType, m.EventID = &typ, &evID
	ev := store.Event{ID: evID, ProjectID: p.ID, EventType: typ, PayloadSHA256: "sha", CreatedAt: m.CreatedAt}
	_, msgs, created, err := api.PublishEvent(ctx, ev, m, ids.NewUUID, func(store.Endpoint) bool { return true })
	require.NoError(t, err)
	require.True(t, created)
	require.Len(t, msgs, 2)
	poll.Until(t, time.Minute, func() bool { _, n := h.counts(); return n == 4 })
	first, second := h.startedAt(2), h.startedAt(3)
	require.ElementsMatch(t, []string{e.ID, e2.ID}, []string{first.m.EndpointID, second.m.EndpointID})
	require.Equal(t, first.token, second.token)
	require.Equal(t, typ, *first.m.EventType)
	require.Equal(t, first.m.EndpointID, first.t.Endpoint.ID)

	// The worker's listening connection is cut: it listens again on a new
	// one and is handed messages again.
	listener := func() (pid int) {
		err := worker.DB().QueryRow(`SELECT coalesce(max(pid), 0) FROM pg_stat_activity
WHERE datname = current_database() AND query LIKE 'LISTEN "hookd_due"%'`).Scan(&pid)
		require.NoError(t, err)
		return pid
	}
	cut := listener()
	require.NotZero(t, cut)
	_, err = worker.DB().Exec(`SELECT pg_terminate_backend($1)`, cut)
	require.NoError(t, err)
	poll.Until(t, time.Minute, func() bool { pid := listener(); return pid != 0 && pid != cut }, "the worker listens again")
	poll.Until(t, time.Minute, func() bool { return api.RemoteWorkers() == 1 })
	h.grant(1)
	again, _, err := api.InsertMessage(ctx, newMessage(p.ID, e.ID, nil))
	require.NoError(t, err)
	poll.Until(t, time.Minute, func() bool { _, n := h.counts(); return n == 5 })
	require.Equal(t, again.ID, h.startedAt(4).m.ID)

	// The worker process stops: the api process hears it leave, and its
	// sends queue for the claims.
	stopWorker()
	poll.Until(t, time.Minute, func() bool { return api.RemoteWorkers() == 0 })
	sendQueued(t, api, api, p.ID, e.ID, "not handed to a worker that left")
}

// claimsOnly checks that a claim on s takes exactly the message id.
func claimsOnly(t *testing.T, s *store.Store, id string) {
	t.Helper()
	claimed, _, err := s.ClaimDue(context.Background(), "claimer", time.Minute, 10, nil)
	require.NoError(t, err)
	require.Len(t, claimed, 1)
	require.Equal(t, id, claimed[0].ID)
}

// sendQueued sends a message through api and checks that it was stored
// without a lease (handed to nobody) and that a claim on claimer takes it.
func sendQueued(t *testing.T, api, claimer *store.Store, projectID, endpointID, why string) {
	t.Helper()
	ctx := context.Background()
	sent, _, err := api.InsertMessage(ctx, newMessage(projectID, endpointID, nil))
	require.NoError(t, err)
	stored, err := api.GetMessage(ctx, projectID, sent.ID)
	require.NoError(t, err)
	require.Nil(t, stored.LeaseToken, why)
	claimsOnly(t, claimer, sent.ID)
}

// twoProcesses opens two stores on one fresh, migrated PostgreSQL
// database, as two processes sharing it, and creates a project.
func twoProcesses(t *testing.T) (a, b *store.Store, p store.Project) {
	t.Helper()
	ctx := context.Background()
	url := testdb.New(t, "postgres")
	open := func() *store.Store {
		s, err := store.Open(ctx, store.Options{DatabaseURL: url})
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		return s
	}
	a = open()
	_, err := a.Migrate(ctx)
	require.NoError(t, err)
	b = open()
	p = store.Project{ID: ids.NewUUID(), Name: "p-" + ids.RandomAlnum(6), CreatedAt: store.Now()}
	require.NoError(t, a.CreateProject(ctx, p))
	return a, b, p
}
