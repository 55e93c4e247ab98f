package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/internal/poll"
	"github.com/hookd/hookd/internal/testdb"
	"github.com/hookd/hookd/store"
)

func newMessage(projectID, endpointID string, key *string) store.Message {
	now := store.Now()
	return store.Message{ID: ids.NewUUID(), ProjectID: projectID, EndpointID: endpointID, Status: store.StatusQueued,
		Payload: []byte(`{"a":1}`), PayloadSHA256: "sha", SizeBytes: 7, Headers: store.Headers{}, IdempotencyKey: key,
		NextAttemptAt: &now, CreatedAt: now, UpdatedAt: now}
}

// TestConcurrentSendsWithSharedKeys: producers send the same idempotency
// keys in opposite orders at once; group commit must neither deadlock nor
// fail a send, and each key makes one message.
func TestConcurrentSendsWithSharedKeys(t *testing.T) {
	t.Parallel()
	f := setup(t, "postgres")
	ctx := context.Background()
	e, _ := f.endpoint(t, "https://k.example.com/")
	const keys = 100
	var wg sync.WaitGroup
	errs := make(chan error, 40*keys)
	for g := range 20 {
		wg.Go(func() {
			for i := range keys {
				n := i
				if g%2 == 1 {
					n = keys - 1 - i
				}
				key := fmt.Sprintf("k%03d", n)
				if _, _, err := f.s.InsertMessage(ctx, newMessage(f.project.ID, e.ID, &key)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("send failed: %v", err)
	}
	counts, err := f.s.CountByStatus(ctx, f.project.ID)
	require.NoError(t, err)
	require.Equal(t, int64(keys), counts[store.StatusQueued])
}

// TestRecordsBesideHeartbeats: 300 attempts recorded concurrently, in
// random order, while leases are extended: every outcome lands, every
// attempt number is 1, nothing fails.
func TestRecordsBesideHeartbeats(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			f := setup(t, d)
			ctx := context.Background()
			e, _ := f.endpoint(t, "https://r.example.com/")
			for range 300 {
				_, _, err := f.s.InsertMessage(ctx, newMessage(f.project.ID, e.ID, nil))
				require.NoError(t, err)
			}
			claimed, _, err := f.s.ClaimDue(ctx, "tok", time.Minute, 300, nil)
			require.NoError(t, err)
			require.Len(t, claimed, 300)
			held := map[string]string{}
			for _, m := range claimed {
				held[m.ID] = "tok"
			}
			stop := make(chan struct{})
			var hb sync.WaitGroup
			hb.Go(func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(time.Millisecond):
					}
					if err := f.s.ExtendLeases(ctx, held, time.Minute); err != nil {
						t.Errorf("extend leases: %v", err)
						return
					}
				}
			})
			var wg sync.WaitGroup
			errs := make(chan error, len(claimed))
			for i := len(claimed) - 1; i >= 0; i-- {
				m := claimed[i]
				wg.Go(func() {
					a := store.Attempt{ID: ids.NewUUID(), ProjectID: m.ProjectID, MessageID: m.ID, StartedAt: store.Now(), Outcome: "success",
						RequestHeaders: store.Headers{}, ResponseHeaders: store.Headers{}}
					if _, err := f.s.RecordAttempt(ctx, "tok", a, store.Outcome{Status: store.StatusSucceeded, BudgetUsed: 1}); err != nil {
						errs <- err
					}
				})
			}
			wg.Wait()
			close(stop)
			hb.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("record failed: %v", err)
			}
			counts, err := f.s.CountByStatus(ctx, f.project.ID)
			require.NoError(t, err)
			require.Equal(t, map[string]int64{store.StatusSucceeded: 300}, counts)
			var maxNo int
			require.NoError(t, f.s.DB().QueryRow("SELECT max(attempt_no) FROM attempts").Scan(&maxNo))
			require.Equal(t, 1, maxNo)
		})
	}
}

// TestClosedStoreAnswers: a send or record after Close fails at once
// instead of waiting forever.
func TestClosedStoreAnswers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := store.Open(ctx, store.Options{DatabaseURL: testdb.NewPostgres(t)})
	require.NoError(t, err)
	_, err = s.Migrate(ctx)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	done := make(chan error, 1)
	go func() {
		_, _, err := s.InsertMessage(ctx, newMessage("p", "e", nil))
		done <- err
	}()
	select {
	case err := <-done:
		require.Error(t, err)
	case <-time.After(time.Minute): // catches a hang; an answer comes at once
		t.Fatal("a send after Close hung")
	}
}

