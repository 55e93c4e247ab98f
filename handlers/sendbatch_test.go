package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/handlers"
	"github.com/hookd/hookd/store"
)

// sendBatch posts a raw batch and returns the answer's status, result and
// error.
func (e *env) sendBatch(key string, items ...string) (int, gen.SendBatchResult, gen.ErrorEnvelope) {
	e.t.Helper()
	status, env, raw := e.do(http.MethodPost, "/v1/webhooks/send-batch", key, "application/json", []byte(`{"messages":[`+strings.Join(items, ",")+`]}`))
	var ok gen.SendBatchEnvelope
	if status == http.StatusOK {
		require.NoError(e.t, json.Unmarshal(raw, &ok), string(raw))
	}
	return status, ok.Data, env
}

// TestSendBatch: each item of a batch gets the outcome a single send would
// have had — stored, an idempotent repeat (also of an earlier item of the
// same batch), or refused — without affecting the others; what is stored is
// delivered like any send.
func TestSendBatch(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, options{receivers: true, engine: testEngineConfig()}, func(t *testing.T, e *env) {
		ctx := context.Background()
		rc := newReceiver(t, nil)
		live := e.createEndpoint(e.a, rc.url("/live"))
		paused := e.createEndpoint(e.a, rc.url("/paused"))
		r, err := e.a.client.PauseEndpointWithResponse(ctx, paused.Id)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, r.StatusCode(), string(r.Body))
		foreign := e.createEndpoint(e.b, rc.url("/foreign"))
		item := func(ep, payload, extra string) string {
			return `{"endpoint_id":"` + ep + `","payload":` + payload + extra + `}`
		}
		big := `{"pad":"` + strings.Repeat("x", handlers.MaxPayloadBytes) + `"}`
		items := []string{
			item(live.Id, `{ "n": 0 }`, `,"idempotency_key":"k1"`),
			item(live.Id, big, ``),
			item(live.Id, `{"n":2}`, `,"headers":{"X-Webhook-Id":"mine"}`),
			item(foreign.Id, `{"n":3}`, ``),
			item(paused.Id, `{"n":4}`, ``),
			item(live.Id, `{ "n": 0 }`, `,"idempotency_key":"k1"`),
			item(live.Id, `{"n":6}`, `,"idempotency_key":"k1"`),
			item(live.Id, `{"n":7}`, ``),
		}
		status, res, env := e.sendBatch(e.a.key, items...)
		require.Equal(t, http.StatusOK, status, env.Error.Message)
		want := []struct {
			status int
			code   string
			field  string
		}{{202, "", ""}, {400, "PAYLOAD_TOO_LARGE", "/messages/1/payload"}, {400, "INVALID_HEADERS", "/messages/2/headers"},
			{404, "ENDPOINT_NOT_FOUND", "/messages/3/endpoint_id"}, {202, "", ""}, {200, "", ""}, {409, "IDEMPOTENCY_MISMATCH", ""}, {202, "", ""}}
		require.Len(t, res.Results, len(items))
		for i, w := range want {
			got := res.Results[i]
			require.Equal(t, i, got.Index)
			require.Equal(t, w.status, got.Status, "item %d: %+v", i, got.Error)
			if w.code == "" {
				require.Nil(t, got.Error)
				require.NotNil(t, got.MessageId)
				continue
			}
			require.Nil(t, got.MessageId, "item %d", i)
			require.Equal(t, w.code, got.Error.Code, "item %d", i)
			if w.field != "" {
				require.Equal(t, w.field, (*got.Error.Details)["field"], "item %d", i)
			}
		}
		require.Equal(t, 3, res.AcceptedCount)
		require.Equal(t, 1, res.DuplicateCount)
		require.Equal(t, 4, res.FailedCount)
		require.Equal(t, *res.Results[0].MessageId, *res.Results[5].MessageId, "a repeat within the batch is the original")
		require.Equal(t, gen.MessageStatus("paused"), *res.Results[4].MessageStatus)

		// Stored items are delivered byte for byte; the paused one waits.
		got := rc.waitFor(t, 2, patience)
		bodies := []string{string(got[0].body), string(got[1].body)}
		require.ElementsMatch(t, []string{`{ "n": 0 }`, `{"n":7}`}, bodies)
		e.waitStatus(*res.Results[0].MessageId, "succeeded", patience)
		e.waitStatus(*res.Results[7].MessageId, "succeeded", patience)
		m, err := e.a.client.GetMessageWithResponse(ctx, *res.Results[4].MessageId)
		require.NoError(t, err)
		require.Equal(t, gen.MessageStatus("paused"), m.JSON200.Data.Status)

		// The same batch again: the keyed item is a repeat now.
		status, again, _ := e.sendBatch(e.a.key, items[0], items[7])
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, http.StatusOK, again.Results[0].Status)
		require.Equal(t, *res.Results[0].MessageId, *again.Results[0].MessageId)
		require.Equal(t, http.StatusAccepted, again.Results[1].Status)
		require.NotEqual(t, *res.Results[7].MessageId, *again.Results[1].MessageId)
		e.waitStatus(*again.Results[1].MessageId, "succeeded", patience)
	})
}

