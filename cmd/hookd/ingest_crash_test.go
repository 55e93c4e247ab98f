package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/internal/poll"
	"github.com/hookd/hookd/internal/testdb"
	"github.com/hookd/hookd/secrets"
)

// TestIngestCrashLosesNothing SIGKILLs hookd during a burst of webhooks
// received at an inbound endpoint's ingest URL, starts it again, and checks
// that every request that was answered 2xx is forwarded and ends succeeded.
func TestIngestCrashLosesNothing(t *testing.T) {
	t.Parallel()
	dbURL := testdb.NewPostgres(t)
	inspection(t, dbURL)
	key := secrets.GenerateMasterKey("crash")
	dir := t.TempDir()
	rc := newCountingReceiver(t, 2*time.Millisecond)

	first := startChild(t, deliveryArgs(dbURL, key, dir)...)
	apiKey := keyRE.FindString(first.stdout.String())
	require.NotEmpty(t, apiKey)
	var ie struct {
		ID        string `json:"id"`
		IngestURL string `json:"ingest_url"`
	}
	require.Equal(t, http.StatusCreated, api(t, http.MethodPost, first.url("/v1/inbound-endpoints"), apiKey,
		`{"name":"crash","url":"`+rc.srv.URL+`/in","idempotency_header_names":["X-Delivery"]}`, &ie))

	// Eight providers send until the kill; the kill comes once 300
	// requests have been answered, so it certainly falls mid-burst.
	var mu sync.Mutex
	var accepted []string
	var answered atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var seq atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := seq.Add(1)
				req, err := http.NewRequest(http.MethodPost, ie.IngestURL, strings.NewReader(`{"n":`+strconv.FormatInt(n, 10)+`}`))
				if err != nil {
					t.Error(err)
					return
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Delivery", "d-"+strconv.FormatInt(n, 10))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return // the process is gone
				}
				var out struct {
					Data struct {
						MessageID string `json:"message_id"`
					} `json:"data"`
				}
				raw, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode/100 == 2 {
					if json.Unmarshal(raw, &out) != nil || out.Data.MessageID == "" {
						t.Errorf("a 2xx ingest answer without a message id: %s", raw)
						return
					}
					mu.Lock()
					accepted = append(accepted, out.Data.MessageID)
					mu.Unlock()
					answered.Add(1)
				}
			}
		}()
	}
	poll.Until(t, patience, func() bool { return answered.Load() >= 300 }, "the ingest burst did not get going")
	first.kill()
	close(stop)
	wg.Wait()
	t.Logf("at the kill: %d ingest requests answered 2xx, %d forwarded", len(accepted), rc.total.Load())

	second := startChild(t, deliveryArgs(dbURL, key, dir)...)
	poll.Until(t, 3*patience, func() bool { return countStatus(t, dbURL, "inbound AND status <> 'succeeded'") == 0 },
		func() string { return "inbound messages left unforwarded:\n" + second.stderr.String() })
	counts := rc.counts()
	for _, id := range accepted {
		require.GreaterOrEqual(t, counts[id], 1, "accepted inbound message %s was never forwarded", id)
	}
	// A request committed just before the kill may have lost its answer:
	// stored messages can outnumber the 2xx answers, never the reverse.
	require.GreaterOrEqual(t, countStatus(t, dbURL, "inbound AND status = 'succeeded'"), len(accepted))
}
