package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/gen"
)

// slowRetries is the test engine with retries an hour apart, so a message
// stays pending_retry until an operator acts.
func slowRetries() options {
	cfg := testEngineConfig()
	cfg.Schedule.Slow = []time.Duration{time.Hour}
	cfg.Schedule.Fast = []time.Duration{time.Hour}
	return options{receivers: true, engine: cfg}
}

// switchable answers fail until ok is set.
type switchable struct{ ok atomic.Bool }

func (s *switchable) handle(_ int, w http.ResponseWriter, _ *http.Request) {
	if !s.ok.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
}

func TestRetryNowCancelAndReplay(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, slowRetries(), func(t *testing.T, e *env) {
		ctx := context.Background()
		sw := &switchable{}
		rc := newReceiver(t, sw.handle)
		ep := e.createEndpoint(e.a, rc.url("/ops"))
		_, res, _ := e.send(e.a.key, `{"endpoint_id":"`+ep.Id+`","payload":{"n":1}}`)
		m := e.waitStatus(res.MessageId, "pending_retry", patience)
		require.Equal(t, 1, m.AttemptCount)
		require.True(t, m.NextAttemptAt.After(time.Now().Add(50*time.Minute)))

		// Replay is refused while a retry waits; cancel and retry-now are not.
		rp, err := e.a.client.ReplayMessageWithResponse(ctx, res.MessageId)
		require.NoError(t, err)
		require.Equal(t, http.StatusConflict, rp.StatusCode())
		require.Equal(t, "RETRY_IN_PROGRESS", rp.JSON409.Error.Code)

		sw.ok.Store(true)
		asked := time.Now()
		rn, err := e.a.client.RetryNowWithResponse(ctx, res.MessageId)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, rn.StatusCode(), string(rn.Body))
		require.Equal(t, res.MessageId, rn.JSON200.Data.Id)
		require.Equal(t, res.MessageId, rn.JSON200.Data.MessageId)
		require.NotEmpty(t, rn.JSON200.Message)
		// The retry was an hour away: a second attempt now is retry-now's
		// doing (a wall-clock bound here failed on loaded machines).
		second := rc.waitFor(t, 2, patience)[1]
		require.True(t, second.at.After(asked), "the second attempt followed the retry-now")
		require.True(t, second.at.Before(*m.NextAttemptAt), "and came before the scheduled retry")
		m = e.waitStatus(res.MessageId, "succeeded", patience)
		require.Equal(t, 2, m.AttemptCount)

		// retry-now and cancel need pending_retry.
		rn, err = e.a.client.RetryNowWithResponse(ctx, res.MessageId)
		require.NoError(t, err)
		require.Equal(t, http.StatusConflict, rn.StatusCode())
		require.Equal(t, "INVALID_STATUS", rn.JSON409.Error.Code)
		require.Contains(t, rn.JSON409.Error.Message, "current: succeeded")
		cn, err := e.a.client.CancelRetryWithResponse(ctx, res.MessageId)
		require.NoError(t, err)
		require.Equal(t, http.StatusConflict, cn.StatusCode())

		// Replay a succeeded message: same id, delivered again, counted.
		rp, err = e.a.client.ReplayMessageWithResponse(ctx, res.MessageId)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, rp.StatusCode(), string(rp.Body))
		require.Equal(t, "Message queued for replay", rp.JSON200.Message)
		require.Equal(t, gen.MessageStatus("queued"), rp.JSON200.Data.Status)
		got := rc.waitFor(t, 3, patience)
		require.Equal(t, res.MessageId.String(), got[2].header.Get("X-Webhook-Id"))
		m = e.waitStatus(res.MessageId, "succeeded", patience)
		require.Equal(t, 1, m.ReplayCount)
		require.Equal(t, 3, m.AttemptCount, "attempt numbers continue")
		as := e.attempts(res.MessageId)
		require.Equal(t, []int{1, 2, 3}, []int{as[0].AttemptNo, as[1].AttemptNo, as[2].AttemptNo})

		// Cancel a waiting retry: it lands in the DLQ.
		sw.ok.Store(false)
		_, res2, _ := e.send(e.a.key, `{"endpoint_id":"`+ep.Id+`","payload":{"n":2}}`)
		e.waitStatus(res2.MessageId, "pending_retry", patience)
		cn, err = e.a.client.CancelRetryWithResponse(ctx, res2.MessageId)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, cn.StatusCode(), string(cn.Body))
		require.Equal(t, gen.MessageStatus("failed_permanent"), cn.JSON200.Data.Status)
		dlq, err := e.a.client.ListDLQWithResponse(ctx, nil)
		require.NoError(t, err)
		require.Len(t, dlq.JSON200.Data.Messages, 1)
		require.Equal(t, res2.MessageId.String(), dlq.JSON200.Data.Messages[0].MessageId)
		require.Equal(t, rc.url("/ops"), dlq.JSON200.Data.Messages[0].Endpoint)
		require.NotNil(t, dlq.JSON200.Data.Messages[0].FailedAt)
		require.False(t, dlq.JSON200.Data.HasMore)

		// DLQ replay does not count toward the replay limit.
		sw.ok.Store(true)
		dr, err := e.a.client.ReplayFromDLQWithResponse(ctx, res2.MessageId)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, dr.StatusCode(), string(dr.Body))
		m = e.waitStatus(res2.MessageId, "succeeded", patience)
		require.Equal(t, 0, m.ReplayCount)
		dr, err = e.a.client.ReplayFromDLQWithResponse(ctx, res2.MessageId)
		require.NoError(t, err)
		require.Equal(t, http.StatusConflict, dr.StatusCode(), "only failed_permanent messages are in the DLQ")
	})
}

