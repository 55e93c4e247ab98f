package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/gen"
)

// fifoReceiver is a receiver that answers what fail says for a payload's
// n and attempt. The first request for n == holdN (if set) waits, after
// signalling held, until release is closed: the test looks at the queue
// while that delivery is in flight.
type fifoReceiver struct {
	*receiver
	mu       sync.Mutex
	attempts map[int]int
	holdN    int
	held     chan struct{}
	release  chan struct{}
}

func newFIFOReceiver(t *testing.T, fail func(n, attempt int) int) *fifoReceiver {
	t.Helper()
	fr := &fifoReceiver{attempts: map[int]int{}, holdN: -1, held: make(chan struct{}), release: make(chan struct{})}
	fr.receiver = newReceiver(t, func(i int, w http.ResponseWriter, r *http.Request) {
		n := payloadN(fr.requests()[i].body)
		fr.mu.Lock()
		fr.attempts[n]++
		status := fail(n, fr.attempts[n])
		hold := n == fr.holdN && fr.attempts[n] == 1
		fr.mu.Unlock()
		if hold {
			close(fr.held)
			select {
			case <-fr.release:
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(status)
	})
	t.Cleanup(func() { // (before the receiver closes: cleanups run last first)
		select {
		case <-fr.release:
		default:
			close(fr.release)
		}
	})
	return fr
}

func payloadN(body []byte) int {
	var p struct{ N int }
	_ = json.Unmarshal(body, &p)
	return p.N
}

// arrivals are the payloads' n in the order the requests arrived.
func (fr *fifoReceiver) arrivals() []int {
	var out []int
	for _, r := range fr.requests() {
		out = append(out, payloadN(r.body))
	}
	return out
}

// fifoEngine retries an hour apart: a failed message stays pending_retry
// until the test acts.
func fifoOptions() options {
	cfg := testEngineConfig()
	cfg.Schedule.Slow = []time.Duration{time.Hour, time.Hour}
	cfg.Schedule.Fast = []time.Duration{time.Hour}
	return options{receivers: true, engine: cfg}
}

func (e *env) fifoEndpoint(url string) string {
	e.t.Helper()
	fifo := gen.OrderingFifo
	r, err := e.a.client.CreateEndpointWithResponse(context.Background(), gen.CreateEndpointRequest{Url: url, Ordering: &fifo})
	require.NoError(e.t, err)
	require.Equal(e.t, http.StatusCreated, r.StatusCode(), string(r.Body))
	return r.JSON201.Data.Id
}

func (e *env) sendN(ep string, n int, extra string) uuid.UUID {
	e.t.Helper()
	status, res, env := e.send(e.a.key, fmt.Sprintf(`{"endpoint_id":"%s","payload":{"n":%d}%s}`, ep, n, extra))
	require.Equal(e.t, http.StatusAccepted, status, env.Error.Message)
	return res.MessageId
}

// TestFIFODelivery: an endpoint with ordering fifo gets its messages one at
// a time in the order they were accepted; a message waiting for a retry
// holds the ones behind it (which name it in waiting_behind), while another
// ordering key's messages go on; once it succeeds the rest follow in order.
func TestFIFODelivery(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, fifoOptions(), func(t *testing.T, e *env) {
		ctx := context.Background()
		fr := newFIFOReceiver(t, func(n, attempt int) int {
			if n == 0 && attempt == 1 {
				return http.StatusInternalServerError
			}
			return http.StatusOK
		})
		fr.holdN = 2 // held in flight below, to look at the ones behind it
		ep := e.fifoEndpoint(fr.url("/fifo"))
		g, err := e.a.client.GetEndpointWithResponse(ctx, ep)
		require.NoError(t, err)
		require.Equal(t, gen.OrderingFifo, g.JSON200.Data.Ordering)

		var ids []uuid.UUID
		for n := range 5 {
			ids = append(ids, e.sendN(ep, n, ""))
		}
		e.waitStatus(ids[0], "pending_retry", patience)
		for _, id := range ids[1:] {
			m, err := e.a.client.GetMessageWithResponse(ctx, id)
			require.NoError(t, err)
			require.Equal(t, gen.MessageStatus("queued"), m.JSON200.Data.Status)
			require.NotNil(t, m.JSON200.Data.WaitingBehind)
			require.Equal(t, ids[0], *m.JSON200.Data.WaitingBehind, "held by the oldest waiting message")
		}
		// Another ordering key is not held.
		other := e.sendN(ep, 100, `,"ordering_key":"customer-2"`)
		e.waitStatus(other, "succeeded", patience)
		require.Equal(t, []int{0, 100}, fr.arrivals(), "nothing of the first key went past its head")

		r, err := e.a.client.RetryNowWithResponse(ctx, ids[0])
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, r.StatusCode(), string(r.Body))
		// One delivery at a time: while message 2 is in flight (held by
		// the receiver), those behind it are still queued behind it.
		select {
		case <-fr.held:
		case <-time.After(patience):
			t.Fatal("message 2 was not delivered")
		}
		for _, id := range ids[3:] {
			m, err := e.a.client.GetMessageWithResponse(ctx, id)
			require.NoError(t, err)
			require.Equal(t, gen.MessageStatus("queued"), m.JSON200.Data.Status, "not claimed while the one ahead is in flight")
			require.Equal(t, ids[2], *m.JSON200.Data.WaitingBehind)
		}
		close(fr.release)
		for _, id := range ids {
			e.waitStatus(id, "succeeded", patience)
		}
		require.Equal(t, []int{0, 100, 0, 1, 2, 3, 4}, fr.arrivals())
		m, err := e.a.client.GetMessageWithResponse(ctx, ids[4])
		require.NoError(t, err)
		require.Nil(t, m.JSON200.Data.WaitingBehind)
	})
}

