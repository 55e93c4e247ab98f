package handlers_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/internal/poll"
)

// TestDatabaseOutage cuts the network between hookd and PostgreSQL while
// messages are being sent and delivered: sends answer 503
// SERVICE_UNAVAILABLE (never 500, never a hang), delivery resumes when the
// database returns, and every accepted message arrives.
//
// The phases end on what happened, not after fixed times: the outage lasts
// until every sender has had an answer to a send it began during the outage
// (a send that hung would keep its sender from ever getting one, so that is
// what "never a hang" means here, however slow the machine) and the engine
// has warned of a failed queue query, and after the database comes back
// every sender must have a send accepted again.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	e := setupWith(t, "postgres", options{receivers: true, engine: testEngineConfig(), proxy: true})
	rc := newReceiver(t, nil)
	ep := e.createEndpoint(e.a, rc.url("/outage"))

	const senders = 8
	const (
		before = iota
		outage
		after
	)
	var (
		mu        sync.Mutex
		accepted  []string
		statuses  = map[int]int{}
		slowest   time.Duration
		stop      atomic.Bool
		wg        sync.WaitGroup
		sentCount atomic.Int64
		phase     atomic.Int32
		// answered[p][w]: sender w had an answer to a send it began and
		// ended in phase p (a 202 for before and after, a 503 for outage).
		answered [3][senders]bool
	)
	// count says how many senders have such an answer for phase p.
	count := func(p int) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, ok := range answered[p] {
			if ok {
				n++
			}
		}
		return n
	}
	// left[p] is closed when phase p is over (or the senders stop).
	var left [3]chan struct{}
	var leaveOnce [3]sync.Once
	for p := range left {
		left[p] = make(chan struct{})
	}
	leave := func(p int32) { leaveOnce[p].Do(func() { close(left[p]) }) }
	for w := range senders {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				began := phase.Load()
				start := time.Now()
				status, res, env, err := e.trySend(e.a.key, fmt.Sprintf(`{"endpoint_id":"%s","payload":{"w":%d,"i":%d}}`, ep.Id, w, i))
				took := time.Since(start)
				ended := phase.Load()
				sentCount.Add(1)
				mu.Lock()
				statuses[status]++
				slowest = max(slowest, took)
				switch {
				case err != nil:
					t.Errorf("send: %v", err)
				case status == http.StatusAccepted:
					accepted = append(accepted, res.MessageId.String())
					if began == ended && began != outage {
						answered[began][w] = true
					}
				case status != http.StatusServiceUnavailable:
					t.Errorf("send answered %d %s", status, env.Error.Code)
				case env.Error.Code != "SERVICE_UNAVAILABLE":
					t.Errorf("503 with code %q", env.Error.Code)
				case began == outage && ended == outage:
					answered[outage][w] = true
				}
				settled := answered[began][w]
				mu.Unlock()
				if settled {
					// This sender has what it needs of this phase: it
					// waits for the next one rather than flooding.
					<-left[began]
				}
			}
		})
	}
	stopSenders := sync.OnceFunc(func() {
		stop.Store(true)
		for p := range left {
			leave(int32(p))
		}
		wg.Wait()
	})
	t.Cleanup(stopSenders) // a failed wait below must not leave them sending

	poll.Until(t, patience, func() bool { return count(before) == senders }, "sends were accepted before the outage")
	// queueWarnings counts the engine's warnings about the queue: claims,
	// rescues and lease extensions that failed.
	queueWarnings := func() int {
		n := 0
		for _, line := range strings.Split(e.logs.String(), "\n") {
			if strings.Contains(line, `"level":"WARN"`) && strings.Contains(line, `"scope":"queue"`) {
				n++
			}
		}
		return n
	}
	engineSaw := queueWarnings()
	phase.Store(outage)
	leave(before)
	e.proxy.Cut()
	poll.Until(t, patience, func() bool { return count(outage) == senders },
		func() string {
			return fmt.Sprintf("only %d of %d senders had an answer during the outage: a send hangs", count(outage), senders)
		})
	// The engine meets the outage too before it ends: its claims or its
	// periodic rescue of expired leases fail.
	poll.Until(t, patience, func() bool { return queueWarnings() > engineSaw }, "the engine never noticed the outage")
	phase.Store(after)
	leave(outage)
	e.proxy.Restore()
	poll.Until(t, patience, func() bool { return count(after) == senders }, "sends are accepted again after the outage")
	stopSenders()

	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(line, `"status":500`) && strings.Contains(line, "request failed") {
			t.Logf("500: %s", line)
		}
	}
	mu.Lock()
	t.Logf("sends: %d, answers by status: %v, slowest answer: %s", sentCount.Load(), statuses, slowest)
	require.Positive(t, statuses[http.StatusServiceUnavailable], "the outage was seen")
	ids := append([]string(nil), accepted...)
	mu.Unlock()

	poll.Until(t, patience, func() bool {
		seen := map[string]bool{}
		for _, r := range rc.requests() {
			seen[r.header.Get("X-Webhook-Id")] = true
		}
		missing := 0
		for _, id := range ids {
			if !seen[id] {
				missing++
			}
		}
		return missing == 0
	}, "accepted messages never arrived")
}
