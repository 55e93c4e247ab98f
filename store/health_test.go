package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/internal/poll"
	"github.com/hookd/hookd/store"
)

func TestEndpointHealth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p := store.BreakerPolicy{DisableAfterFailures: 4, DisableAfter: 5 * 24 * time.Hour, ProbeAfterFailures: 2,
		ProbeBackoff: time.Hour, ProbeBackoffMax: 3 * time.Hour}
	forEachDialect(t, func(t *testing.T, f fixture) {
		t.Run("CountRule", func(t *testing.T) {
			e, _ := f.endpoint(t, "https://count.example.com/hook")

			// Below the probe threshold every attempt may start.
			ok, _, err := f.s.AcquireProbe(ctx, e.ID, p, time.Minute)
			require.NoError(t, err)
			require.True(t, ok)
			started := store.Now()
			for i := 1; i <= 3; i++ {
				r, err := f.s.RecordEndpointFailure(ctx, e.ID, started, "HTTP 500", p)
				require.NoError(t, err)
				require.Equal(t, i, r.ConsecutiveFailures)
				require.False(t, r.Disabled)
			}
			// From the probe threshold: the wait after the 3rd failure is
			// 2 h (1 h doubled once), and nobody may start before it ends.
			// It counts from the 3rd failure, so it is what is left of 2 h
			// (hours, and bounds, not a tolerance: a 2 s wait checked to
			// ±0.5 s failed when the machine paused between the calls).
			ok, wait, err := f.s.AcquireProbe(ctx, e.ID, p, time.Minute)
			require.NoError(t, err)
			require.False(t, ok)
			require.LessOrEqual(t, wait, 2*time.Hour)
			require.GreaterOrEqual(t, wait, 2*time.Hour-store.Now().Sub(started))

			r, err := f.s.RecordEndpointFailure(ctx, e.ID, started, "HTTP 503", p)
			require.NoError(t, err)
			require.True(t, r.Disabled)
			require.Contains(t, r.Reason, "4 failed attempts in a row")
			require.Contains(t, r.Reason, "HTTP 503")
			got, err := f.s.GetEndpoint(ctx, f.project.ID, e.ID)
			require.NoError(t, err)
			require.True(t, got.Paused)
			require.NotNil(t, got.DisabledAt)
			require.Equal(t, r.Reason, *got.DisabledReason)

			// A further failure (an attempt that was in flight) does not
			// disable it again; resume clears everything.
			r, err = f.s.RecordEndpointFailure(ctx, e.ID, started, "HTTP 500", p)
			require.NoError(t, err)
			require.False(t, r.Disabled)
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
		})
		t.Run("TimeRule", func(t *testing.T) {
			e, _ := f.endpoint(t, "https://time.example.com/hook")
			r, err := f.s.RecordEndpointFailure(ctx, e.ID, store.Now().Add(-6*24*time.Hour), "connection refused", p)
			require.NoError(t, err)
			require.True(t, r.Disabled, "failing for six days disables at once")
			require.Equal(t, 1, r.ConsecutiveFailures)
		})
		t.Run("OneProbeAtATime", func(t *testing.T) {
			e, _ := f.endpoint(t, "https://probe.example.com/hook")
			quick := p
			quick.ProbeBackoff, quick.ProbeBackoffMax = time.Millisecond, time.Millisecond
			for range 2 {
				_, err := f.s.RecordEndpointFailure(ctx, e.ID, store.Now(), "HTTP 500", quick)
				require.NoError(t, err)
			}
			// Refused while the 1 ms spacing wait lasts (a refusal changes
			// nothing), then one probe may start.
			poll.Until(t, time.Minute, func() bool {
				ok, _, err := f.s.AcquireProbe(ctx, e.ID, quick, time.Minute)
				require.NoError(t, err)
				return ok
			}, "the spacing wait is over: one probe may start")
			ok, wait, err := f.s.AcquireProbe(ctx, e.ID, quick, time.Minute)
			require.NoError(t, err)
			require.False(t, ok, "a second probe while the first is in flight")
			require.LessOrEqual(t, wait, time.Millisecond, "waiters ask again soon: the probe may answer any moment")

			// A probe given back without an answer (rate limit, drain) lets
			// the next one start at once, the run of failures unchanged.
			require.NoError(t, f.s.ReleaseProbe(ctx, e.ID))
			ok, _, err = f.s.AcquireProbe(ctx, e.ID, quick, time.Minute)
			require.NoError(t, err)
			require.True(t, ok, "the released probe can be taken again")
			ok, _, err = f.s.AcquireProbe(ctx, e.ID, quick, time.Minute)
			require.NoError(t, err)
			require.False(t, ok, "and is held again")

			// An answer ends the run: everyone may start again.
			require.NoError(t, f.s.ResetEndpointHealth(ctx, e.ID))
			ok, _, err = f.s.AcquireProbe(ctx, e.ID, quick, time.Minute)
			require.NoError(t, err)
			require.True(t, ok)
			got, err := f.s.GetEndpoint(ctx, f.project.ID, e.ID)
			require.NoError(t, err)
			require.Zero(t, got.ConsecutiveFailures)
			require.Nil(t, got.ProbeLeaseUntil)
		})
	})
}
