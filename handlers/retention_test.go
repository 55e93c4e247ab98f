package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/store"
)

// TestRetentionPurgesPayloadKeepsMetadata: after the clean-up passes the
// payload retention, the message and its attempts are still there, and a
// replay answers 410 RETENTION_EXPIRED.
func TestRetentionPurgesPayloadKeepsMetadata(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, options{receivers: true, engine: testEngineConfig()}, func(t *testing.T, e *env) {
		rc := newReceiver(t, nil)
		ep := e.createEndpoint(e.a, rc.url("/hook"))
		status, res, _ := e.send(e.a.key, fmt.Sprintf(`{"endpoint_id":%q,"payload":{"secret":"x"}}`, ep.Id))
		require.Equal(t, http.StatusAccepted, status)
		e.waitStatus(res.MessageId, gen.MessageStatusSucceeded, patience)

		later := store.Now().Add(15 * 24 * time.Hour)
		cr, err := e.store.Cleanup(context.Background(), later, store.Retention{Payload: 14 * 24 * time.Hour, Metadata: 90 * 24 * time.Hour, Batch: 10})
		require.NoError(t, err)
		require.EqualValues(t, 1, cr.PayloadsPurged)

		r, err := e.a.client.ReplayMessageWithResponse(context.Background(), res.MessageId)
		require.NoError(t, err)
		require.Equal(t, http.StatusGone, r.StatusCode(), string(r.Body))
		require.Contains(t, string(r.Body), "RETENTION_EXPIRED")
		m := e.waitStatus(res.MessageId, gen.MessageStatusSucceeded, time.Second)
		require.Equal(t, 1, m.AttemptCount)
		require.Len(t, e.attempts(res.MessageId), 1)
	})
}