func TestReplayLimit(t *testing.T) {
	t.Parallel()
	e := setupWith(t, "sqlite", options{receivers: true, engine: testEngineConfig()})
	rc := newReceiver(t, nil)
	ep := e.createEndpoint(e.a, rc.url("/limit"))
	_, res, _ := e.send(e.a.key, `{"endpoint_id":"`+ep.Id+`","payload":{}}`)
	e.waitStatus(res.MessageId, "succeeded", patience)
	for i := range 10 {
		rp, err := e.a.client.ReplayMessageWithResponse(context.Background(), res.MessageId)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, rp.StatusCode(), "replay %d: %s", i+1, rp.Body)
		e.waitStatus(res.MessageId, "succeeded", patience)
	}
	rp, err := e.a.client.ReplayMessageWithResponse(context.Background(), res.MessageId)
	require.NoError(t, err)
	require.Equal(t, http.StatusTooManyRequests, rp.StatusCode())
	require.Contains(t, string(rp.Body), "REPLAY_LIMIT_EXCEEDED")
	require.Len(t, rc.requests(), 11)
}

func TestBulkReplayAndDeletes(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, options{receivers: true, engine: testEngineConfig()}, func(t *testing.T, e *env) {
		ctx := context.Background()
		okRC := newReceiver(t, nil)
		badRC := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadRequest) })
		good := e.createEndpoint(e.a, okRC.url("/good"))
		bad := e.createEndpoint(e.a, badRC.url("/bad"))
		var failed, succeeded []uuid.UUID
		for i := range 3 {
			_, r, _ := e.send(e.a.key, fmt.Sprintf(`{"endpoint_id":"%s","payload":{"i":%d}}`, bad.Id, i))
			failed = append(failed, r.MessageId)
			_, r, _ = e.send(e.a.key, fmt.Sprintf(`{"endpoint_id":"%s","payload":{"i":%d}}`, good.Id, i))
			succeeded = append(succeeded, r.MessageId)
		}
		for _, id := range failed {
			e.waitStatus(id, "failed_permanent", patience)
		}
		for _, id := range succeeded {
			e.waitStatus(id, "succeeded", patience)
		}

		ra, err := e.a.client.ReplayAllMessagesWithResponse(ctx, &gen.ReplayAllMessagesParams{Status: "failed_permanent", EndpointId: &bad.Id})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, ra.StatusCode(), string(ra.Body))
		require.Equal(t, 3, ra.JSON200.Data.Replayed)
		require.Len(t, ra.JSON200.Data.ReplayedMessageIds, 3)
		badRC.waitFor(t, 6, patience)
		for _, id := range failed {
			e.waitStatus(id, "failed_permanent", patience)
		}

		// replay-batch: one replayable, one unknown.
		unknown := uuid.Must(uuid.NewV7())
		rb, err := e.a.client.ReplayBatchMessagesWithResponse(ctx, gen.MessageIDList{MessageIds: []uuid.UUID{succeeded[0], unknown}})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, rb.StatusCode(), string(rb.Body))
		require.Equal(t, 1, rb.JSON200.Data.Replayed)
		require.Equal(t, 1, rb.JSON200.Data.Failed)
		require.Equal(t, gen.ReplayItemStatus("failed"), rb.JSON200.Data.Results[1].Status)
		e.waitStatus(succeeded[0], "succeeded", patience)

		// Deletes: single (idempotent), batch, all; deleted messages leave lists.
		d, err := e.a.client.DeleteMessageWithResponse(ctx, succeeded[0])
		require.NoError(t, err)
		deletedAt := d.JSON200.Data.DeletedAt
		require.False(t, deletedAt.IsZero())
		require.Equal(t, gen.MessageDeleted{MessageId: succeeded[0].String(), Deleted: true, AlreadyDeleted: false, DeletedAt: deletedAt}, d.JSON200.Data)
		d, err = e.a.client.DeleteMessageWithResponse(ctx, succeeded[0])
		require.NoError(t, err)
		require.True(t, d.JSON200.Data.AlreadyDeleted)
		require.True(t, deletedAt.Equal(d.JSON200.Data.DeletedAt), "a repeat answers the first delete's time")
		g, err := e.a.client.GetMessageWithResponse(ctx, succeeded[0])
		require.NoError(t, err)
		require.Equal(t, http.StatusNotFound, g.StatusCode())
		rp, err := e.a.client.ReplayMessageWithResponse(ctx, succeeded[0])
		require.NoError(t, err)
		require.Equal(t, http.StatusNotFound, rp.StatusCode(), "deleted messages are never delivered again")

		db, err := e.a.client.DeleteMessagesBatchWithResponse(ctx, gen.MessageIDList{MessageIds: []uuid.UUID{succeeded[1], succeeded[0], unknown}})
		require.NoError(t, err)
		require.Equal(t, 1, db.JSON200.Data.DeletedCount)
		require.Equal(t, 1, db.JSON200.Data.AlreadyDeletedCount)
		require.Equal(t, 1, db.JSON200.Data.NotFoundCount)
		require.Equal(t, succeeded[1].String(), db.JSON200.Data.Results[0].MessageId)
		require.Equal(t, gen.DeleteOutcomeOutcomeDeleted, db.JSON200.Data.Results[0].Outcome)

		st := gen.MessageStatus("failed_permanent")
		da, err := e.a.client.DeleteAllMessagesWithResponse(ctx, &gen.DeleteAllMessagesParams{Status: &st})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, da.StatusCode(), string(da.Body))
		require.Equal(t, 3, da.JSON200.Data.Deleted)
		logs, err := e.a.client.GetLogsWithResponse(ctx, nil)
		require.NoError(t, err)
		require.Len(t, logs.JSON200.Data, 1, "only succeeded[2] is left")
		require.Equal(t, succeeded[2].String(), logs.JSON200.Data[0].MessageId)

		// Project B sees and touches none of it.
		bd, err := e.b.client.DeleteMessageWithResponse(ctx, succeeded[2])
		require.NoError(t, err)
		require.Equal(t, http.StatusNotFound, bd.StatusCode())
		ba, err := e.b.client.GetMessageAttemptsWithResponse(ctx, succeeded[2])
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, ba.StatusCode())
		require.Empty(t, ba.JSON200.Data, "another project's attempts: 200 and empty")
		bl, err := e.b.client.GetLogsWithResponse(ctx, nil)
		require.NoError(t, err)
		require.Empty(t, bl.JSON200.Data)
	})
}

