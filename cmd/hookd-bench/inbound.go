package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// inboundBench measures inbound webhooks: an inbound endpoint forwarding to
// the local receiver, with X-Delivery as its de-duplication header.
//   - closed loop: o.senders providers post as fast as they are answered;
//     ingest answer latency, and throughput from the first request to the
//     last forward received;
//   - open loop at o.rate requests/s: ingest answer latency and the time
//     from each request's scheduled t0 to its forward's arrival;
//   - duplicates: the WAL PostgreSQL writes for 1,000 repeats of accepted
//     deliveries against 1,000 new ones.
func inboundBench(h *hookd, rc *receiver, dbURL string, o options) error {
	status, b, err := h.post("/v1/inbound-endpoints", `{"name":"bench","url":"`+rc.url+`","idempotency_header_names":["X-Delivery"]}`)
	if err != nil || status != http.StatusCreated {
		return fmt.Errorf("create inbound endpoint: %d %s: %w", status, b, err)
	}
	var ie struct {
		Data struct {
			IngestURL string `json:"ingest_url"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &ie); err != nil {
		return err
	}
	in := ingester{h: h, url: ie.Data.IngestURL, bytes: o.bytes}
	fmt.Printf("hookd pid %d at %s, inbound endpoint forwarding to %s\n\n", h.cmd.Process.Pid, h.addr, rc.url)
	if _, _, err := in.closed(rc, o.senders, time.Second); err != nil { // warm-up
		return err
	}

	fmt.Printf("machine check before: %s\n\n", machineCheck())
	cpu := startCPU(h)
	res, lats, err := in.closed(rc, o.senders, o.duration)
	if err != nil {
		return err
	}
	fmt.Printf("closed loop, %d providers:\n", o.senders)
	fmt.Printf("  received %d, forwarded %d (unique %d)\n", res.sent, res.received, res.unique)
	fmt.Printf("  ingested and forwarded: %.0f messages/s (first request to last forward)\n", float64(res.unique)/res.elapsed.Seconds())
	fmt.Printf("  ingest answer latency: %s\n", lats)
	fmt.Printf("  %s\n\n", cpu.perMessage(res.unique))

	open, err := in.open(rc, o.rate, o.duration)
	if err != nil {
		return err
	}
	fmt.Printf("open loop, %d requests/s for %s:\n", o.rate, o.duration)
	fmt.Printf("  received %d, forwarded %d (unique %d)\n", open.sent, open.received, open.unique)
	fmt.Printf("  ingest answer latency (from scheduled t0): %s\n", open.sendLat)
	fmt.Printf("  ingest to forward arrival (from scheduled t0): %s\n\n", open.deliveryLat)

	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	wal := func() int64 {
		var n int64
		_ = conn.QueryRow(context.Background(), `SELECT pg_current_wal_lsn() - '0/0'::pg_lsn`).Scan(&n)
		return n
	}
	// Repeats of deliveries accepted above (ids 1..1000 of the closed loop).
	w0 := wal()
	dupLat, err := in.sequence(1, 1000)
	if err != nil {
		return err
	}
	w1 := wal()
	newLat, err := in.sequence(1_000_000_000, 1000)
	if err != nil {
		return err
	}
	w2 := wal()
	fmt.Printf("duplicates (1,000 repeats of accepted deliveries, one provider):\n")
	fmt.Printf("  WAL written: duplicates %d bytes (%.1f per request), new deliveries %d bytes (%.0f per request)\n",
		w1-w0, float64(w1-w0)/1000, w2-w1, float64(w2-w1)/1000)
	fmt.Printf("  answer latency: duplicates %s; new %s\n", dupLat, newLat)
	fmt.Printf("  hookd memory: peak RSS %s\n", rss(h.cmd.Process.Pid))
	fmt.Printf("\nmachine check after: %s\n", machineCheck())
	if res.unique != res.sent || open.unique != open.sent {
		return fmt.Errorf("VOID: not every accepted message was forwarded")
	}
	return nil
}

type ingester struct {
	h     *hookd
	url   string
	bytes int
	seq   atomic.Int64
}

// post sends one provider request with delivery id n and payload t0.
func (in *ingester) post(n int64, t0 time.Time) (bool, error) {
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, in.url, strings.NewReader(payload(t0, in.bytes)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Delivery", "d-"+strconv.FormatInt(n, 10))
	resp, err := in.h.client.Do(req)
	if err != nil {
		return false, err
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("ingest: %d %s", resp.StatusCode, b)
	}
	return strings.Contains(string(b), `"duplicate":true`), nil
}

func (in *ingester) closed(rc *receiver, senders int, d time.Duration) (result, dist, error) {
	rc.reset()
	start := time.Now()
	stopAt := start.Add(d)
	var mu sync.Mutex
	var lats dist
	var firstErr error
	var sent atomic.Int64
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			var local dist
			for time.Now().Before(stopAt) {
				t := time.Now()
				if _, err := in.post(in.seq.Add(1), t); err != nil {
					mu.Lock()
					firstErr = err
					mu.Unlock()
					return
				}
				local = append(local, time.Since(t))
				sent.Add(1)
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if firstErr != nil {
		return result{}, nil, firstErr
	}
	if err := rc.wait(int(sent.Load()), 120*time.Second); err != nil {
		return result{}, nil, err
	}
	return rc.snapshot(int(sent.Load()), start), lats, nil
}

func (in *ingester) open(rc *receiver, rate int, d time.Duration) (result, error) {
	rc.reset()
	n := int(d.Seconds() * float64(rate))
	var mu sync.Mutex
	var lats dist
	var failed atomic.Int64
	start := schedule(n, rate, 64, func(t0 time.Time) {
		if _, err := in.post(in.seq.Add(1), t0); err != nil {
			failed.Add(1)
			return
		}
		mu.Lock()
		lats = append(lats, time.Since(t0))
		mu.Unlock()
	})
	if failed.Load() > 0 {
		return result{}, fmt.Errorf("%d ingest requests failed", failed.Load())
	}
	if err := rc.wait(n, 60*time.Second); err != nil {
		return result{}, err
	}
	res := rc.snapshot(n, start)
	res.sendLat = lats
	return res, nil
}

// sequence posts deliveries first..first+n-1 one after another and returns
// the answer latencies; repeats must be answered as duplicates and new ones
// not.
func (in *ingester) sequence(first int64, n int) (dist, error) {
	var lats dist
	for i := range int64(n) {
		t := time.Now()
		dup, err := in.post(first+i, t)
		if err != nil {
			return nil, err
		}
		if dup != (first < 1_000_000_000) {
			return nil, fmt.Errorf("delivery d-%d: duplicate=%v, not as expected", first+i, dup)
		}
		lats = append(lats, time.Since(t))
	}
	return lats, nil
}
