package main

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// fanoutBench measures POST /v1/events: o.fanout endpoints subscribed to
// every type (all at the local receiver), events published in an open
// loop at o.eventRate per second for o.duration after a one-second warm-up.
// Each event's payload carries its scheduled time t0. It prints the answer
// latency (t0 to 202) and, per event, how long after its answer the last
// of its o.fanout deliveries arrived.
func fanoutBench(h *hookd, rc *receiver, o options) error {
	for i := range o.fanout {
		if _, err := h.createEndpoint(fmt.Sprintf("%s/%d", rc.url, i)); err != nil {
			return err
		}
	}
	fmt.Printf("hookd pid %d at %s, %d endpoints subscribed to every event type\n\n", h.cmd.Process.Pid, h.addr, o.fanout)
	if _, _, err := publishLoop(h, rc, o, time.Second); err != nil { // warm-up
		return err
	}
	fmt.Printf("machine check before: %s\n\n", machineCheck())
	cpu := startCPU(h)
	answers, done, err := publishLoop(h, rc, o, o.duration)
	if err != nil {
		return err
	}
	msgs := len(answers) * o.fanout
	fmt.Printf("open loop, %d events/s for %s, %d endpoints each (%d messages):\n", o.eventRate, o.duration, o.fanout, msgs)
	fmt.Printf("  publish answer latency (from scheduled t0): %s\n", answers)
	fmt.Printf("  last delivery of an event after its answer: %s\n", done)
	fmt.Printf("  %s\n", cpu.perMessage(msgs))
	fmt.Printf("  hookd memory: peak RSS %s\n", rss(h.cmd.Process.Pid))
	fmt.Printf("\nmachine check after: %s\n", machineCheck())
	return nil
}

// publishLoop publishes events at o.eventRate for d and waits for every
// delivery; it returns the answer latencies and, per event, the time from
// its answer to its last delivery.
func publishLoop(h *hookd, rc *receiver, o options, d time.Duration) (dist, dist, error) {
	rc.reset()
	n := max(int(d.Seconds()*float64(o.eventRate)), 1)
	var mu sync.Mutex
	var lats dist
	answered := map[int64]time.Time{}
	var failed atomic.Int64
	var firstErr atomic.Value
	schedule(n, o.eventRate, 32, func(t0 time.Time) {
		status, b, err := h.post("/v1/events", `{"event_type":"bench.event","payload":`+payload(t0, o.bytes)+`}`)
		at := time.Now()
		if err != nil || status != http.StatusAccepted {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, fmt.Sprintf("publish: %d %s %v", status, b, err))
			return
		}
		mu.Lock()
		lats = append(lats, at.Sub(t0))
		answered[t0.UnixNano()] = at
		mu.Unlock()
	})
	if failed.Load() > 0 {
		return nil, nil, fmt.Errorf("%d publishes failed, first: %v", failed.Load(), firstErr.Load())
	}
	if err := rc.wait(n*o.fanout, 120*time.Second); err != nil {
		return nil, nil, err
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var done dist
	for t0, at := range answered {
		last, ok := rc.lastByT0[t0]
		if !ok {
			return nil, nil, errors.New("an event's deliveries were not recorded")
		}
		done = append(done, last.Sub(at))
	}
	return lats, done, nil
}
