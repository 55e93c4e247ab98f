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
)

// TestDatabaseOutage cuts the network between hookd and PostgreSQL for a few
// seconds while messages are being sent and delivered: sends answer 503
// SERVICE_UNAVAILABLE quickly (never 500, never a hang), delivery resumes
// when the database returns, and every accepted message arrives.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	e := setupWith(t, "postgres", options{receivers: true, engine: testEngineConfig(), proxy: true})
	rc := newReceiver(t, nil)
	ep := e.createEndpoint(e.a, rc.url("/outage"))

	var (
		mu        sync.Mutex
		accepted  []string
		statuses  = map[int]int{}
		slowest   time.Duration
		stop      atomic.Bool
		wg        sync.WaitGroup
		sentCount atomic.Int64
	)
	for w := range 8 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				start := time.Now()
				status, res, env := e.send(e.a.key, fmt.Sprintf(`{"endpoint_id":"%s","payload":{"w":%d,"i":%d}}`, ep.Id, w, i))
				took := time.Since(start)
				sentCount.Add(1)
				mu.Lock()
				statuses[status]++
				slowest = max(slowest, took)
				if status == http.StatusAccepted {
					accepted = append(accepted, res.MessageId.String())
				} else if status != http.StatusServiceUnavailable {
					t.Errorf("send answered %d %s", status, env.Error.Code)
				} else if env.Error.Code != "SERVICE_UNAVAILABLE" {
					t.Errorf("503 with code %q", env.Error.Code)
				}
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	time.Sleep(time.Second)
	e.proxy.Cut()
	time.Sleep(3 * time.Second)
	e.proxy.Restore()
	time.Sleep(2 * time.Second)
	stop.Store(true)
	wg.Wait()

	for _, line := range strings.Split(e.logs.String(), "\n") {
		if strings.Contains(line, `"status":500`) && strings.Contains(line, "request failed") {
			t.Logf("500: %s", line)
		}
	}
	mu.Lock()
	t.Logf("sends: %d, answers by status: %v, slowest answer: %s", sentCount.Load(), statuses, slowest)
	require.Positive(t, statuses[http.StatusServiceUnavailable], "the outage was seen")
	require.Positive(t, statuses[http.StatusAccepted])
	require.Less(t, slowest, 5*time.Second, "no send hung through the outage")
	ids := append([]string(nil), accepted...)
	mu.Unlock()

	deadline := time.Now().Add(30 * time.Second)
	for {
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
		if missing == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "%d accepted messages never arrived", missing)
		time.Sleep(50 * time.Millisecond)
	}
}
