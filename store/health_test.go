package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/store"
)

// TestEndpointHealth: the store keeps the breaker's state; what to change
// is the caller's (delivery.Breaker). A change is written as decided, a
// disable pauses the endpoint and parks its queued messages (once: a
// disabled or deleted endpoint reads as not live and is not disabled
// again), concurrent updates take turns on the row, and an answer or a
// resume clears the run.
func TestEndpointHealth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachDialect(t, func(t *testing.T, f fixture) {
		read := func(id string) store.EndpointHealth {
			var got store.EndpointHealth
			require.NoError(t, f.s.UpdateEndpointHealth(ctx, id, func(h store.EndpointHealth, _ time.Time) (store.HealthChange, bool) {
				got = h
				return store.HealthChange{}, false
			}))
			return got
		}
		t.Run("WriteAndDisable", func(t *testing.T) {
			e, _ := f.endpoint(t, "https://disable.example.com/hook")
			queued, _, err := f.s.InsertMessage(ctx, newMessage(f.project.ID, e.ID, nil))
			require.NoError(t, err)
			h := read(e.ID)
			require.True(t, h.Live)
			require.Zero(t, h.ConsecutiveFailures)

			since, after := store.Now().Add(-time.Hour), store.Now().Add(time.Minute)
			require.NoError(t, f.s.UpdateEndpointHealth(ctx, e.ID, func(_ store.EndpointHealth, now time.Time) (store.HealthChange, bool) {
				require.WithinDuration(t, store.Now(), now, time.Hour, "the store's clock")
				return store.HealthChange{ConsecutiveFailures: 3, FailingSince: &since, ProbeAfter: &after}, true
			}))
			h = read(e.ID)
			require.Equal(t, 3, h.ConsecutiveFailures)
			require.True(t, since.Equal(*h.FailingSince))
			require.True(t, after.Equal(*h.ProbeAfter))
			require.Nil(t, h.ProbeLeaseUntil)
			require.True(t, h.Live)

			require.NoError(t, f.s.UpdateEndpointHealth(ctx, e.ID, func(h store.EndpointHealth, _ time.Time) (store.HealthChange, bool) {
				return store.HealthChange{ConsecutiveFailures: h.ConsecutiveFailures + 1, FailingSince: h.FailingSince, Disable: "too many failures"}, true
			}))
			got, err := f.s.GetEndpoint(ctx, f.project.ID, e.ID)
			require.NoError(t, err)
			require.True(t, got.Paused)
			require.NotNil(t, got.DisabledAt)
			require.Equal(t, "too many failures", *got.DisabledReason)
			require.Equal(t, 4, got.ConsecutiveFailures)
			m, err := f.s.GetMessage(ctx, f.project.ID, queued.ID)
			require.NoError(t, err)
			require.Equal(t, store.StatusPaused, m.Status, "a disable parks the queued messages")
			require.False(t, read(e.ID).Live, "a disabled endpoint is not live")

			// A later disable (an attempt that was in flight) changes the
			// counters only: the first reason stays.
			require.NoError(t, f.s.UpdateEndpointHealth(ctx, e.ID, func(h store.EndpointHealth, _ time.Time) (store.HealthChange, bool) {
				return store.HealthChange{ConsecutiveFailures: h.ConsecutiveFailures + 1, Disable: "again"}, true
			}))
			got, err = f.s.GetEndpoint(ctx, f.project.ID, e.ID)
			require.NoError(t, err)
			require.Equal(t, "too many failures", *got.DisabledReason)
			require.Equal(t, 5, got.ConsecutiveFailures)

			// Resume clears everything.
			_, err = f.s.SetEndpointPaused(ctx, f.project.ID, e.ID, false)
			require.NoError(t, err)
			got, err = f.s.GetEndpoint(ctx, f.project.ID, e.ID)
			require.NoError(t, err)
			require.False(t, got.Paused)
			require.Nil(t, got.DisabledAt)
			require.Nil(t, got.DisabledReason)
			require.Nil(t, got.FailingSince)
			require.Nil(t, got.ProbeAfter)
			require.Zero(t, got.ConsecutiveFailures)
			require.True(t, read(e.ID).Live)
		})
		t.Run("TakeTurns", func(t *testing.T) {
			// Each update reads the count and writes it plus one: without
			// the row lock, concurrent ones would lose increments.
			if f.s.Dialect() != store.Postgres {
				t.Skip("SQLite's one connection serializes transactions whatever the store does: only PostgreSQL can show a missing lock")
			}
			e, _ := f.endpoint(t, "https://turns.example.com/hook")
			const n = 16
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for range n {
				wg.Go(func() {
					errs <- f.s.UpdateEndpointHealth(ctx, e.ID, func(h store.EndpointHealth, _ time.Time) (store.HealthChange, bool) {
						return store.HealthChange{ConsecutiveFailures: h.ConsecutiveFailures + 1}, true
					})
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			require.Equal(t, n, read(e.ID).ConsecutiveFailures)
		})
		t.Run("ProbeAndReset", func(t *testing.T) {
			e, _ := f.endpoint(t, "https://probe.example.com/hook")
			until := store.Now().Add(time.Hour)
			require.NoError(t, f.s.UpdateEndpointHealth(ctx, e.ID, func(h store.EndpointHealth, _ time.Time) (store.HealthChange, bool) {
				return store.HealthChange{ConsecutiveFailures: 2, ProbeLeaseUntil: &until}, true
			}))
			require.NotNil(t, read(e.ID).ProbeLeaseUntil)
			require.NoError(t, f.s.ReleaseProbe(ctx, e.ID))
			h := read(e.ID)
			require.Nil(t, h.ProbeLeaseUntil, "the probe is given back")
			require.Equal(t, 2, h.ConsecutiveFailures, "the run of failures unchanged")

			require.NoError(t, f.s.ResetEndpointHealth(ctx, e.ID))
			h = read(e.ID)
			require.Zero(t, h.ConsecutiveFailures)
			require.Nil(t, h.FailingSince)
			require.Nil(t, h.ProbeAfter)
		})
		t.Run("Unknown", func(t *testing.T) {
			err := f.s.UpdateEndpointHealth(ctx, "ep_missing", func(store.EndpointHealth, time.Time) (store.HealthChange, bool) {
				t.Error("decide must not be called for a missing endpoint")
				return store.HealthChange{}, false
			})
			require.ErrorIs(t, err, store.ErrNotFound)
		})
	})
}