// TestLeasesExpireUnlessExtended: a claimed message comes back after its
// lease ends, unless its holder extends the lease; released messages are
// due again without an attempt.
func TestLeasesExpireUnlessExtended(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		e, _ := f.endpoint(t, "https://l.example.com/")
		for range 2 {
			_, _, err := f.s.InsertMessage(ctx, newMessage(f.project.ID, e.ID, nil))
			require.NoError(t, err)
		}
		// A minute's lease, extended to an hour for the first message; then
		// two minutes pass (ageLeases). With a 300 ms lease and a sleep, a
		// loaded machine let the lease end before "nothing expired yet".
		claimed, _, err := f.s.ClaimDue(ctx, "tok", time.Minute, 10, nil)
		require.NoError(t, err)
		require.Len(t, claimed, 2)
		again, _, err := f.s.ClaimDue(ctx, "other", time.Minute, 10, nil)
		require.NoError(t, err)
		require.Empty(t, again, "leased messages are not claimed twice")

		require.NoError(t, f.s.ExtendLeases(ctx, map[string]string{claimed[0].ID: "tok"}, time.Hour))
		n, err := f.s.RescueExpired(ctx)
		require.NoError(t, err)
		require.Zero(t, n, "nothing expired yet")
		f.ageLeases(t, 2*time.Minute, claimed[0].ID, claimed[1].ID)
		n, err = f.s.RescueExpired(ctx)
		require.NoError(t, err)
		require.Equal(t, int64(1), n, "only the lease that was not extended expired")

		rescued, _, err := f.s.ClaimDue(ctx, "tok2", time.Minute, 10, nil)
		require.NoError(t, err)
		require.Len(t, rescued, 1)
		require.Equal(t, claimed[1].ID, rescued[0].ID)
		require.Zero(t, rescued[0].AttemptCount, "the interrupted attempt was not counted")

		require.NoError(t, f.s.ReleaseLease(ctx, rescued[0].ID, "tok2", 0))
		m, err := f.s.GetMessage(ctx, f.project.ID, rescued[0].ID)
		require.NoError(t, err)
		require.Equal(t, store.StatusQueued, m.Status, "released before any attempt: queued again")
		require.NoError(t, f.s.ReleaseLease(ctx, claimed[0].ID, "wrong-token", 0))
		m, err = f.s.GetMessage(ctx, f.project.ID, claimed[0].ID)
		require.NoError(t, err)
		require.Equal(t, store.StatusDelivering, m.Status, "only the lease holder can release")
	})
}

