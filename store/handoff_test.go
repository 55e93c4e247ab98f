package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/store"
)

// fakeHandoff records what a store hands over.
type fakeHandoff struct {
	mu         sync.Mutex
	free       int  // reservations it grants
	refuse     bool // it says it accepts nothing (Accepting)
	asked      []string
	reserved   int
	unreserved []string
	started    []handed
}

type handed struct {
	m     store.Message
	t     store.DeliveryTarget
	token string
}

func (h *fakeHandoff) Reserve(endpointID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.asked = append(h.asked, endpointID)
	if h.free == 0 {
		return false
	}
	h.free--
	h.reserved++
	return true
}

func (h *fakeHandoff) Accepting() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.refuse
}

func (h *fakeHandoff) Waits(string) bool { return h.Accepting() }

func (h *fakeHandoff) Unreserve(endpointID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unreserved = append(h.unreserved, endpointID)
}

func (h *fakeHandoff) Start(m store.Message, t store.DeliveryTarget, token string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.started = append(h.started, handed{m, t, token})
}

// setupHandoff is a PostgreSQL store with one endpoint whose sends go to a
// fakeHandoff granting free reservations, leased for lease.
func setupHandoff(t *testing.T, free int, lease time.Duration) (fixture, store.Endpoint, store.SigningKey, *fakeHandoff) {
	t.Helper()
	f := setup(t, "postgres")
	e, k := f.endpoint(t, "https://h.example.com/")
	h := &fakeHandoff{free: free}
	f.s.SetHandoff(h, lease)
	return f, e, k, h
}

// TestHandoffAtSend: on PostgreSQL a send with a reserved worker stores the
// message queued but leased, and hands it over with its endpoint and keys
// after the commit; no claim takes it while the lease lasts, any claim does
// once it ends (the process died); a paused endpoint, an idempotent repeat
// or no free worker hands nothing over.
func TestHandoffAtSend(t *testing.T) {
	t.Parallel()
	f, e, k, h := setupHandoff(t, 2, time.Minute)
	ctx := context.Background()

	key := "once"
	sent, created, err := f.s.InsertMessage(ctx, newMessage(f.project.ID, e.ID, &key))
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, store.StatusQueued, sent.Status, "the send answers queued")
	require.Len(t, h.started, 1)
	got := h.started[0]
	require.Equal(t, sent.ID, got.m.ID)
	require.Equal(t, []byte(`{"a":1}`), got.m.Payload)
	require.Equal(t, e.URL, got.t.Endpoint.URL)
	require.Len(t, got.t.Keys, 1)
	require.Equal(t, k.ID, got.t.Keys[0].ID)
	require.Equal(t, k.SecretSealed, got.t.Keys[0].SecretSealed)
	require.NotEmpty(t, got.token)

	stored, err := f.s.GetMessage(ctx, f.project.ID, sent.ID)
	require.NoError(t, err)
	require.Equal(t, store.StatusQueued, stored.Status)
	require.NotNil(t, stored.LeaseToken)
	require.Equal(t, got.token, *stored.LeaseToken)
	require.NotNil(t, stored.LeaseUntil)

	// An idempotent repeat is not inserted: its reservation comes back.
	_, created, err = f.s.InsertMessage(ctx, newMessage(f.project.ID, e.ID, &key))
	require.NoError(t, err)
	require.False(t, created)
	require.Len(t, h.started, 1)
	require.Equal(t, []string{e.ID}, h.unreserved)

	// No free worker: stored queued without a lease, claimable at once.
	plain, _, err := f.s.InsertMessage(ctx, newMessage(f.project.ID, e.ID, nil))
	require.NoError(t, err)
	claimed, _, err := f.s.ClaimDue(ctx, "claimer", time.Minute, 10, nil)
	require.NoError(t, err)
	require.Len(t, claimed, 1, "the handed-over message is not claimed while leased")
	require.Equal(t, plain.ID, claimed[0].ID)

	// The lease is extended like a claim's (the heartbeat); once it ends
	// (the process is gone), a claim takes the message.
	require.NoError(t, f.s.ExtendLeases(ctx, map[string]string{sent.ID: got.token}, time.Hour))
	extended, err := f.s.GetMessage(ctx, f.project.ID, sent.ID)
	require.NoError(t, err)
	require.True(t, extended.LeaseUntil.After(stored.LeaseUntil.Add(30*time.Minute)), "the lease was extended")
	again, _, err := f.s.ClaimDue(ctx, "claimer2", time.Minute, 10, nil)
	require.NoError(t, err)
	require.Empty(t, again, "not while the lease lasts")
	f.ageLeases(t, 2*time.Hour, sent.ID) // the heartbeats stopped; the lease ends
	again, _, err = f.s.ClaimDue(ctx, "claimer2", time.Minute, 10, nil)
	require.NoError(t, err)
	require.Len(t, again, 1)
	require.Equal(t, sent.ID, again[0].ID)
	require.Zero(t, again[0].AttemptCount)

	// A paused endpoint's message is stored paused and not handed over.
	h.mu.Lock()
	h.free = 1
	h.mu.Unlock()
	_, err = f.s.SetEndpointPaused(ctx, f.project.ID, e.ID, true)
	require.NoError(t, err)
	paused, _, err := f.s.InsertMessage(ctx, newMessage(f.project.ID, e.ID, nil))
	require.NoError(t, err)
	require.Equal(t, store.StatusPaused, paused.Status)
	require.Len(t, h.started, 1)
	require.Equal(t, []string{e.ID, e.ID}, h.unreserved)
}

