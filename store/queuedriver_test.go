package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/internal/testdb"
	"github.com/hookd/hookd/queue/queuetest"
	"github.com/hookd/hookd/store"
)

// TestQueueDriver runs the queue's driver conformance suite on each
// dialect: a group is an endpoint, a job a message sent to it.
func TestQueueDriver(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			queuetest.Run(t, func(t *testing.T) queuetest.Harness[store.Delivery] {
				f := setup(t, d)
				return queuetest.Harness[store.Delivery]{
					Driver: f.s.QueueDriver(),
					NewGroup: func(t *testing.T) string {
						e, _ := f.endpoint(t, "https://q.example.com/"+ids.RandomAlnum(8))
						return e.ID
					},
					Enqueue: func(t *testing.T, group string, due time.Time) string {
						t.Helper()
						m := newMessage(f.project.ID, group, nil)
						due = due.UTC().Truncate(time.Microsecond)
						m.NextAttemptAt, m.CreatedAt = &due, due
						stored, created, err := f.s.InsertMessage(context.Background(), m)
						require.NoError(t, err)
						require.True(t, created)
						return stored.ID
					},
					HandsOff: d == store.Postgres,
					Pause: func(t *testing.T, group string) {
						_, err := f.s.SetEndpointPaused(context.Background(), f.project.ID, group, true)
						require.NoError(t, err)
					},
				}
			})
		})
	}
}
