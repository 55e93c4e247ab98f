package store

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Handoff across processes (PostgreSQL). A process that runs the delivery
// engine hands its own sends to its workers at their commit (handoff.go).
// An api process has no workers of its own; without this, each of its
// messages is stored queued, the worker processes are notified, and one of
// them claims it: a second transaction and a second update of the
// message's row, which made two processes cost PostgreSQL over half as
// much again per message as one.
//
// Instead, a worker process that takes handoffs announces itself every
// announceEvery on workersChannel ("<take channel> <lease seconds>", and
// "<take channel> 0" when it stops taking them). An api process that
// follows the announcements (Store.HandToWorkers) stores each send leased
// to one of the live workers under a token of its batch, and the same
// statement notifies that worker's take channel with the token and the
// ids ("<token> <id> <id> ..."); the notification arrives once the batch
// has committed. The worker reads those rows (a read, no claim) and
// starts each on a free worker; one whose endpoint has every worker busy
// waits in the process for one (waitingHanded), and what it will not run
// (it stops, works through a backlog, or waited too long) it gives back
// in one update, due again at once for the claims. A message handed to a
// worker that died before it started is due again when its lease ends,
// as a claimed one's is.

const (
	// workersChannel carries the announcements of the processes that
	// take handoffs.
	workersChannel = "hookd_workers"
	// announceEvery is how often a worker process announces itself.
	announceEvery = time.Second
	// workerForgotten is how long an api process hands messages to a
	// worker it has not heard from.
	workerForgotten = 3 * announceEvery
	// maxHandedPerNotify bounds the messages of one notification:
	// PostgreSQL refuses a payload of 8,000 bytes or more, and a token
	// and 200 ids of 36 characters, space-separated, take 7,427.
	maxHandedPerNotify = 200
	// takeGrace is how long a worker process keeps reading its take
	// channel after it stopped taking handoffs, to give back what api
	// processes handed it before they heard it leave.
	takeGrace = time.Second
)

// takeChannel is the channel on which the process of instance receives
// handed messages (a lower-case name: LISTEN folds unquoted names).
func takeChannel(instance string) string { return "hookd_take_" + strings.ToLower(instance) }

// remoteWorker is a worker process an api process heard from.
type remoteWorker struct {
	channel string
	lease   time.Duration
	seen    time.Time
}

// remoteWorkers is what an api process knows of the worker processes.
type remoteWorkers struct {
	mu      sync.Mutex
	workers []remoteWorker
	next    int // round robin
}

