package store

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
// starts each on a free worker; one that lacks only a free worker waits
// in the process for one (waitingHanded), and what it will not run
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
	// takeGrace bounds how long a worker process keeps reading its take
	// channel after it stopped taking handoffs, to give back what api
	// processes handed it before they heard it leave; it stops sooner once
	// none came for takeQuiet after it said so.
	takeGrace = time.Second
	takeQuiet = 200 * time.Millisecond
	// maxWaitingRetry is how far the retries of waiting messages slow
	// down while none of them starts (every worker busy).
	maxWaitingRetry = 50 * time.Millisecond
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
	}, nil)
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
// reconnecting after errors; up, if set, hears when the channels are
// listened to and when they no longer are (PostgreSQL drops what is
// notified meanwhile).
func (s *Store) listen(ctx context.Context, channels []string, handle func(channel, payload string), up func(bool)) {
	if up == nil {
		up = func(bool) {}
	}
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
		up(err == nil)
		for err == nil {
			var n *pgconn.Notification
			if n, err = conn.Conn().WaitForNotification(ctx); err == nil {
				handle(n.Channel, n.Payload)
			}
		}
		up(false)
		// The connection may be in any state now; do not return it to the pool.
		_ = conn.Conn().Close(context.Background())
		conn.Release()
		sleepCtx(ctx, 100*time.Millisecond)
	}
}

