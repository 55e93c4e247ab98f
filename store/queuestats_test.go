package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/internal/testdb"
	"github.com/hookd/hookd/store"
)

// TestQueueStats: due messages are counted globally and for the busiest
// endpoints only, oldest first on ties; messages not yet due, deleted,
// delivering or paused are not due; the DLQ and disabled endpoints leave
// out deleted rows.
func TestQueueStats(t *testing.T) {
	t.Parallel()
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			queueStats(t, dialect)
		})
	}
}

func queueStats(t *testing.T, dialect string) {
	f := setup(t, dialect)
	ctx := context.Background()
	now := store.Now()

	empty, err := f.s.QueueStats(ctx, now, 5)
	require.NoError(t, err)
	require.Equal(t, store.QueueStats{}, empty)

	eps := make([]store.Endpoint, 4)
	for i := range eps {
		e, k := newEndpoint(f.project.ID, "https://q"+string(rune('a'+i))+".example.com/")
		require.NoError(t, f.s.CreateEndpoint(ctx, e, k))
		eps[i] = e
	}
	// send inserts a message whose next attempt is at `at`.
	send := func(ep store.Endpoint, at time.Time) string {
		m := newMessage(f.project.ID, ep.ID, nil)
		m.CreatedAt, m.UpdatedAt, m.NextAttemptAt = at, at, &at
		_, created, err := f.s.InsertMessage(ctx, m)
		require.NoError(t, err)
		require.True(t, created)
		return m.ID
	}
	exec := func(q string, args ...any) {
		t.Helper()
		_, err := f.s.DB().ExecContext(ctx, rebind(dialect, q), args...)
		require.NoError(t, err)
	}
	oldest := now.Add(-time.Hour)
	// eps[0]: 3 due; eps[1]: 3 due, one of them the oldest of all (so
	// it ranks first on the tie); eps[2]: 1 due, 1 due later;
	// eps[3]: nothing due.
	for range 3 {
		send(eps[0], now.Add(-time.Minute))
	}
	send(eps[1], oldest)
	send(eps[1], now.Add(-time.Second))
	send(eps[1], now)
	send(eps[2], now.Add(-2*time.Minute))
	send(eps[2], now.Add(time.Minute))
	// Not due: deleted, delivering, paused, in the DLQ.
	deleted := send(eps[3], oldest.Add(-time.Hour))
	exec("UPDATE messages SET deleted_at = ? WHERE id = ?", now, deleted)
	delivering := send(eps[3], oldest.Add(-time.Hour))
	exec("UPDATE messages SET status = 'delivering' WHERE id = ?", delivering)
	paused := send(eps[3], oldest.Add(-time.Hour))
	exec("UPDATE messages SET status = 'paused' WHERE id = ?", paused)
	for range 2 {
		dlq := send(eps[3], oldest.Add(-time.Hour))
		exec("UPDATE messages SET status = 'failed_permanent', next_attempt_at = NULL WHERE id = ?", dlq)
	}
	exec("UPDATE messages SET deleted_at = ? WHERE id = ?", now, send(eps[3], oldest))
	dlqDeleted := send(eps[3], oldest)
	exec("UPDATE messages SET status = 'failed_permanent', deleted_at = ? WHERE id = ?", now, dlqDeleted)
	// Disabled endpoints: eps[3] counts, a deleted one does not.
	exec("UPDATE endpoints SET disabled_at = ?, paused = ? WHERE id = ?", now, true, eps[3].ID)
	gone, _ := f.endpoint(t, "https://gone.example.com/")
	exec("UPDATE endpoints SET disabled_at = ?, deleted_at = ? WHERE id = ?", now, now, gone.ID)

	got, err := f.s.QueueStats(ctx, now, 2)
	require.NoError(t, err)
	require.Equal(t, int64(7), got.Due)
	require.True(t, oldest.Equal(got.OldestDue), "oldest due %s, want %s", got.OldestDue, oldest)
	require.Equal(t, []store.EndpointDue{
		{EndpointID: eps[1].ID, Due: 3, OldestDue: oldest},
		{EndpointID: eps[0].ID, Due: 3, OldestDue: now.Add(-time.Minute)},
	}, got.Endpoints)
	require.Equal(t, int64(2), got.DLQ)
	require.Equal(t, int64(1), got.DisabledEndpoints)

	all, err := f.s.QueueStats(ctx, now, 10)
	require.NoError(t, err)
	require.Len(t, all.Endpoints, 3, "only endpoints with due messages")
	require.Equal(t, store.EndpointDue{EndpointID: eps[2].ID, Due: 1, OldestDue: now.Add(-2 * time.Minute)}, all.Endpoints[2])

	none, err := f.s.QueueStats(ctx, now, 0)
	require.NoError(t, err)
	require.Empty(t, none.Endpoints)
	require.Equal(t, int64(7), none.Due, "the totals do not depend on the endpoint limit")
	require.True(t, oldest.Equal(none.OldestDue))

	later, err := f.s.QueueStats(ctx, now.Add(2*time.Minute), 1)
	require.NoError(t, err)
	require.Equal(t, int64(8), later.Due, "the later message fell due")
}

// rebind turns ? placeholders into $n on PostgreSQL.
func rebind(dialect, q string) string {
	if dialect != store.Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