// heard records an announcement, and says whether it added or removed a
// worker; a malformed one is ignored.
func (r *remoteWorkers) heard(payload string, now time.Time) (added, removed bool) {
	channel, secs, ok := strings.Cut(payload, " ")
	lease, err := strconv.ParseFloat(secs, 64)
	if !ok || err != nil || !strings.HasPrefix(channel, "hookd_take_") || lease < 0 {
		return false, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, w := range r.workers {
		if w.channel == channel {
			if lease == 0 { // it stopped taking handoffs
				r.workers = append(r.workers[:i], r.workers[i+1:]...)
				return false, true
			}
			r.workers[i].lease, r.workers[i].seen = time.Duration(lease*float64(time.Second)), now
			return false, false
		}
	}
	if lease == 0 {
		return false, false
	}
	r.workers = append(r.workers, remoteWorker{channel: channel, lease: time.Duration(lease * float64(time.Second)), seen: now})
	return true, false
}

// pick returns the next live worker, round robin, forgetting those not
// heard from for workerForgotten.
func (r *remoteWorkers) pick(now time.Time) (remoteWorker, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	live := r.workers[:0]
	for _, w := range r.workers {
		if now.Sub(w.seen) < workerForgotten {
			live = append(live, w)
		}
	}
	r.workers = live
	if len(live) == 0 {
		return remoteWorker{}, false
	}
	r.next = (r.next + 1) % len(live)
	return live[r.next], true
}

// count is how many live workers r knows of.
func (r *remoteWorkers) count(now time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, w := range r.workers {
		if now.Sub(w.seen) < workerForgotten {
			n++
		}
	}
	return n
}

// HandToWorkers makes this store, until ctx ends, hand the messages of
// its sends and publishes to the worker processes that announce
// themselves (PostgreSQL; an api process, which has no workers of its
// own, runs it). It returns when ctx ends; on SQLite, at once.
func (s *Store) HandToWorkers(ctx context.Context) {
	if !s.hot.handsOff() {
		return
	}
	r := &remoteWorkers{}
	s.remote.Store(r)
	defer s.remote.CompareAndSwap(r, nil)
	s.listen(ctx, []string{workersChannel}, func(_, payload string) {
		switch added, removed := r.heard(payload, time.Now()); {
		case added:
			s.log.Debug("a worker process takes this process's new messages", "channel", strings.Fields(payload)[0])
		case removed:
			s.log.Debug("a worker process stopped taking this process's new messages", "channel", strings.Fields(payload)[0])
		}
	})
}

// RemoteWorkers is how many worker processes this store hands messages to
// now (0 unless HandToWorkers runs).
func (s *Store) RemoteWorkers() int {
	if r := s.remote.Load(); r != nil {
		return r.count(time.Now())
	}
	return 0
}

// pickWorker is the worker process a batch is handed to, if this store
// hands to other processes' workers and knows a live one.
func (s *Store) pickWorker() (remoteWorker, bool) {
	if r := s.remote.Load(); r != nil {
		return r.pick(time.Now())
	}
	return remoteWorker{}, false
}

// listen runs handle for every notification on channels until ctx ends,
// reconnecting after errors.
func (s *Store) listen(ctx context.Context, channels []string, handle func(channel, payload string)) {
	for ctx.Err() == nil {
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			sleepCtx(ctx, time.Second)
			continue
		}
		stmts := make([]string, len(channels))
		for i, c := range channels {
			stmts[i] = `LISTEN "` + c + `"`
		}
		_, err = conn.Exec(ctx, strings.Join(stmts, "; "))
		for err == nil {
			var n *pgconn.Notification
			if n, err = conn.Conn().WaitForNotification(ctx); err == nil {
				handle(n.Channel, n.Payload)
			}
		}
		// The connection may be in any state now; do not return it to the pool.
		_ = conn.Conn().Close(context.Background())
		conn.Release()
		sleepCtx(ctx, 100*time.Millisecond)
	}
}

// announce tells api processes, every announceEvery until ctx ends, that
// this process takes handed messages while it offers handoffs and accepts
// them, and that it stopped once it does not (at once when ctx ends, or
// when take gave messages back).
func (s postgresPath) announce(ctx context.Context) {
	channel := takeChannel(s.instance)
	t := time.NewTicker(announceEvery)
	defer t.Stop()
	taking := false
	say := func(lease time.Duration) {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), announceEvery)
		defer cancel()
		if _, err := s.pool.Exec(actx, `SELECT pg_notify($1, $2)`, workersChannel, channel+" "+strconv.FormatFloat(lease.Seconds(), 'f', -1, 64)); err != nil && ctx.Err() == nil {
			s.log.Warn("announcing this worker to api processes failed", "error", err.Error())
		}
	}
	for {
		h := s.handoff.Load()
		switch {
		case h != nil && h.lease > 0 && h.Accepting() && !s.waiting.full():
			say(h.lease)
			taking = true
		case taking:
			say(0)
			taking = false
		}
		select {
		case <-ctx.Done():
			if taking {
				say(0)
			}
			return
		case <-s.announceNow:
		case <-t.C:
		}
	}
}