func TestLogsFiltersAndPages(t *testing.T) {
	t.Parallel()
	e := setup(t, "postgres") // no engine: messages stay queued
	ctx := context.Background()
	a := e.createEndpoint(e.a, "https://hooks.example.com/a")
	b := e.createEndpoint(e.a, "https://other.example.com/b")
	var ids []string
	for i := range 7 {
		ep := a.Id
		if i%2 == 1 {
			ep = b.Id
		}
		_, r, _ := e.send(e.a.key, fmt.Sprintf(`{"endpoint_id":"%s","payload":{"i":%d}}`, ep, i))
		ids = append([]string{r.MessageId.String()}, ids...)
	}
	var got []string
	var cursor *string
	for {
		r, err := e.a.client.GetLogsWithResponse(ctx, &gen.GetLogsParams{Limit: ptr(3), Cursor: cursor})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, r.StatusCode(), string(r.Body))
		for _, m := range r.JSON200.Data {
			got = append(got, m.MessageId)
		}
		if !r.JSON200.Meta.HasMore {
			break
		}
		cursor = r.JSON200.Meta.NextCursor
	}
	require.Equal(t, ids, got, "newest first, no gaps, no repeats")

	r, err := e.a.client.GetLogsWithResponse(ctx, &gen.GetLogsParams{EndpointId: &b.Id})
	require.NoError(t, err)
	require.Len(t, r.JSON200.Data, 3)
	for _, m := range r.JSON200.Data {
		require.Equal(t, "https://other.example.com/b", m.Endpoint)
	}
	queued := gen.MessageStatus("queued")
	r, err = e.a.client.GetLogsWithResponse(ctx, &gen.GetLogsParams{Status: &queued})
	require.NoError(t, err)
	require.Len(t, r.JSON200.Data, 7)
	future := time.Now().Add(time.Hour)
	r, err = e.a.client.GetLogsWithResponse(ctx, &gen.GetLogsParams{StartTime: &future})
	require.NoError(t, err)
	require.Empty(t, r.JSON200.Data)
	r, err = e.a.client.GetLogsWithResponse(ctx, &gen.GetLogsParams{EndTime: &future})
	require.NoError(t, err)
	require.Len(t, r.JSON200.Data, 7)
}