// TestSendBatchRefusedWhole: a batch that does not match the schema is
// refused whole and stores nothing.
func TestSendBatchRefusedWhole(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, e *env) {
		ep := e.createEndpoint(e.a, "https://93.184.216.34/batch")
		one := `{"endpoint_id":"` + ep.Id + `","payload":{}}`
		before := e.snapshot()
		many := make([]string, 101)
		for i := range many {
			many[i] = one
		}
		for name, body := range map[string]string{
			"no items":                `{"messages":[]}`,
			"101 items":               `{"messages":[` + strings.Join(many, ",") + `]}`,
			"no endpoint_id":          `{"messages":[` + one + `,{"payload":{}}]}`,
			"payload not JSON object": `{"messages":[{"endpoint_id":"` + ep.Id + `","payload":"x"}]}`,
			"not a list":              `{"messages":` + one + `}`,
			"over 8 MiB":              `{"messages":[{"endpoint_id":"` + ep.Id + `","payload":{"pad":"` + strings.Repeat("x", handlers.MaxSendBatchBodyBytes) + `"}}]}`,
		} {
			status, env, raw := e.do(http.MethodPost, "/v1/webhooks/send-batch", e.a.key, "application/json", []byte(body))
			require.Equal(t, http.StatusBadRequest, status, "%s: %.300s", name, raw)
			require.Contains(t, []string{"INVALID_REQUEST", "PAYLOAD_TOO_LARGE"}, env.Error.Code, name)
		}
		require.Equal(t, before, e.snapshot(), "refused batches store nothing")
	})
}

// TestSendBatchCountsAgainstTheSendLimit: a batch takes one send per item
// from the project's send limit, all or none.
func TestSendBatchCountsAgainstTheSendLimit(t *testing.T) {
	t.Parallel()
	forEachDialectOnClock(t, newClockAt(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)), func(c *clock) options { return limited(c, nil) }, func(t *testing.T, e *env, clock *clock) {
		ep := e.createEndpoint(e.a, "https://93.184.216.34/limited")
		setLimits(t, e, e.a, store.ProjectSettings{SendRateLimitPerMinute: ptr(5)})
		clock.Advance(handlers.AuthCacheTTL + time.Millisecond)
		one := `{"endpoint_id":"` + ep.Id + `","payload":{}}`
		items := func(n int) []string {
			out := make([]string, n)
			for i := range out {
				out[i] = one
			}
			return out
		}
		status, _, env := e.sendBatch(e.a.key, items(6)...)
		require.Equal(t, http.StatusBadRequest, status, "a batch over the whole limit could never pass: not a 429")
		require.Equal(t, "INVALID_REQUEST", env.Error.Code)
		require.Equal(t, "/messages", field(env))
		require.Contains(t, env.Error.Message, "send smaller batches")
		status, res, _ := e.sendBatch(e.a.key, items(3)...)
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, 3, res.AcceptedCount)
		status, _, env = e.sendBatch(e.a.key, items(3)...)
		require.Equal(t, http.StatusTooManyRequests, status, "2 sends are left, not 3")
		require.Equal(t, "BURST_LIMIT_EXCEEDED", env.Error.Code)
		status, res, _ = e.sendBatch(e.a.key, items(2)...)
		require.Equal(t, http.StatusOK, status, "the refused batch took nothing")
		require.Equal(t, 2, res.AcceptedCount)
		var n int
		require.NoError(t, e.store.DB().QueryRow(fmt.Sprintf("SELECT count(*) FROM messages WHERE project_id = '%s'", e.a.project.ID)).Scan(&n))
		require.Equal(t, 5, n)
	})
}

// TestSendBatchConcurrentRepeats: batches racing with the same idempotency
// key store it once; every other batch gets the original back.
func TestSendBatchConcurrentRepeats(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, e *env) {
		ep := e.createEndpoint(e.a, "https://93.184.216.34/race")
		const n = 20
		results := make(chan gen.SendBatchItem, n)
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, res, env := e.sendBatch(e.a.key, `{"endpoint_id":"`+ep.Id+`","payload":{"once":true},"idempotency_key":"race"}`)
				if !assert.Equal(t, http.StatusOK, status, env.Error.Message) || !assert.Len(t, res.Results, 1) {
					return
				}
				results <- res.Results[0]
			}()
		}
		wg.Wait()
		close(results)
		created, ids := 0, map[string]bool{}
		for r := range results {
			require.Contains(t, []int{http.StatusAccepted, http.StatusOK}, r.Status, "%+v", r.Error)
			if r.Status == http.StatusAccepted {
				created++
			}
			ids[r.MessageId.String()] = true
		}
		require.Equal(t, 1, created)
		require.Len(t, ids, 1)
	})
}