// announce tells api processes, every announceEvery until ctx ends, that
// this process takes handed messages while it offers handoffs, accepts
// them and listens on its take channel, and that it stopped once it does
// not (at once when ctx ends, when the listening connection is lost or
// re-established, or when take gave messages back).
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
		case h != nil && h.lease > 0 && h.Accepting() && s.takeListening.Load() && !s.waiting.full():
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
// 5 ms a statement. A message whose lease has less than @left to run is
// not taken (see take).
var pgTakeHanded = newNamed(`WITH c AS (SELECT ` + prefixed("m.", claimedColumns) + `
FROM unnest(CAST(@ids AS text[])) AS x(id) JOIN messages m ON m.id = x.id
WHERE m.lease_token = CAST(@tok AS text) AND m.status = 'queued' AND m.deleted_at IS NULL
  AND m.lease_until > now() + make_interval(secs => CAST(@left AS double precision))),
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
// handed; those that lack only a free worker here wait for one
// (waitingHanded); the rest are given back, due at once.
//
// A message is taken only with at least five sixths of its lease left,
// and waits at most a sixth of it: it starts with two thirds of its lease
// left or more, and the heartbeat renews it within a third, so a third of
// the lease is left for the renewal itself (a claimed message has two).
// So a lease does not end while the message is in this process, and no
// claim elsewhere can take it meanwhile (one handed over long before this
// read, say behind a backlog of notifications, is given back instead).
func (s postgresPath) take(payload string) {
	token, rest, _ := strings.Cut(payload, " ")
	ids := strings.Fields(rest)
	if token == "" || len(ids) == 0 {
		return
	}
	received, handed := time.Now(), len(ids)
	ctx, cancel := context.WithTimeout(context.Background(), sendBatchDeadline)
	defer cancel()
	back := ids
	started, waiting := 0, 0
	if h := s.handoff.Load(); h != nil {
		targets := map[string]DeliveryTarget{}
		msgs, err := s.pgScanClaim(ctx, pgTakeHanded, map[string]any{"ids": ids, "tok": token, "left": (5 * h.lease / 6).Seconds()}, nil, targets)
		if err != nil {
			s.log.Warn("reading handed messages failed; giving them back", "message_ids", ids, "error", err.Error())
		} else {
			kept := map[string]bool{}
			for _, m := range msgs {
				m.Status = StatusQueued // (leased, as the api process stored it)
				t, ok := targets[m.EndpointID]
				switch {
				case !ok:
					continue
				case h.Reserve(m.EndpointID):
					h.Start(m, t, token)
					started++
				case h.Waits(m.EndpointID) && s.waiting.add(handedJob{m: m, t: t, token: token, until: received.Add(h.lease / 6)}):
					waiting++
				default:
					continue
				}
				kept[m.ID] = true
			}
			// The rest: not read (a lease too short, or no longer this
			// token's), or refused. Giving back changes only rows still
			// leased under token.
			back = slices.DeleteFunc(ids, func(id string) bool { return kept[id] })
		}
	}
	s.log.Debug("took messages handed over by an api process", "handed", handed, "started", started, "waiting", waiting)
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
	until time.Time // given back after this: a sixth of its lease after it came
}

// waitingHanded holds the messages handed to this worker process that
// lacked only a free worker (every worker busy, or their endpoint at its
// cap). Giving each back at once would cost a write and then a claim;
// instead they start as workers free up (retried every waitingRetry, less
// often while none starts), in the order they came. One still waiting
// after a sixth of its lease, or when this process stops accepting handed
// messages, is given back.
type waitingHanded struct {
	mu    sync.Mutex
	jobs  []handedJob
	bytes int           // of their payloads
	wake  chan struct{} // signalled when jobs were added
}

const (
	// maxWaitingHanded and maxWaitingBytes bound the messages waiting in
	// a worker process, and their payloads; beyond them, messages are
	// given back.
	maxWaitingHanded = 1024
	maxWaitingBytes  = 32 << 20
	// waitingRetry is how often waiting messages try for a worker.
	waitingRetry = 2 * time.Millisecond
)

func (w *waitingHanded) add(j handedJob) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.jobs) >= maxWaitingHanded || w.bytes+len(j.m.Payload) > maxWaitingBytes {
		return false
	}
	w.jobs = append(w.jobs, j)
	w.bytes += len(j.m.Payload)
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return true
}

// takeAll empties the list and returns what it held.
func (w *waitingHanded) takeAll() []handedJob {
	w.mu.Lock()
	defer w.mu.Unlock()
	jobs := w.jobs
	w.jobs, w.bytes = nil, 0
	return jobs
}

// putBack returns kept to the front of the list (those added meanwhile
// came later), and says how many wait.
func (w *waitingHanded) putBack(kept []handedJob) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.jobs = append(kept, w.jobs...)
	w.bytes = 0
	for _, j := range w.jobs {
		w.bytes += len(j.m.Payload)
	}
	return len(w.jobs)
}

func (w *waitingHanded) full() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.jobs) >= maxWaitingHanded || w.bytes >= maxWaitingBytes
}

// retryWaiting starts the waiting messages that have a free worker now
// (trying each endpoint once a round: its others wait behind the first
// refused), gives back those that waited too long or no longer lack only
// a worker (all, if this process is stopping or does not take handed
// messages now), and says how many still wait and how many it started.
func (s postgresPath) retryWaiting(stopping bool) (waiting, started int) {
	jobs := s.waiting.takeAll()
	if len(jobs) == 0 {
		return 0, 0
	}
	h := s.handoff.Load()
	now := time.Now()
	back := map[string][]string{}
	refused := map[string]bool{}
	var kept []handedJob
	for _, j := range jobs {
		group := j.m.EndpointID
		switch {
		case stopping || h == nil || now.After(j.until):
			back[j.token] = append(back[j.token], j.m.ID)
		case refused[group]:
			kept = append(kept, j)
		case h.Reserve(group):
			h.Start(j.m, j.t, j.token)
			started++
		case h.Waits(group):
			refused[group] = true
			kept = append(kept, j)
		default:
			back[j.token] = append(back[j.token], j.m.ID)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), sendBatchDeadline)
	defer cancel()
	s.giveBack(ctx, back)
	return s.waiting.putBack(kept), started
}

// runWaiting retries the waiting messages until ctx ends, then gives back
// what still waits. The retries slow down, up to maxWaitingRetry apart,
// while none starts (every worker busy), and speed up again when one does
// or more come.
func (s postgresPath) runWaiting(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			s.retryWaiting(true) // gives back all that waits
			return
		case <-s.waiting.wake:
		}
		every := waitingRetry
		for {
			waiting, started := s.retryWaiting(false)
			if waiting == 0 {
				break
			}
			if started > 0 {
				every = waitingRetry
			} else {
				every = min(2*every, maxWaitingRetry)
			}
			t := time.NewTimer(every)
			select {
			case <-ctx.Done():
			case <-s.waiting.wake:
				every = waitingRetry
			case <-t.C:
			}
			t.Stop()
			if ctx.Err() != nil {
				break
			}
		}
	}
}

// listenDue relays due notifications to Due and takes handed messages
// until ctx ends, announcing this process to api processes while it
// offers handoffs. After ctx ends, once it said it stops, it keeps reading
// its take channel until no handed batch has come for takeQuiet (at most
// takeGrace), giving back
// what api processes handed it before they heard it stop; then it gives
// back what still waits for a worker, and returns.
func (s postgresPath) listenDue(ctx context.Context) {
	lctx, stopListening := context.WithCancel(context.WithoutCancel(ctx))
	defer stopListening()
	var lastTake atomic.Int64 // unix nanoseconds
	announced := make(chan struct{})
	go func() { defer close(announced); s.announce(ctx) }()
	stop := context.AfterFunc(ctx, func() {
		<-announced // it said it stops: api processes hear it from now on
		ended := time.Now()
		t := time.NewTicker(takeQuiet / 5)
		defer t.Stop()
		for range t.C {
			now := time.Now()
			last := time.Unix(0, lastTake.Load())
			if now.Sub(ended) >= takeGrace || (now.Sub(ended) >= takeQuiet && now.Sub(last) >= takeQuiet) {
				stopListening()
				return
			}
		}
	})
	defer stop()
	waitCtx, stopWaiting := context.WithCancel(context.Background())
	waited := make(chan struct{})
	go func() { defer close(waited); s.runWaiting(waitCtx) }()
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
	take := takeChannel(s.instance)
	s.listen(lctx, []string{dueChannel, take}, func(channel, payload string) {
		switch {
		case channel == take:
			lastTake.Store(time.Now().UnixNano())
			takes <- payload
		case payload != s.instance:
			s.poke() // this store's own changes poked already
		}
	}, func(up bool) {
		if s.takeListening.Swap(up) != up {
			select { // api processes hear of it at once
			case s.announceNow <- struct{}{}:
			default:
			}
		}
	})
	// Every take has finished before the waiting list is given back, so
	// nothing a take adds is left behind.
	close(takes)
	wg.Wait()
	stopWaiting()
	<-waited
	<-announced
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
