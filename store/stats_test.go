package store_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/store"
)

// sumStats adds up the project's (or endpoint's) rows at granularity gran.
func sumStats(t *testing.T, s *store.Store, project, endpoint string, gran int) store.StatsCounts {
	t.Helper()
	rows, err := s.StatsSince(context.Background(), project, endpoint, gran, store.Now().Add(-48*time.Hour))
	require.NoError(t, err)
	var sum store.StatsCounts
	for _, r := range rows {
		sum.Add(r.StatsCounts)
	}
	return sum
}

// TestDeletingAnEndpointCountsItsMessagesFailed: the messages an endpoint
// deletion fails are counted once each.
func TestDeletingAnEndpointCountsItsMessagesFailed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachDialect(t, func(t *testing.T, f fixture) {
		ep, _ := f.endpoint(t, "https://gone.example.com/hook")
		for range 3 {
			_, _, err := f.s.InsertMessage(ctx, newMessage(f.project.ID, ep.ID, nil))
			require.NoError(t, err)
		}
		require.NoError(t, f.s.DeleteEndpoint(ctx, f.project.ID, ep.ID))
		require.NoError(t, f.s.FlushStats(ctx))
		for _, e := range []string{ep.ID, store.AllEndpoints} {
			for _, g := range []int{store.StatsMinute, store.StatsHour} {
				got := sumStats(t, f.s, f.project.ID, e, g)
				require.Equal(t, store.StatsCounts{Total: 3, Failed: 3}, got, "endpoint %q granularity %d", e, g)
			}
		}
	})
}

// TestStatsBackfill: migration 0008 fills the counters of the messages that
// were there before it, the way the live counters would have.
func TestStatsBackfill(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachDialect(t, func(t *testing.T, f fixture) {
		ep, _ := f.endpoint(t, "https://old.example.com/hook")
		var ids []string
		for range 4 {
			m := newMessage(f.project.ID, ep.ID, nil)
			_, _, err := f.s.InsertMessage(ctx, m)
			require.NoError(t, err)
			ids = append(ids, m.ID)
		}
		set := func(id, status string, attempts int, latency *int) {
			_, err := f.s.DB().ExecContext(ctx, rebindFor(f.s, `UPDATE messages SET status = $1, attempt_count = $2, response_latency_ms = $3 WHERE id = $4`),
				status, attempts, latency, id)
			require.NoError(t, err)
		}
		ms := func(n int) *int { return &n }
		set(ids[0], store.StatusSucceeded, 1, ms(10))
		set(ids[1], store.StatusSucceeded, 3, ms(30))
		set(ids[2], store.StatusFailedPermanent, 8, nil)
		set(ids[3], store.StatusPendingRetry, 2, nil)
		// As before the migration: no counters (none pending either, or
		// the flusher could write them in between).
		require.NoError(t, f.s.FlushStats(ctx))
		_, err := f.s.DB().ExecContext(ctx, `DELETE FROM message_stats`)
		require.NoError(t, err)
		migs, err := f.s.Migrations()
		require.NoError(t, err)
		var backfill string
		for _, m := range migs {
			if m.Version == 8 {
				_, backfill, _ = strings.Cut(m.SQL, "-- backfill")
			}
		}
		require.NotEmpty(t, backfill)
		_, err = f.s.DB().ExecContext(ctx, "-- backfill"+backfill)
		require.NoError(t, err)

		for _, e := range []string{ep.ID, store.AllEndpoints} {
			for _, g := range []int{store.StatsMinute, store.StatsHour} {
				got := sumStats(t, f.s, f.project.ID, e, g)
				require.Equal(t, store.StatsCounts{Total: 4, Succeeded: 2, Failed: 1, Retries: 0 + 2 + 7 + 1, LatencySumMs: 10 + 30, LatencyCount: 2}, got, "endpoint %q granularity %d", e, g)
			}
		}
		// And the live counters add to the same rows.
		require.NoError(t, f.s.AddStats(ctx, []store.StatsDelta{{ProjectID: f.project.ID, EndpointID: ep.ID,
			Minute: store.Now().Truncate(time.Minute), StatsCounts: store.StatsCounts{Total: 1}}}))
		require.Equal(t, int64(5), sumStats(t, f.s, f.project.ID, store.AllEndpoints, store.StatsHour).Total)
		rows, err := f.s.StatsSince(ctx, f.project.ID, store.AllEndpoints, store.StatsHour, store.Now().Add(-48*time.Hour))
		require.NoError(t, err)
		require.Len(t, rows, 1, "one row per bucket: the backfill wrote the same bucket values hookd writes")
	})
}
