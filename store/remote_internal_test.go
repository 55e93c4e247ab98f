package store

import (
	"context"
	"crypto/rand"
	"strings"
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