func TestSendRulesAndIdempotency(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, e *env) {
		ep := e.createEndpoint(e.a, "https://hooks.example.com/send")
		other := e.createEndpoint(e.b, "https://hooks.example.com/b")
		body := func(payload, extra string) string {
			return `{"endpoint_id":"` + ep.Id + `","payload":` + payload + extra + `}`
		}
		before := e.snapshot()
		bad := []struct {
			name, body string
			status     int
			code       string
		}{
			{"PayloadNotObject", body(`[1,2]`, ""), 400, "INVALID_REQUEST"},
			{"PayloadMissing", `{"endpoint_id":"` + ep.Id + `"}`, 400, "INVALID_REQUEST"},
			{"BadEndpointID", `{"endpoint_id":"ep_x","payload":{}}`, 400, "INVALID_REQUEST"},
			{"UnknownEndpoint", `{"endpoint_id":"ep_` + strings.Repeat("0", 32) + `","payload":{}}`, 404, "ENDPOINT_NOT_FOUND"},
			{"ForeignEndpoint", `{"endpoint_id":"` + other.Id + `","payload":{}}`, 404, "ENDPOINT_NOT_FOUND"},
			{"TooLarge", body(`{"a":"`+strings.Repeat("x", 1<<20)+`"}`, ""), 400, "PAYLOAD_TOO_LARGE"},
			{"BodyTooLarge", body(`{"a":"`+strings.Repeat("x", 2<<20)+`"}`, ""), 400, "PAYLOAD_TOO_LARGE"},
			{"ForbiddenHeader", body(`{}`, `,"headers":{"Host":"x"}`), 400, "INVALID_HEADERS"},
			{"BadIdempotencyKey", body(`{}`, `,"idempotency_key":"no spaces"`), 400, "INVALID_REQUEST"},
			{"LongIdempotencyKey", body(`{}`, `,"idempotency_key":"`+strings.Repeat("k", 256)+`"`), 400, "INVALID_REQUEST"},
			{"RetentionTooLong", body(`{}`, `,"retention_hours":2161`), 400, "INVALID_REQUEST"},
		}
		for _, c := range bad {
			status, _, env := e.send(e.a.key, c.body)
			require.Equal(t, c.status, status, "%s: %s\n%s", c.name, env.Error.Message, e.logs.String()[max(0, len(e.logs.String())-600):])
			require.Equal(t, c.code, env.Error.Code, c.name)
		}
		require.Equal(t, before, e.snapshot())
		var n int
		require.NoError(t, e.store.DB().QueryRow("SELECT count(*) FROM messages").Scan(&n))
		require.Zero(t, n, "no bad send stored a message")

		// Exactly 1 MiB of payload is accepted.
		exact := `{"a":"` + strings.Repeat("x", 1<<20-8) + `"}`
		require.Len(t, exact, 1<<20)
		status, _, _ := e.send(e.a.key, body(exact, ""))
		require.Equal(t, http.StatusAccepted, status)

		// Idempotency: 20 identical sends at once make one message.
		const k = `,"idempotency_key":"order-42"`
		statuses := make([]int, 20)
		ids := make([]uuid.UUID, 20)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 20 {
			wg.Go(func() { // no require here: it must run on the test goroutine
				<-start
				st, r, _, err := e.trySend(e.a.key, body(`{"order":42}`, k))
				if err != nil {
					t.Errorf("send %d: %v", i, err)
				}
				statuses[i], ids[i] = st, r.MessageId
			})
		}
		close(start)
		wg.Wait()
		created := 0
		for i := range 20 {
			require.Contains(t, []int{200, 202}, statuses[i])
			if statuses[i] == 202 {
				created++
			}
			require.Equal(t, ids[0], ids[i])
		}
		require.Equal(t, 1, created)
		status, r, _ := e.send(e.a.key, body(`{"order":42}`, k))
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, ids[0], r.MessageId)
		status, _, env := e.send(e.a.key, body(`{"order":43}`, k))
		require.Equal(t, http.StatusConflict, status)
		require.Equal(t, "IDEMPOTENCY_MISMATCH", env.Error.Code)
		// The same key on another endpoint is another message.
		other2 := e.createEndpoint(e.a, "https://other.example.com/x")
		status, r2, _ := e.send(e.a.key, `{"endpoint_id":"`+other2.Id+`","payload":{"order":42}`+k+`}`)
		require.Equal(t, http.StatusAccepted, status)
		require.NotEqual(t, ids[0], r2.MessageId)
	})
}