// pgTakeHanded reads the messages handed to this process under @tok (no
// write: they were stored leased to it), with their endpoints and keys.
// The rows are found by joining the ids to the primary key (as the
// attempt records do): written as a condition on messages, the ids let
// PostgreSQL choose the due index (every queued message, and the dead
// entries) or, on a table not analyzed yet, a sequential scan, at 0.3 to
// 5 ms a statement.
var pgTakeHanded = newNamed(`WITH c AS (SELECT ` + prefixed("m.", claimedColumns) + `
FROM unnest(CAST(@ids AS text[])) AS x(id) JOIN messages m ON m.id = x.id
WHERE m.lease_token = CAST(@tok AS text) AND m.status = 'queued' AND m.deleted_at IS NULL),
` + pgTargets("SELECT endpoint_id FROM c") + `
SELECT ` + claimedSelect + `
FROM c LEFT JOIN t ON t.id = c.endpoint_id`)

// pgGiveBack ends the leases of handed messages this process has no
// worker for: they are due at once, and the worker processes are told.
// (The rows are found as in pgTakeHanded.)
const pgGiveBack = `WITH r AS (UPDATE messages SET lease_until = NULL, lease_token = NULL
FROM unnest($1::text[]) AS x(id) WHERE messages.id = x.id AND lease_token = $2::text AND status = 'queued' RETURNING 1)
SELECT pg_notify('` + dueChannel + `', $3::text) FROM r LIMIT 1`

// take starts the messages an api process handed this process (payload
// "<token> <id> ..."): each it has a free worker for, leased as it was
// handed; those whose endpoint has no free worker here wait for one
// (waitingHanded); the rest are given back, due at once.
func (s postgresPath) take(payload string) {
	token, rest, _ := strings.Cut(payload, " ")
	ids := strings.Fields(rest)
	if token == "" || len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), sendBatchDeadline)
	defer cancel()
	back := ids
	started, waiting := 0, 0
	if h := s.handoff.Load(); h != nil {
		targets := map[string]DeliveryTarget{}
		msgs, err := s.pgScanClaim(ctx, pgTakeHanded, map[string]any{"ids": ids, "tok": token}, nil, targets)
		if err != nil {
			s.log.Warn("reading handed messages failed; giving them back", "message_ids", ids, "error", err.Error())
		} else {
			back = nil
			for _, m := range msgs {
				m.Status = StatusQueued // (leased, as the api process stored it)
				t, ok := targets[m.EndpointID]
				switch {
				case !ok:
				case h.Reserve(m.EndpointID):
					h.Start(m, t, token)
					started++
					continue
				case s.waiting.add(handedJob{m: m, t: t, token: token, until: time.Now().Add(h.lease / 3)}):
					waiting++
					continue
				}
				back = append(back, m.ID)
			}
		}
	}
	s.log.Debug("took messages handed over by an api process", "handed", len(ids), "started", started, "waiting", waiting)
	s.giveBack(ctx, map[string][]string{token: back})
}

// giveBack ends the leases of handed messages (ids by token) this process
// will not run: they are due at once, for any process's claim.
func (s postgresPath) giveBack(ctx context.Context, byToken map[string][]string) {
	for token, ids := range byToken {
		if len(ids) == 0 {
			continue
		}
		select { // it may not accept more: api processes are told at once
		case s.announceNow <- struct{}{}:
		default:
		}
		slices.Sort(ids) // rows are locked in id order, as elsewhere
		rows, err := s.pool.Query(ctx, pgGiveBack, ids, token, s.instance)
		if err == nil {
			rows.Close()
			err = rows.Err()
		}
		if err != nil {
			s.log.Warn("giving back handed messages failed; they are due again when their lease ends", "message_ids", ids, "error", err.Error())
		} else {
			s.log.Debug("gave back handed messages", "count", len(ids))
		}
		s.poke()
	}
}

// handedJob is a handed message waiting for a free worker.
type handedJob struct {
	m     Message
	t     DeliveryTarget
	token string
	until time.Time // given back after this: a third of its lease
}

// waitingHanded holds the messages handed to this worker process that
// found every worker for their endpoint busy (its cap). Giving each back
// at once would cost a write and then a claim; instead they start as
// workers free up (retried every waitingRetry), in the order they came.
// One still waiting after a third of its lease, or when this process
// stops accepting handed messages, is given back.
type waitingHanded struct {
	mu   sync.Mutex
	jobs []handedJob
	wake chan struct{} // signalled when jobs were added
}