// TestHandedOverMessageIsInFlight: pausing or deleting the endpoint leaves
// a handed-over message alone (it is in flight, like a delivering one); its
// attempt is recorded and decides its status.
func TestHandedOverMessageIsInFlight(t *testing.T) {
	t.Parallel()
	f, e, _, h := setupHandoff(t, 1, time.Minute)
	ctx := context.Background()
	sent, _, err := f.s.InsertMessage(ctx, newMessage(f.project.ID, e.ID, nil))
	require.NoError(t, err)
	require.Len(t, h.started, 1)
	token := h.started[0].token

	_, err = f.s.SetEndpointPaused(ctx, f.project.ID, e.ID, true)
	require.NoError(t, err)
	require.NoError(t, f.s.DeleteEndpoint(ctx, f.project.ID, e.ID))
	m, err := f.s.GetMessage(ctx, f.project.ID, sent.ID)
	require.NoError(t, err)
	require.Equal(t, store.StatusQueued, m.Status, "in flight: not paused, not failed")

	status := 200
	no, err := f.s.RecordAttempt(ctx, token, store.Attempt{ID: "att-1", ProjectID: f.project.ID, MessageID: sent.ID,
		StartedAt: store.Now(), Outcome: "success", ResponseStatus: &status, RequestHeaders: store.Headers{}, ResponseHeaders: store.Headers{}},
		store.Outcome{Status: store.StatusSucceeded, ResponseStatus: &status, EndpointID: e.ID})
	require.NoError(t, err)
	require.Equal(t, 1, no)
	m, err = f.s.GetMessage(ctx, f.project.ID, sent.ID)
	require.NoError(t, err)
	require.Equal(t, store.StatusSucceeded, m.Status)
	require.Nil(t, m.LeaseToken)
}

// TestExpiredHandoffLeaseIsWaiting: once a handed-over message's lease has
// ended (its process died), a pause parks it like any waiting message and
// clears the stale lease, so a late record cannot overwrite the pause.
func TestExpiredHandoffLeaseIsWaiting(t *testing.T) {
	t.Parallel()
	f, e, _, h := setupHandoff(t, 1, time.Minute)
	ctx := context.Background()
	sent, _, err := f.s.InsertMessage(ctx, newMessage(f.project.ID, e.ID, nil))
	require.NoError(t, err)
	require.Len(t, h.started, 1)
	f.ageLeases(t, 2*time.Minute, sent.ID) // its process died: the lease ends
	_, err = f.s.SetEndpointPaused(ctx, f.project.ID, e.ID, true)
	require.NoError(t, err)
	m, err := f.s.GetMessage(ctx, f.project.ID, sent.ID)
	require.NoError(t, err)
	require.Equal(t, store.StatusPaused, m.Status)
	require.Nil(t, m.LeaseToken)
	require.Nil(t, m.LeaseUntil)
}