// TestClaimReturnsDeliveryTargets: a claim brings each message's endpoint
// (settings, health) and its signing keys, newest first, once per endpoint;
// an endpoint deleted while its message was leased comes back deleted.
func TestClaimReturnsDeliveryTargets(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		a, _ := f.endpoint(t, "https://a.example.com/")
		ka2 := newKey(f.project.ID, a.ID)
		ka2.SecretSealed, ka2.MasterKeyID = []byte("second"), "k2"
		require.NoError(t, f.s.CreateSigningKey(ctx, ka2))
		rps, burst, off := 7, 9, false
		require.NoError(t, f.s.UpdateEndpoint(ctx, f.project.ID, a.ID, store.EndpointUpdate{RateLimitRPS: &rps, Burst: &burst}))
		b, kb := f.endpoint(t, "https://b.example.com/")
		authType, authHeader, hint, standard := "header", "X-Api-Key", "…abcd", "standard_webhooks"
		require.NoError(t, f.s.UpdateEndpoint(ctx, f.project.ID, b.ID, store.EndpointUpdate{HMACEnabled: &off, SignatureScheme: &standard,
			Headers: func(store.Endpoint) (store.HeadersChange, error) {
				return store.HeadersChange{Sealed: store.SealedHeaders{KeyID: "k9", Sealed: []byte("sealed-b")}, AuthType: &authType, AuthHeader: &authHeader, AuthHint: &hint}, nil
			}}))
		require.NoError(t, f.s.UpdateEndpointHealth(ctx, b.ID, func(store.EndpointHealth, time.Time) (store.HealthChange, bool) {
			return store.HealthChange{ConsecutiveFailures: 1}, true
		}))
		for i, ep := range []string{a.ID, a.ID, b.ID} {
			m := newMessage(f.project.ID, ep, nil)
			m.Headers = store.Headers{"X-Msg": fmt.Sprint(i)}
			_, _, err := f.s.InsertMessage(ctx, m)
			require.NoError(t, err)
		}

		claimed, targets, err := f.s.ClaimDue(ctx, "tok", time.Minute, 10, nil)
		require.NoError(t, err)
		require.Len(t, claimed, 3)
		var msgHeaders []string
		for _, m := range claimed {
			require.Equal(t, []byte(`{"a":1}`), m.Payload)
			msgHeaders = append(msgHeaders, m.Headers["X-Msg"])
		}
		require.ElementsMatch(t, []string{"0", "1", "2"}, msgHeaders, "each claimed message keeps its own headers")
		require.Len(t, targets, 2)
		want, err := f.s.ListSigningKeys(ctx, f.project.ID, a.ID)
		require.NoError(t, err)
		require.Len(t, want, 2)
		ta := targets[a.ID]
		require.Equal(t, a.URL, ta.Endpoint.URL)
		require.Equal(t, store.Headers{"X-A": "b"}, ta.Endpoint.Headers)
		require.True(t, ta.Endpoint.HMACEnabled)
		require.Equal(t, 7, ta.Endpoint.RateLimitRPS)
		require.Equal(t, 9, ta.Endpoint.Burst)
		require.Nil(t, ta.Endpoint.DeletedAt)
		require.Len(t, ta.Keys, 2)
		for i, k := range ta.Keys {
			require.Equal(t, want[i].ID, k.ID, "newest first")
			require.Equal(t, want[i].MasterKeyID, k.MasterKeyID)
			require.Equal(t, want[i].SecretSealed, k.SecretSealed)
		}
		tb := targets[b.ID]
		require.False(t, tb.Endpoint.HMACEnabled)
		require.Empty(t, tb.Endpoint.Headers)
		require.Equal(t, []byte("sealed-b"), tb.Endpoint.HeadersSealed, "sealed headers come with the claim")
		require.Equal(t, "k9", *tb.Endpoint.HeadersKeyID)
		require.Equal(t, "X-Api-Key", *tb.Endpoint.AuthHeader, "the credential's header name comes with the claim")
		require.Equal(t, "standard_webhooks", tb.Endpoint.SignatureScheme)
		require.Equal(t, "hookbridge", ta.Endpoint.SignatureScheme)
		require.Nil(t, ta.Endpoint.AuthHeader)
		require.Equal(t, 1, tb.Endpoint.ConsecutiveFailures)
		require.Len(t, tb.Keys, 1)
		require.Equal(t, kb.ID, tb.Keys[0].ID)

		// Deleted while leased: the next claim shows the deletion.
		require.NoError(t, f.s.DeleteEndpoint(ctx, f.project.ID, b.ID))
		leased := make([]string, len(claimed))
		for i, m := range claimed {
			leased[i] = m.ID
		}
		f.ageLeases(t, 2*time.Minute, leased...) // the leases end
		_, err = f.s.RescueExpired(ctx)
		require.NoError(t, err)
		again, targets, err := f.s.ClaimDue(ctx, "tok2", time.Minute, 10, []string{a.ID})
		require.NoError(t, err)
		require.Len(t, again, 1)
		require.Equal(t, b.ID, again[0].EndpointID)
		require.NotNil(t, targets[b.ID].Endpoint.DeletedAt)
	})
}

// TestDueNotifications: a send in one process wakes the workers of another
// sharing the database; a process's own sends wake it once (its local
// signal), not a second time through its own notification.
func TestDueNotifications(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, b, p := twoProcesses(t)
	e, k := newEndpoint(p.ID, "https://n.example.com/")
	require.NoError(t, a.CreateEndpoint(ctx, e, k))
	go a.ListenDue(ctx)
	go b.ListenDue(ctx)

	drain := func(s *store.Store) {
		for {
			select {
			case <-s.Due():
			case <-time.After(300 * time.Millisecond):
				return
			}
		}
	}
	// The listeners connect in the background: send until b hears one.
	poll.Until(t, time.Minute, func() bool {
		_, _, err := a.InsertMessage(ctx, newMessage(p.ID, e.ID, nil))
		require.NoError(t, err)
		select {
		case <-b.Due():
			return true
		case <-time.After(100 * time.Millisecond):
			return false
		}
	}, "b never heard a's sends")
	drain(a)
	drain(b)

	_, _, err := a.InsertMessage(ctx, newMessage(p.ID, e.ID, nil))
	require.NoError(t, err)
	select {
	case <-a.Due():
	default:
		t.Fatal("the sending process was not woken")
	}
	select {
	case <-b.Due():
	case <-time.After(time.Minute):
		t.Fatal("the other process was not woken")
	}
	// A negative, so a window: b has had the notification, and a's own copy
	// of it, which a must ignore, would arrive about as soon. (Due holds one
	// signal, so no later event can show a ignored it; a wrong wake-up can
	// only be missed here, never made up.)
	select {
	case <-a.Due():
		t.Fatal("the sending process was woken twice (by its own notification)")
	case <-time.After(300 * time.Millisecond):
	}
}