const (
	// maxWaitingHanded bounds the messages waiting in a worker process;
	// beyond it, they are given back.
	maxWaitingHanded = 1024
	// waitingRetry is how often waiting messages try for a worker.
	waitingRetry = 2 * time.Millisecond
)

func (w *waitingHanded) add(j handedJob) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.jobs) >= maxWaitingHanded {
		return false
	}
	w.jobs = append(w.jobs, j)
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return true
}

func (w *waitingHanded) full() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.jobs) >= maxWaitingHanded
}

// retryWaiting starts the waiting messages that have a free worker now,
// gives back those that waited too long (or all, if this process does not
// accept handed messages now), and says how many still wait.
func (s postgresPath) retryWaiting() int {
	w := &s.waiting
	w.mu.Lock()
	jobs := w.jobs
	w.jobs = nil
	w.mu.Unlock()
	if len(jobs) == 0 {
		return 0
	}
	h := s.handoff.Load()
	accepting := h != nil && h.Accepting()
	now := time.Now()
	back := map[string][]string{}
	var kept []handedJob
	for _, j := range jobs {
		switch {
		case !accepting || now.After(j.until):
			back[j.token] = append(back[j.token], j.m.ID)
		case h.Reserve(j.m.EndpointID):
			h.Start(j.m, j.t, j.token)
		default:
			kept = append(kept, j)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), sendBatchDeadline)
	defer cancel()
	s.giveBack(ctx, back)
	w.mu.Lock()
	w.jobs = append(kept, w.jobs...) // (those added meanwhile came later)
	n := len(w.jobs)
	w.mu.Unlock()
	return n
}

// runWaiting retries the waiting messages until ctx ends, then gives back
// what still waits.
func (s postgresPath) runWaiting(ctx context.Context) {
	t := time.NewTicker(waitingRetry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.handoffGone()
			return
		case <-s.waiting.wake:
		}
		for s.retryWaiting() > 0 {
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			if ctx.Err() != nil {
				break
			}
		}
	}
}

// handoffGone gives back every waiting message (this process stops).
func (s postgresPath) handoffGone() {
	w := &s.waiting
	w.mu.Lock()
	jobs := w.jobs
	w.jobs = nil
	w.mu.Unlock()
	back := map[string][]string{}
	for _, j := range jobs {
		back[j.token] = append(back[j.token], j.m.ID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), sendBatchDeadline)
	defer cancel()
	s.giveBack(ctx, back)
}

// listenDue relays due notifications to Due and takes handed messages
// until ctx ends, announcing this process to api processes while it
// offers handoffs; it keeps reading its take channel for takeGrace after
// ctx ends, giving back what was handed to it meanwhile.
func (s postgresPath) listenDue(ctx context.Context) {
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(takeGrace, cancel) })
	defer stop()
	go s.announce(ctx)
	waitingDone := make(chan struct{})
	go func() { defer close(waitingDone); s.runWaiting(lctx) }()
	defer func() { cancel(); <-waitingDone }()
	takes := make(chan string, 64)
	var wg sync.WaitGroup
	for range takers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range takes {
				s.take(p)
			}
		}()
	}
	defer wg.Wait()
	defer close(takes)
	take := takeChannel(s.instance)
	s.listen(lctx, []string{dueChannel, take}, func(channel, payload string) {
		switch {
		case channel == take:
			takes <- payload
		case payload != s.instance:
			s.poke() // this store's own changes poked already
		}
	})
}

// takers is how many handed batches a worker process reads at once.
const takers = 4

// prefixed puts prefix before each of the comma-separated columns.
func prefixed(prefix, columns string) string {
	cols := strings.Split(columns, ", ")
	for i, c := range cols {
		cols[i] = prefix + c
	}
	return strings.Join(cols, ", ")
}