// TestHandoffAtPublish: on PostgreSQL a publish hands each message whose
// endpoint has a free worker to that worker after the commit, leased, with
// its endpoint and keys, as a send does; a paused or FIFO endpoint's
// message is never offered, one without a free worker is queued for the
// claimers; an idempotent repeat or a publish that fails hands nothing
// over and gives back every reservation.
func TestHandoffAtPublish(t *testing.T) {
	t.Parallel()
	f, e1, k1, h := setupHandoff(t, 2, time.Minute)
	ctx := context.Background()
	e2, _ := f.endpoint(t, "https://h2.example.com/")
	e3, _ := f.endpoint(t, "https://h3.example.com/")
	paused, _ := f.endpoint(t, "https://paused.example.com/")
	fifo, _ := f.endpoint(t, "https://fifo.example.com/")
	_, err := f.s.SetEndpointPaused(ctx, f.project.ID, paused.ID, true)
	require.NoError(t, err)
	_, err = f.s.DB().Exec(`UPDATE endpoints SET ordering = 'fifo' WHERE id = $1`, fifo.ID)
	require.NoError(t, err)
	plain := map[string]bool{e1.ID: true, e2.ID: true, e3.ID: true}

	publish := func(key string) (store.Event, []store.Message, bool, error) {
		m := newMessage(f.project.ID, "", nil)
		typ, evID := "order.created", ids.NewUUID()
		m.EventType, m.EventID = &typ, &evID
		ev := store.Event{ID: evID, ProjectID: f.project.ID, EventType: typ, IdempotencyKey: &key, PayloadSHA256: "sha", CreatedAt: m.CreatedAt}
		return f.s.PublishEvent(ctx, ev, m, ids.NewUUID, func(store.Endpoint) bool { return true })
	}
	ev, msgs, created, err := publish("first")
	require.NoError(t, err)
	require.True(t, created)
	require.Len(t, msgs, 5)
	require.Equal(t, 5, ev.EndpointCount)

	// Offered: the three plain endpoints only; two had a worker.
	require.ElementsMatch(t, []string{e1.ID, e2.ID, e3.ID}, h.asked)
	require.Len(t, h.started, 2)
	require.Empty(t, h.unreserved)
	byID := map[string]store.Message{}
	for _, m := range msgs {
		byID[m.ID] = m
	}
	for _, got := range h.started {
		require.True(t, plain[got.m.EndpointID])
		require.Contains(t, byID, got.m.ID)
		require.Equal(t, got.m.EndpointID, got.t.Endpoint.ID)
		require.Equal(t, []byte(`{"a":1}`), got.m.Payload)
		require.Equal(t, ev.ID, *got.m.EventID)
		stored, err := f.s.GetMessage(ctx, f.project.ID, got.m.ID)
		require.NoError(t, err)
		require.Equal(t, store.StatusQueued, stored.Status)
		require.NotNil(t, stored.LeaseToken)
		require.Equal(t, got.token, *stored.LeaseToken)
		require.Equal(t, "order.created", *stored.EventType)
		require.Equal(t, ev.ID, *stored.EventID)
		if got.m.EndpointID == e1.ID {
			require.Len(t, got.t.Keys, 1)
			require.Equal(t, k1.SecretSealed, got.t.Keys[0].SecretSealed)
		}
	}
	require.Equal(t, h.started[0].token, h.started[1].token, "one lease token per publish")

	// The paused endpoint's message is paused; the plain one without a
	// worker and the FIFO one are claimable at once, the handed-over ones
	// are not.
	for _, m := range msgs {
		stored, err := f.s.GetMessage(ctx, f.project.ID, m.ID)
		require.NoError(t, err)
		if m.EndpointID == paused.ID {
			require.Equal(t, store.StatusPaused, stored.Status)
			require.Nil(t, stored.NextAttemptAt)
		}
		if m.EndpointID == fifo.ID {
			require.NotNil(t, stored.FIFOKey)
		}
	}
	claimed, _, err := f.s.ClaimDue(ctx, "claimer", time.Minute, 10, nil)
	require.NoError(t, err)
	var claimedEndpoints []string
	for _, m := range claimed {
		claimedEndpoints = append(claimedEndpoints, m.EndpointID)
		require.NotNil(t, m.EventType, "a claimed event message names its type (attempt spans show it)")
		require.Equal(t, "order.created", *m.EventType)
		require.NotContains(t, []string{h.started[0].m.ID, h.started[1].m.ID}, m.ID)
	}
	require.Len(t, claimedEndpoints, 2)
	require.Contains(t, claimedEndpoints, fifo.ID)

	// An idempotent repeat: the original messages, nothing handed over,
	// its reservation given back.
	h.mu.Lock()
	h.free = 1
	h.mu.Unlock()
	again, againMsgs, created, err := publish("first")
	require.NoError(t, err)
	require.False(t, created)
	require.Equal(t, ev.ID, again.ID)
	require.Len(t, againMsgs, 5)
	require.Len(t, h.started, 2)
	require.Len(t, h.unreserved, 1)

	// A publish whose insert fails stores nothing and gives back its
	// reservation.
	_, err = f.s.DB().Exec(`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.endpoint_id = '` + fifo.ID + `' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$`)
	require.NoError(t, err)
	_, err = f.s.DB().Exec(`CREATE TRIGGER refuse BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION refuse()`)
	require.NoError(t, err)
	h.mu.Lock()
	h.free = 1
	h.mu.Unlock()
	_, _, _, err = publish("second")
	require.Error(t, err)
	require.Len(t, h.started, 2)
	require.Len(t, h.unreserved, 2)
	var events int
	require.NoError(t, f.s.DB().QueryRow(`SELECT count(*) FROM events`).Scan(&events))
	require.Equal(t, 1, events)
}
