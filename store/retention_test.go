package store_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/store"
)

func TestCleanupHonoursRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachDialect(t, func(t *testing.T, f fixture) {
		now := store.Now()
		short := store.Project{ID: ids.NewUUID(), Name: "short-" + ids.RandomAlnum(6), CreatedAt: now}
		require.NoError(t, f.s.CreateProject(ctx, short))
		one := 1
		_, err := f.s.UpdateProjectSettings(ctx, short.Name, store.ProjectSettings{RetentionHours: &one})
		require.NoError(t, err)

		epA, _ := f.endpoint(t, "https://a.example.com/hook")
		epB, k := newEndpoint(short.ID, "https://b.example.com/hook")
		require.NoError(t, f.s.CreateEndpoint(ctx, epB, k))

		// put stores a message as if it had reached status at terminal
		// (nil: never finished) with its own retention.
		put := func(ep store.Endpoint, status string, terminal *time.Time, retention *int) string {
			m := newMessage(ep.ProjectID, ep.ID, nil)
			m.RetentionHours = retention
			_, created, err := f.s.InsertMessage(ctx, m)
			require.NoError(t, err)
			require.True(t, created)
			_, err = f.s.DB().ExecContext(ctx, rebindFor(f.s, `UPDATE messages SET status = $1, terminal_at = $2 WHERE id = $3`), status, terminal, m.ID)
			require.NoError(t, err)
			_, err = f.s.DB().ExecContext(ctx, rebindFor(f.s, `INSERT INTO attempts (id, project_id, message_id, attempt_no, started_at, outcome, duration_ms)
VALUES ($1, $2, $3, 1, $4, 'success', 1)`), ids.NewUUID(), ep.ProjectID, m.ID, now)
			require.NoError(t, err)
			return m.ID
		}
		ago := func(d time.Duration) *time.Time { t := now.Add(-d); return &t }
		h48 := 48
		ids := map[string]string{
			"expired":         put(epA, store.StatusSucceeded, ago(25*time.Hour), nil),
			"fresh":           put(epA, store.StatusSucceeded, ago(23*time.Hour), nil),
			"retrying":        put(epA, store.StatusPendingRetry, nil, nil),
			"retryingOldMark": put(epA, store.StatusPendingRetry, ago(30*24*time.Hour), nil),
			"paused":          put(epA, store.StatusPaused, nil, nil),
			"shortProject":    put(epB, store.StatusFailedPermanent, ago(2*time.Hour), nil),
			"ownShort":        put(epA, store.StatusSucceeded, ago(2*time.Hour), &one),
			"ownLong":         put(epA, store.StatusSucceeded, ago(25*time.Hour), &h48),
			"ancient":         put(epA, store.StatusFailedPermanent, ago(91*24*time.Hour), nil),
		}
		deletedID := put(epA, store.StatusQueued, nil, nil)
		_, err = f.s.DeleteMessages(ctx, f.project.ID, []string{deletedID})
		require.NoError(t, err)

		r := store.Retention{Payload: 24 * time.Hour, Metadata: 90 * 24 * time.Hour, Batch: 2}
		res, err := f.s.Cleanup(ctx, now, r)
		require.NoError(t, err)
		require.EqualValues(t, 4, res.PayloadsPurged, "expired, shortProject, ownShort and ancient (before it goes)")
		require.EqualValues(t, 1, res.MessagesDeleted)

		payload := func(id string) (exists, kept bool) {
			var p []byte
			err := f.s.DB().QueryRowContext(ctx, rebindFor(f.s, `SELECT payload FROM messages WHERE id = $1`), id).Scan(&p)
			if err != nil {
				return false, false
			}
			return true, p != nil
		}
		for name, want := range map[string]bool{"expired": false, "fresh": true, "retrying": true, "retryingOldMark": true,
			"paused": true, "shortProject": false, "ownShort": false, "ownLong": true} {
			exists, kept := payload(ids[name])
			require.True(t, exists, name)
			require.Equal(t, want, kept, "payload of %s kept", name)
		}
		exists, _ := payload(ids["ancient"])
		require.False(t, exists, "metadata past 90 days is deleted")
		var attempts int
		require.NoError(t, f.s.DB().QueryRowContext(ctx, rebindFor(f.s, `SELECT count(*) FROM attempts WHERE message_id = $1`), ids["ancient"]).Scan(&attempts))
		require.Zero(t, attempts, "with its attempts")
		exists, kept := payload(deletedID)
		require.True(t, exists)
		require.True(t, kept, "a deleted message's payload waits for the retention like a finished one's")

		// Metadata stays: the message can still be read.
		m, err := f.s.GetMessage(ctx, f.project.ID, ids["expired"])
		require.NoError(t, err)
		require.Equal(t, store.StatusSucceeded, m.Status)

		// A second pass finds nothing more.
		res, err = f.s.Cleanup(ctx, now, r)
		require.NoError(t, err)
		require.Zero(t, res.PayloadsPurged+res.MessagesDeleted)
	})
}

func TestCleanupLeaseHasOneHolder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachDialect(t, func(t *testing.T, f fixture) {
		// An hour's lease, which the checks made while a holds it fit in
		// however slow the machine; then the lease is made to lapse (a 2 s
		// lease and a sleep tied the checks to the machine's speed).
		const lease = time.Hour
		ok, err := f.s.TryLead(ctx, "cleanup", "a", lease)
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = f.s.TryLead(ctx, "cleanup", "b", lease)
		require.NoError(t, err)
		require.False(t, ok, "b while a holds it")
		ok, err = f.s.TryLead(ctx, "cleanup", "a", lease)
		require.NoError(t, err)
		require.True(t, ok, "a renews")
		_, err = f.s.DB().ExecContext(ctx, rebindFor(f.s, `UPDATE leader_leases SET until = $1 WHERE name = $2`), store.Now().Add(-time.Second), "cleanup")
		require.NoError(t, err) // a's lease lapses: it stopped renewing
		ok, err = f.s.TryLead(ctx, "cleanup", "b", time.Minute)
		require.NoError(t, err)
		require.True(t, ok, "b once a's lease lapsed")
		ok, err = f.s.TryLead(ctx, "cleanup", "a", time.Minute)
		require.NoError(t, err)
		require.False(t, ok)
	})
}

// rebindFor turns $N placeholders into ? on SQLite.
func rebindFor(s *store.Store, q string) string {
	if !strings.HasPrefix(s.Where(), "sqlite:") {
		return q
	}
	return regexp.MustCompile(`\$\d+`).ReplaceAllString(q, "?")
}
