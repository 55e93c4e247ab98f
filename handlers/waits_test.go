package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/store"
)

// Helpers that let tests wait for what the engine did instead of sleeping
// for as long as it usually takes: a test that sleeps fails on a loaded
// machine, or proves nothing on a fast one.

// patience bounds the condition waits of these tests. A passing test never
// waits it out; it only says how long a failing one takes to fail.
const patience = time.Minute

// fallDue moves each message's scheduled attempt, if it has one, to the
// past, as the passing of its retry delay would: the engine's schedule is
// kept in next_attempt_at, so this is the test's clock for it (a message
// with no attempt scheduled keeps none). Tests use it with retries an hour
// apart (slowRetries), so nothing falls due by itself at a moment the
// machine's speed decides.
func (e *env) fallDue(t *testing.T, ids ...uuid.UUID) {
	t.Helper()
	for _, id := range ids {
		e.exec(`UPDATE messages SET next_attempt_at = ? WHERE id = ? AND next_attempt_at IS NOT NULL`, store.Now().Add(-time.Second), id.String())
	}
}

// claimTurn returns once the engine has claimed from the queue, and
// delivered, a message that fell due after claimTurn was called. Claims take
// due messages oldest due first, and take them all while workers are free,
// so any message that was due (and claimable) before the call has been
// claimed by then too: this is how a test proves that the engine leaves a
// message alone, without sleeping for a while and hoping the engine looked.
// The marker is project b's, on an endpoint of its own, so project a's
// lists and counts do not see it; it is sent while its endpoint is paused,
// so it is not handed straight to a worker at send, and resumed, which
// queues it.
func (e *env) claimTurn(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	rc := newReceiver(t, nil)
	ep := e.createEndpoint(e.b, rc.url("/turn"))
	_, err := e.b.client.PauseEndpointWithResponse(ctx, ep.Id)
	require.NoError(t, err)
	status, res, env := e.send(e.b.key, `{"endpoint_id":"`+ep.Id+`","payload":{"turn":true}}`)
	require.Equal(t, http.StatusAccepted, status, env.Error.Message)
	require.Equal(t, gen.MessageStatus("paused"), res.Status)
	r, err := e.b.client.ResumeEndpointWithResponse(ctx, ep.Id)
	require.NoError(t, err)
	require.Equal(t, int64(1), r.JSON200.Data.MessagesRequeued)
	rc.waitFor(t, 1, patience)
}

// messageRow is what the database holds of a message, deleted or not (the
// API no longer shows a deleted one).
type messageRow struct {
	status   string
	attempts int
	leased   bool
}

func (e *env) messageRow(t *testing.T, id uuid.UUID) messageRow {
	t.Helper()
	q := `SELECT status, attempt_count, lease_token IS NOT NULL FROM messages WHERE id = ?`
	if e.dialect == "postgres" {
		q = strings.Replace(q, "?", "$1", 1)
	}
	var m messageRow
	require.NoError(t, e.store.DB().QueryRowContext(context.Background(), q, id.String()).Scan(&m.status, &m.attempts, &m.leased))
	return m
}

// trySend is send for goroutines other than the test's: it reports failures
// as an error instead of failing the test (require's FailNow may only be
// called on the test goroutine).
func (e *env) trySend(key, body string) (int, gen.SendResult, gen.ErrorEnvelope, error) {
	req, err := http.NewRequest(http.MethodPost, e.url+"/v1/webhooks/send", bytes.NewReader([]byte(body)))
	if err != nil {
		return 0, gen.SendResult{}, gen.ErrorEnvelope{}, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: &contractCheck{t: e.t, next: http.DefaultTransport}}).Do(req)
	if err != nil {
		return 0, gen.SendResult{}, gen.ErrorEnvelope{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, gen.SendResult{}, gen.ErrorEnvelope{}, err
	}
	var env gen.ErrorEnvelope
	_ = json.Unmarshal(raw, &env)
	var ok gen.SendEnvelope
	if resp.StatusCode < 300 {
		if err := json.Unmarshal(raw, &ok); err != nil {
			return resp.StatusCode, gen.SendResult{}, env, fmt.Errorf("%w: %s", err, raw)
		}
	}
	return resp.StatusCode, ok.Data, env, nil
}
