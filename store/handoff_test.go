package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/store"
)

// fakeHandoff records what a store hands over.
type fakeHandoff struct {
	mu         sync.Mutex
	free       int // reservations it grants
	reserved   int
	unreserved []string
	started    []handed
}

type handed struct {
	m     store.Message
	t     store.DeliveryTarget
	token string
}

func (h *fakeHandoff) Reserve(string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.free == 0 {
		return false
	}
	h.free--
	h.reserved++
	return true
}

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