// TestFIFOReleases: a message that fails for good, or is cancelled,
// releases the ones behind it; an endpoint without ordering is not held.
func TestFIFOReleases(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, fifoOptions(), func(t *testing.T, e *env) {
		ctx := context.Background()
		fr := newFIFOReceiver(t, func(n, _ int) int {
			switch n {
			case 0:
				return http.StatusBadRequest // permanent
			case 10:
				return http.StatusInternalServerError // retried an hour later
			}
			return http.StatusOK
		})
		permanent := e.fifoEndpoint(fr.url("/permanent"))
		a, b := e.sendN(permanent, 0, ""), e.sendN(permanent, 1, "")
		e.waitStatus(a, "failed_permanent", patience)
		e.waitStatus(b, "succeeded", patience)

		cancelled := e.fifoEndpoint(fr.url("/cancelled"))
		c, d := e.sendN(cancelled, 10, ""), e.sendN(cancelled, 11, "")
		e.waitStatus(c, "pending_retry", patience)
		m, err := e.a.client.GetMessageWithResponse(ctx, d)
		require.NoError(t, err)
		require.Equal(t, c, *m.JSON200.Data.WaitingBehind)
		r, err := e.a.client.CancelRetryWithResponse(ctx, c)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, r.StatusCode(), string(r.Body))
		e.waitStatus(d, "succeeded", patience)

		// Switched off: new messages are not held by an old one waiting.
		none := gen.OrderingNone
		u, err := e.a.client.UpdateEndpointWithResponse(ctx, cancelled, gen.UpdateEndpointRequest{Ordering: &none})
		require.NoError(t, err)
		require.Equal(t, gen.OrderingNone, u.JSON200.Data.Ordering)
		f := e.sendN(cancelled, 10, "") // fails and waits an hour
		e.waitStatus(f, "pending_retry", patience)
		g := e.sendN(cancelled, 12, "")
		e.waitStatus(g, "succeeded", patience)
	})
}
