package queue_test

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hookd/hookd/queue"
	"github.com/hookd/hookd/queue/queuetest"
)

// memDriver is a Driver over a map, with the semantics store's drivers
// have: a claimed job is leased until its lease ends and Rescue runs; a
// job handed over at its commit is leased but due, so a claim takes it
// once its lease ends.
type memDriver struct {
	mu      sync.Mutex
	paused  map[string]bool
	jobs    map[string]*memJob
	order   int
	due     chan struct{}
	handoff queue.Handoff[string]
	lease   time.Duration
}

type memJob struct {
	id, group  string
	seq        int
	dueAt      time.Time
	claimed    bool // leased by a claim: only Rescue makes it due again
	token      string
	leaseUntil time.Time
	finished   bool
}

func newMemDriver() *memDriver {
	return &memDriver{jobs: map[string]*memJob{}, paused: map[string]bool{}, due: make(chan struct{}, 1)}
}

func (d *memDriver) poke() {
	select {
	case d.due <- struct{}{}:
	default:
	}
}

// enqueue commits a job of group due at due, handing it over when a
// handoff is set and reserves a worker.
func (d *memDriver) enqueue(group string, due time.Time) string {
	d.mu.Lock()
	d.order++
	j := &memJob{id: "job" + strconv.Itoa(d.order), group: group, seq: d.order, dueAt: due}
	d.jobs[j.id] = j
	h, lease := d.handoff, d.lease
	if d.paused[group] {
		j.finished = true // (a paused job is never due here)
		d.mu.Unlock()
		return j.id
	}
	handed := h != nil && !due.After(time.Now()) && h.Reserve(group)
	if handed {
		j.token, j.leaseUntil = "handed-"+j.id, time.Now().Add(lease)
	}
	d.mu.Unlock()
	if handed {
		h.Start(queue.Job[string]{ID: j.id, Group: group, DueAt: &due, Value: j.id}, j.token)
	} else {
		d.poke()
	}
	return j.id
}

// offered reports whether a handoff is set.
func (d *memDriver) offered() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.handoff != nil
}

// finish ends job id's lease as done, if token still holds it.
func (d *memDriver) finish(id, token string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if j := d.jobs[id]; j != nil && j.token == token {
		j.finished, j.token = true, ""
	}
}

func (d *memDriver) Claim(_ context.Context, token string, lease time.Duration, limit int, skip []string) ([]queue.Job[string], error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := time.Now()
	var due []*memJob
	for _, j := range d.jobs {
		free := j.token == "" || (!j.claimed && now.After(j.leaseUntil))
		if !j.finished && free && !j.dueAt.After(now) && !slices.Contains(skip, j.group) {
			due = append(due, j)
		}
	}
	slices.SortFunc(due, func(a, b *memJob) int {
		if c := a.dueAt.Compare(b.dueAt); c != 0 {
			return c
		}
		return a.seq - b.seq
	})
	var out []queue.Job[string]
	for _, j := range due[:min(limit, len(due))] {
		j.claimed, j.token, j.leaseUntil = true, token, now.Add(lease)
		dueAt := j.dueAt
		out = append(out, queue.Job[string]{ID: j.id, Group: j.group, DueAt: &dueAt, Value: j.id})
	}
	return out, nil
}

func (d *memDriver) Extend(_ context.Context, held map[string]string, lease time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, tok := range held {
		if j := d.jobs[id]; j != nil && j.token == tok && !j.finished {
			j.leaseUntil = time.Now().Add(lease)
		}
	}
	return nil
}

func (d *memDriver) Release(_ context.Context, id, token string, delay time.Duration) error {
	d.mu.Lock()
	j := d.jobs[id]
	ok := j != nil && j.token == token && !j.finished
	if ok {
		j.claimed, j.token, j.dueAt = false, "", time.Now().Add(delay)
	}
	d.mu.Unlock()
	if ok && delay <= 0 {
		d.poke()
	}
	return nil
}

func (d *memDriver) Rescue(context.Context) (int64, error) {
	d.mu.Lock()
	var n int64
	for _, j := range d.jobs {
		if j.claimed && !j.finished && time.Now().After(j.leaseUntil) {
			j.claimed, j.token = false, ""
			n++
		}
	}
	d.mu.Unlock()
	if n > 0 {
		d.poke()
	}
	return n, nil
}

func (d *memDriver) Due() <-chan struct{}   { return d.due }
func (d *memDriver) Listen(context.Context) {}

func (d *memDriver) Offer(h queue.Handoff[string], lease time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.handoff, d.lease = h, lease
}

func (d *memDriver) Withdraw(h queue.Handoff[string]) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.handoff == h {
		d.handoff = nil
	}
}

// TestMemDriverConforms runs the driver suite on the in-memory driver the
// queue's own tests use, so they rely only on what every driver does.
func TestMemDriverConforms(t *testing.T) {
	t.Parallel()
	queuetest.Run(t, func(*testing.T) queuetest.Harness[string] {
		d := newMemDriver()
		groups := 0
		var mu sync.Mutex
		return queuetest.Harness[string]{
			Driver: d,
			NewGroup: func(*testing.T) string {
				mu.Lock()
				defer mu.Unlock()
				groups++
				return "group" + strconv.Itoa(groups)
			},
			Enqueue:  func(_ *testing.T, group string, due time.Time) string { return d.enqueue(group, due) },
			HandsOff: true,
			Pause: func(_ *testing.T, group string) {
				d.mu.Lock()
				defer d.mu.Unlock()
				d.paused[group] = true
			},
		}
	})
}