func TestPauseResumeAndDeleteWithMessages(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, options{receivers: true, engine: testEngineConfig()}, func(t *testing.T, e *env) {
		ctx := context.Background()
		rc := newReceiver(t, nil)
		ep := e.createEndpoint(e.a, rc.url("/pause"))
		_, err := e.a.client.PauseEndpointWithResponse(ctx, ep.Id)
		require.NoError(t, err)
		var ids []uuid.UUID
		for i := range 3 {
			status, r, _ := e.send(e.a.key, fmt.Sprintf(`{"endpoint_id":"%s","payload":{"i":%d}}`, ep.Id, i))
			require.Equal(t, http.StatusAccepted, status)
			require.Equal(t, gen.MessageStatus("paused"), r.Status)
			ids = append(ids, r.MessageId)
		}
		// The engine has made a claim since the sends: a paused message it
		// took would have been leased (and delivered) by then.
		e.claimTurn(t)
		for _, id := range ids {
			require.Equal(t, messageRow{status: "paused"}, e.messageRow(t, id), "a paused message is left alone")
		}
		require.Empty(t, rc.requests(), "nothing is delivered while paused")
		res, err := e.a.client.ResumeEndpointWithResponse(ctx, ep.Id)
		require.NoError(t, err)
		require.Equal(t, int64(3), res.JSON200.Data.MessagesRequeued)
		rc.waitFor(t, 3, patience)
		for _, id := range ids {
			e.waitStatus(id, "succeeded", patience)
		}

		// Deleting the endpoint fails what still waits for it.
		slow := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) })
		ep2 := e.createEndpoint(e.a, slow.url("/gone"))
		_, err = e.a.client.PauseEndpointWithResponse(ctx, ep2.Id)
		require.NoError(t, err)
		_, r, _ := e.send(e.a.key, `{"endpoint_id":"`+ep2.Id+`","payload":{}}`)
		_, err = e.a.client.DeleteEndpointWithResponse(ctx, ep2.Id)
		require.NoError(t, err)
		m := e.waitStatus(r.MessageId, "failed_permanent", patience)
		require.Equal(t, "endpoint deleted", *m.LastError)
		status, _, env := e.send(e.a.key, `{"endpoint_id":"`+ep2.Id+`","payload":{}}`)
		require.Equal(t, http.StatusNotFound, status)
		require.Equal(t, "ENDPOINT_NOT_FOUND", env.Error.Code)
	})
}

// TestSendRacingResumeIsNeverLeftPaused: sends and a resume race; once the
// endpoint is active, no message may stay paused.
func TestSendRacingResumeIsNeverLeftPaused(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, e *env) { // no engine: statuses stay as stored
		ctx := context.Background()
		for round := range 5 {
			ep := e.createEndpoint(e.a, fmt.Sprintf("https://hooks.example.com/race/%d", round))
			_, err := e.a.client.PauseEndpointWithResponse(ctx, ep.Id)
			require.NoError(t, err)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range 20 {
				wg.Go(func() { // no require here: it must run on the test goroutine
					<-start
					if _, _, _, err := e.trySend(e.a.key, fmt.Sprintf(`{"endpoint_id":"%s","payload":{"i":%d}}`, ep.Id, i)); err != nil {
						t.Errorf("send %d: %v", i, err)
					}
				})
			}
			wg.Go(func() {
				<-start
				_, _ = e.a.client.ResumeEndpointWithResponse(ctx, ep.Id)
			})
			close(start)
			wg.Wait()
			var paused int
			require.NoError(t, e.store.DB().QueryRow("SELECT count(*) FROM messages WHERE endpoint_id = '"+ep.Id+"' AND status = 'paused'").Scan(&paused))
			require.Zero(t, paused, "round %d: messages left paused on an active endpoint", round)
		}
	})
}

// TestPausedRetriesAndDeletedMessages: a retry that falls due while its
// endpoint is paused is parked, and delivered after the resume; a deleted
// waiting message is never delivered.
//
// Retries are an hour apart and the test makes them fall due (fallDue): with
// the 300 ms retry of testEngineConfig, a pause that took longer than that to
// land (a loaded machine) let a second attempt run first.
func TestPausedRetriesAndDeletedMessages(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, slowRetries(), func(t *testing.T, e *env) {
		ctx := context.Background()
		sw := &switchable{}
		rc := newReceiver(t, sw.handle)
		ep := e.createEndpoint(e.a, rc.url("/parked"))
		_, res, _ := e.send(e.a.key, `{"endpoint_id":"`+ep.Id+`","payload":{"n":1}}`)
		e.waitStatus(res.MessageId, "pending_retry", patience)
		_, err := e.a.client.PauseEndpointWithResponse(ctx, ep.Id)
		require.NoError(t, err)
		m := e.waitStatus(res.MessageId, "pending_retry", time.Second)
		require.Equal(t, 1, m.AttemptCount, "a pause leaves a waiting retry waiting")
		e.fallDue(t, res.MessageId)
		m = e.waitStatus(res.MessageId, "paused", patience) // fell due, parked, no attempt
		require.Equal(t, 1, m.AttemptCount)
		require.Len(t, rc.requests(), 1)
		sw.ok.Store(true)
		r, err := e.a.client.ResumeEndpointWithResponse(ctx, ep.Id)
		require.NoError(t, err)
		require.Equal(t, int64(1), r.JSON200.Data.MessagesRequeued)
		m = e.waitStatus(res.MessageId, "succeeded", patience)
		require.Equal(t, 2, m.AttemptCount)

		// Deleted while waiting for a retry: never delivered again.
		sw.ok.Store(false)
		_, res2, _ := e.send(e.a.key, `{"endpoint_id":"`+ep.Id+`","payload":{"n":2}}`)
		e.waitStatus(res2.MessageId, "pending_retry", patience)
		before := len(rc.requests())
		d, err := e.a.client.DeleteMessageWithResponse(ctx, res2.MessageId)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, d.StatusCode())
		sw.ok.Store(true)
		e.fallDue(t, res2.MessageId)
		// A claim after the deleted retry fell due has been made: had it
		// been claimable it would have been claimed too (status delivering,
		// a lease) and attempted.
		e.claimTurn(t)
		require.Equal(t, messageRow{status: "pending_retry", attempts: 1}, e.messageRow(t, res2.MessageId), "the deleted message was not claimed")
		require.Len(t, rc.requests(), before, "a deleted message is not delivered")
	})
}

// TestAbandonedDrainLeavesNothingDelivering: when the drain deadline passes
// with attempts still hanging, they are abandoned and their messages
// released (not counted), not left delivering.
func TestAbandonedDrainLeavesNothingDelivering(t *testing.T) {
	t.Parallel()
	cfg := testEngineConfig()
	cfg.DrainTimeout = 300 * time.Millisecond
	e := setupWith(t, "postgres", options{receivers: true, engine: cfg})
	rc := newReceiver(t, func(_ int, _ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(patience): // only if the drain never gives up on it
		}
	})
	ep := e.createEndpoint(e.a, rc.url("/hang"))
	for i := range 3 {
		e.send(e.a.key, fmt.Sprintf(`{"endpoint_id":"%s","payload":{"i":%d}}`, ep.Id, i))
	}
	rc.waitFor(t, 3, patience)
	e.stopEngine()
	var delivering, queued, attempts int
	require.NoError(t, e.store.DB().QueryRow("SELECT count(*) FROM messages WHERE status = 'delivering'").Scan(&delivering))
	require.NoError(t, e.store.DB().QueryRow("SELECT count(*) FROM messages WHERE status = 'queued'").Scan(&queued))
	require.NoError(t, e.store.DB().QueryRow("SELECT count(*) FROM attempts").Scan(&attempts))
	require.Zero(t, delivering)
	require.Equal(t, 3, queued, "released for another process, attempt not counted")
	require.Zero(t, attempts)
}
