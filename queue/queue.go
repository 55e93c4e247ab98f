// Package queue runs hookd's durable queue: it claims due jobs from a
// database, leases them to a bounded pool of workers, keeps the leases of
// running jobs alive, rescues the leases of processes that died, wakes up
// when jobs fall due, takes jobs a send hands over at its commit, drains on
// shutdown, and (commit.go) gathers writes into group commits.
//
// It knows nothing of messages, endpoints or HTTP. A Driver brings one
// database's statements (store implements them for PostgreSQL and SQLite,
// and queuetest holds the conformance suite every driver passes); the
// caller brings the work a job is, and each job's group (hookd's endpoint),
// whose jobs in flight are capped.
package queue

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/hookd/hookd/ids"
)

// Job is a job leased to this process: its id, its group, when it fell due
// and what the work needs.
type Job[V any] struct {
	ID    string
	Group string
	// DueAt is when the job fell due, for the backlog rule (Queue.claim);
	// nil leaves the job out of it (a job that waited for another, such as
	// the next message of an ordered key).
	DueAt *time.Time
	Value V
}

// Driver is one database's side of the queue. Every method must be safe
// for concurrent use; queuetest.Run checks the behaviour described here.
type Driver[V any] interface {
	// Claim leases up to limit due jobs (the longest due first; the order
	// of the answer is not defined), of no group in skip, under token until
	// lease has passed. A job is leased to one claimer at a time. If it
	// leased jobs but could not load what they need, it returns them with
	// the error, and the queue releases them.
	Claim(ctx context.Context, token string, lease time.Duration, limit int, skip []string) ([]Job[V], error)
	// Extend renews for lease the leases of the jobs in held (id to
	// token) that are still held under that token.
	Extend(ctx context.Context, held map[string]string, lease time.Duration) error
	// Release gives back job id, leased under token, without spending an
	// attempt: it falls due again after delay. A token that no longer
	// holds the job changes nothing.
	Release(ctx context.Context, id, token string, delay time.Duration) error
	// Rescue makes due again the jobs whose lease ended, and says how many.
	Rescue(ctx context.Context) (int64, error)
	// Due is signalled when jobs may have fallen due.
	Due() <-chan struct{}
	// Listen relays other processes' wake-ups to Due until ctx ends (a
	// driver of a one-process database returns at once). Run waits for it
	// to return: a driver that takes jobs other processes hand it may
	// keep listening a moment after ctx ends, to give back what they
	// handed it before they heard it stop.
	Listen(ctx context.Context)
	// Offer makes new jobs go straight to h at their commit, leased for
	// lease, from now on; a driver that cannot hand jobs over ignores it.
	// Every Reserve that succeeds is followed by one Start or one
	// Unreserve. A handed-over job whose lease ends without a release is
	// due again (for a claim, or after Rescue).
	Offer(h Handoff[V], lease time.Duration)
	// Withdraw stops handing jobs to h (a job whose Reserve succeeded
	// still gets its Start or Unreserve).
	Withdraw(h Handoff[V])
}

// Handoff is how a driver gives a newly committed job straight to a
// running queue's workers, with no claim between the commit and the work.
type Handoff[V any] interface {
	// Reserve takes a worker for a job of group, if one is free for it,
	// before the job's commit; it reports whether it did.
	Reserve(group string) bool
	// Unreserve gives back a reservation that was not used.
	Unreserve(group string)
	// Start runs j, leased under token, on the reserved worker.
	Start(j Job[V], token string)
	// Accepting reports whether the queue takes jobs at their commit at
	// all now: it runs and is not working through a backlog (a Reserve
	// may still find every worker busy). A driver that takes jobs
	// committed by other processes tells them.
	Accepting() bool
	// Waits reports whether a job of group that Reserve refused lacks only
	// a free worker (every worker busy, or the group at its cap), so that
	// a driver holding it may retry Reserve soon; otherwise (draining, a
	// backlog, the group held back or not admitted) it should go back to
	// the database.
	Waits(group string) bool
}

// Config tunes a Queue. Zero fields take the defaults in brackets.
type Config struct {
	// Workers is how many jobs run at once [64].
	Workers int
	// GroupConcurrency caps the jobs of one group running at once [8].
	GroupConcurrency int
	// ClaimBatch is how many jobs one claim takes at most [32].
	ClaimBatch int
	// Lease is how long a job stays with this process without a heartbeat
	// [1m].
	Lease time.Duration
	// PollInterval is how often the queue claims when nothing signals new
	// work (retries falling due) [500ms].
	PollInterval time.Duration
	// DrainTimeout bounds how long Run waits, after its context ends, for
	// jobs in flight, before it cancels them [30s].
	DrainTimeout time.Duration
	// NoHandoff claims every job instead of taking them at their commit.
	NoHandoff bool
	// Admit, if set, must agree before a job of group is taken at its
	// commit; a job it refuses is claimed later instead (hookd refuses the
	// endpoints its circuit breaker holds back).
	Admit func(group string) bool
	// Now is the clock the backlog rule reads [time.Now].
	Now func() time.Time
	// Log receives the queue's own lines (claims, leases, rescue, drain)
	// [slog.Default()]. They name a job by message_id and its group by
	// endpoint_id, as hookd's other lines do.
	Log *slog.Logger
}

func (c *Config) defaults() {
	if c.Workers <= 0 {
		c.Workers = 64
	}
	if c.GroupConcurrency <= 0 {
		c.GroupConcurrency = 8
	}
	if c.ClaimBatch <= 0 {
		c.ClaimBatch = 32
	}
	if c.Lease <= 0 {
		c.Lease = time.Minute
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 500 * time.Millisecond
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// Work is what running a job means. It is called on a worker, with a
// context that ends only when a drain gives up on the job; the job's lease
// is kept alive until it returns. It must end the job's lease itself (the
// driver's completion, or Queue.Release).
type Work[V any] func(ctx context.Context, j Job[V], token string)

// Queue runs jobs from a Driver on a bounded pool of workers.
type Queue[V any] struct {
	d    Driver[V]
	cfg  Config
	work Work[V]
	log  *slog.Logger

	mu        sync.Mutex
	inflight  int                   // worker slots taken (by jobs, reservations and claims under way)
	byGroup   map[string]int        // jobs running or reserved, by group
	holdUntil map[string]time.Time  // groups not to claim before then (Hold)
	held      map[leaseKey]struct{} // leases of the jobs in flight
	freed     chan struct{}
	wake      chan struct{} // Wake
	idle      chan func()   // idle worker goroutines take jobs here
	workers   int           // worker goroutines started
	draining  bool          // Run's context ended: no more handoffs
	backlog   bool          // the last claim was full of jobs long due: handoffs stop
	ran       bool
	wg        sync.WaitGroup
	workCtx   context.Context // jobs and their writes; cancelled when a drain gives up (read with jobContext)
}

// leaseKey identifies one lease: the same job may be leased again (by a
// new claim) while an older run of it is still winding down.
type leaseKey struct{ id, token string }

// New returns a Queue of d's jobs, run by work; it does nothing until Run.
func New[V any](d Driver[V], cfg Config, work Work[V]) *Queue[V] {
	cfg.defaults()
	return &Queue[V]{d: d, cfg: cfg, work: work, log: cfg.Log,
		byGroup: map[string]int{}, holdUntil: map[string]time.Time{}, held: map[leaseKey]struct{}{},
		freed: make(chan struct{}, 1), wake: make(chan struct{}, 1), idle: make(chan func()), workCtx: context.Background()}
}

// Run claims and runs due jobs (and, unless NoHandoff, jobs handed over at
// their commit) until ctx ends, then stops taking jobs, waits up to
// DrainTimeout for the jobs in flight, cancels the rest (their work's
// context ends, and they are expected to release their jobs), and returns
// once every job has returned.
func (q *Queue[V]) Run(ctx context.Context) error {
	q.mu.Lock()
	ran := q.ran
	q.ran = true
	q.mu.Unlock()
	if ran {
		return errors.New("queue: a queue runs once")
	}
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	q.mu.Lock()
	q.workCtx = workCtx
	q.mu.Unlock()
	listenDone := make(chan struct{})
	go func() { defer close(listenDone); q.d.Listen(ctx) }()
	defer func() { <-listenDone }()
	h := handoff[V]{q}
	if !q.cfg.NoHandoff {
		q.d.Offer(h, q.cfg.Lease)
	}
	// From the moment ctx ends, no job is handed over (one whose
	// reservation succeeded already still starts; the drain waits for it).
	handoffStopped := make(chan struct{})
	context.AfterFunc(ctx, func() {
		q.d.Withdraw(h)
		q.mu.Lock()
		q.draining = true
		q.mu.Unlock()
		close(handoffStopped)
	})

	poll := time.NewTicker(q.cfg.PollInterval)
	defer poll.Stop()
	rescue := time.NewTicker(rescueEvery(q.cfg.Lease))
	defer rescue.Stop()
	q.rescue(ctx)
	heartbeatDone := make(chan struct{})
	go func() { defer close(heartbeatDone); q.heartbeat(workCtx) }()

	var lastClaim time.Time
	full := false
	for ctx.Err() == nil {
		if gap := time.Since(lastClaim); !full && gap < claimGap {
			// Under load, wait a moment so a claim takes several jobs
			// rather than one (each claim is a round trip and a commit).
			sleep(ctx, claimGap-gap)
		}
		lastClaim = time.Now()
		var capped bool
		full, capped = q.claim(ctx)
		if full {
			continue // more may be due right now
		}
		// A finished job is a reason to claim again only if the last
		// claim was held back by the worker or group limits: otherwise
		// every job would cost an (empty) claim.
		var freed <-chan struct{}
		if capped {
			freed = q.freed
		}
		select {
		case <-ctx.Done():
		case <-q.d.Due():
		case <-q.wake:
		case <-poll.C:
		case <-freed:
		case <-rescue.C:
			q.rescue(ctx)
		}
	}

	<-handoffStopped // no reservation follows: the wait below sees them all
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(q.cfg.DrainTimeout):
		in, ids := q.inFlight()
		q.log.Warn("drain timeout: abandoning attempts in flight; their messages are released", "in_flight", in, "message_ids", ids)
		cancelWork()
		<-done
	}
	cancelWork()
	<-heartbeatDone
	close(q.idle) // every job has returned: the workers exit
	return nil
}

// claimGap is the least time between the starts of two claims that did not
// fill their batch: a job committed after a quiet moment is claimed at
// once, while under load claims take several jobs each.
const claimGap = time.Millisecond

// heartbeat extends the leases of the jobs in flight every third of a lease
// until ctx ends, so only a process that stopped (or lost the database)
// lets its jobs be rescued.
func (q *Queue[V]) heartbeat(ctx context.Context) {
	t := time.NewTicker(q.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		q.mu.Lock()
		held := make(map[string]string, len(q.held))
		for l := range q.held {
			held[l.id] = l.token
		}
		q.mu.Unlock()
		if len(held) == 0 {
			continue
		}
		qctx, cancel := q.dbContext(ctx)
		err := q.d.Extend(qctx, held, q.cfg.Lease)
		cancel()
		if err != nil && ctx.Err() == nil {
			q.log.Warn("extending leases failed; they may expire and be rescued", "in_flight", len(held), "error", err.Error())
		}
	}
}

func rescueEvery(lease time.Duration) time.Duration {
	return min(max(lease/4, 100*time.Millisecond), 10*time.Second)
}

// dbContext bounds one database call of the queue. It is not cancelled by
// shutdown: a query is never interrupted half-way (the SQLite driver's
// interrupt races with closing the database), and the loops check ctx
// between calls instead.
func (q *Queue[V]) dbContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), q.cfg.Lease/2)
}

func (q *Queue[V]) rescue(ctx context.Context) {
	qctx, cancel := q.dbContext(ctx)
	defer cancel()
	n, err := q.d.Rescue(qctx)
	if err != nil {
		if ctx.Err() == nil {
			q.log.Warn("rescuing expired leases failed", "error", err.Error())
		}
		return
	}
	if n > 0 {
		q.log.Info("rescued messages whose lease expired", "count", n)
	}
}

// inFlight is the number of worker slots taken and the ids of the jobs in
// flight (for the drain-timeout line).
func (q *Queue[V]) inFlight() (int, []string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	ids := make([]string, 0, len(q.held))
	for l := range q.held {
		ids = append(ids, l.id)
	}
	return q.inflight, ids
}

// Snapshot is the queue's accounting at one moment.
type Snapshot struct {
	InFlight int  // worker slots taken
	Backlog  bool // handoffs are off because claims found long-due jobs
	Draining bool // Run's context ended
}

// Snapshot returns the queue's accounting now.
func (q *Queue[V]) Snapshot() Snapshot {
	q.mu.Lock()
	defer q.mu.Unlock()
	return Snapshot{InFlight: q.inflight, Backlog: q.backlog, Draining: q.draining}
}

// Wake makes the queue claim again at once: the work knows that jobs fell
// due which the driver did not signal (the next message of an ordered key,
// once the one before it ended).
func (q *Queue[V]) Wake() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Hold keeps the jobs of group from being claimed or handed over until
// until (a rate limit or a circuit breaker waits).
func (q *Queue[V]) Hold(group string, until time.Time) {
	q.mu.Lock()
	q.holdUntil[group] = until
	q.mu.Unlock()
}

// HeldUntil says until when Hold holds group back, if it does (a hold
// that has passed is forgotten at the next claim).
func (q *Queue[V]) HeldUntil(group string) (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	until, ok := q.holdUntil[group]
	return until, ok
}

// claim claims as many jobs as there are free workers and starts each. It
// reports whether it filled its request (so more may be waiting), and
// whether the worker limit or a group's cap held it back (so a finished job
// may let more start).
func (q *Queue[V]) claim(ctx context.Context) (full, capped bool) {
	q.mu.Lock()
	free := q.cfg.Workers - q.inflight
	var skip []string
	for g, n := range q.byGroup {
		if n >= q.cfg.GroupConcurrency {
			skip = append(skip, g)
			capped = true
		}
	}
	now := time.Now()
	for g, until := range q.holdUntil {
		if now.Before(until) {
			skip = append(skip, g)
		} else {
			delete(q.holdUntil, g)
		}
	}
	if free <= 0 {
		q.mu.Unlock()
		return false, true
	}
	// The workers for the claim are taken now, so a handoff cannot take
	// them while the claim runs; what the claim does not use is given back
	// when it returns.
	want := min(free, q.cfg.ClaimBatch)
	q.inflight += want
	q.mu.Unlock()
	reserved, started := want, 0
	behind := false // see backlogAge
	// giveBack returns the workers not started; calling it again is a no-op.
	giveBack := func() {
		q.mu.Lock()
		q.inflight -= reserved - started
		reserved = started
		q.backlog = behind
		q.mu.Unlock()
	}
	defer giveBack()
	token := ids.RandomAlnum(16)
	qctx, cancel := q.dbContext(ctx)
	defer cancel()
	jobs, err := q.d.Claim(qctx, token, q.cfg.Lease, want, skip)
	if err != nil && len(jobs) > 0 {
		ids := make([]string, len(jobs))
		for i, j := range jobs {
			ids[i] = j.ID
		}
		q.log.Warn("loading endpoints failed; releasing claimed messages", "message_ids", ids, "error", err.Error())
		for _, j := range jobs {
			q.Release(j, token, 0)
		}
		giveBack()                     // handoffs may use the workers meanwhile
		sleep(ctx, q.cfg.PollInterval) // the releases make them due at once: do not spin
		return false, capped
	}
	if err != nil {
		if ctx.Err() == nil {
			q.log.Warn("claiming messages failed", "error", err.Error())
			giveBack()
			sleep(ctx, q.cfg.PollInterval)
		}
		return false, capped
	}
	for _, j := range jobs {
		q.mu.Lock()
		if q.byGroup[j.Group] >= q.cfg.GroupConcurrency {
			q.mu.Unlock()
			q.Release(j, token, 0)
			capped = true
			continue
		}
		started++ // its worker was taken before the claim
		q.byGroup[j.Group]++
		q.held[leaseKey{j.ID, token}] = struct{}{}
		q.mu.Unlock()
		q.wg.Add(1)
		q.run(j, token)
	}
	full = len(jobs) == want
	behind = full && longestDue(jobs, q.cfg.Now()) > backlogAge
	return full, capped
}

// backlogAge is how long the jobs of a full claim must have been due for
// the queue to stop taking jobs at their commit, so that new jobs queue
// behind the older ones instead of overtaking them for as long as the
// backlog lasts. A full claim of jobs due for less (the rest of a publish
// that had more endpoints than free workers, say) is no backlog: the
// claims keep up, and stopping the handoff there sent every following job
// down the costlier claim path.
const backlogAge = 250 * time.Millisecond

// longestDue is how long the longest-due of jobs has been due at now.
func longestDue[V any](jobs []Job[V], now time.Time) time.Duration {
	var longest time.Duration
	for _, j := range jobs {
		if j.DueAt != nil {
			longest = max(longest, now.Sub(*j.DueAt))
		}
	}
	return longest
}

// run runs j, whose worker slot and group count are taken and whose lease
// is held, on a worker, and gives them back when it returns.
func (q *Queue[V]) run(j Job[V], token string) {
	q.start(func() {
		defer q.wg.Done()
		defer q.done(leaseKey{j.ID, token}, j.Group)
		ctx := q.jobContext()
		if ctx.Err() != nil {
			// The drain gave up on jobs: this one does not start.
			q.Release(j, token, 0)
			return
		}
		q.work(ctx, j, token)
	})
}

// start runs fn on an idle worker goroutine, or on a new one if none is
// idle. Workers wait for the next job instead of exiting: a job needs a
// deep stack (HTTP client, TLS, database driver), and a fresh goroutine
// would grow its stack anew every time (measured: 7 % of hookd's CPU).
// There are never more workers than jobs that ran at once, and they exit
// when Run returns.
func (q *Queue[V]) start(fn func()) {
	select {
	case q.idle <- fn:
		return
	default:
	}
	q.mu.Lock()
	spawn := q.workers < q.cfg.Workers
	if spawn {
		q.workers++
	}
	q.mu.Unlock()
	if spawn {
		go func() {
			fn()
			for next := range q.idle {
				next()
			}
		}()
		return
	}
	// Every worker exists, and this job holds one of the Workers slots
	// (claims and handoffs take a slot before they start a job), so fewer
	// than Workers other jobs hold one: a worker has finished, or is about
	// to, and takes this.
	q.idle <- fn
}

func (q *Queue[V]) done(lease leaseKey, group string) {
	q.mu.Lock()
	delete(q.held, lease)
	q.inflight--
	if q.byGroup[group]--; q.byGroup[group] <= 0 {
		delete(q.byGroup, group)
	}
	q.mu.Unlock()
	select {
	case q.freed <- struct{}{}:
	default:
	}
}

// handoff is the queue as its driver's Handoff.
type handoff[V any] struct{ q *Queue[V] }

// Reserve takes a worker slot for a job of group if the queue runs, has a
// free worker, is not working through a backlog, and the group is below
// its cap, not held back and admitted: other jobs go through the claims,
// where their checks apply.
func (h handoff[V]) Reserve(group string) bool {
	q := h.q
	// Admit is asked first, without the queue's lock, so it may take locks
	// of its own and call the queue.
	if q.cfg.Admit != nil && !q.cfg.Admit(group) {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.draining || q.backlog || q.inflight >= q.cfg.Workers || q.byGroup[group] >= q.cfg.GroupConcurrency {
		return false
	}
	if until, ok := q.holdUntil[group]; ok && time.Now().Before(until) {
		return false
	}
	q.inflight++
	q.byGroup[group]++
	q.wg.Add(1)
	return true
}

// Accepting reports whether the queue takes handed-over jobs now.
func (h handoff[V]) Accepting() bool {
	q := h.q
	q.mu.Lock()
	defer q.mu.Unlock()
	return !q.draining && !q.backlog
}

// Waits reports whether a job of group lacks only a free worker.
func (h handoff[V]) Waits(group string) bool {
	q := h.q
	if q.cfg.Admit != nil && !q.cfg.Admit(group) {
		return false
	}
	q.mu.Lock()
	until, held := q.holdUntil[group]
	q.mu.Unlock()
	if held && time.Now().Before(until) {
		return false
	}
	return h.Accepting()
}

// Unreserve gives back a slot Reserve took.
func (h handoff[V]) Unreserve(group string) {
	h.q.done(leaseKey{}, group)
	h.q.wg.Done()
}

// Start runs a handed-over job on the slot Reserve took.
func (h handoff[V]) Start(j Job[V], token string) {
	q := h.q
	q.mu.Lock()
	q.held[leaseKey{j.ID, token}] = struct{}{}
	q.mu.Unlock()
	q.run(j, token)
}

// jobContext is the context of the jobs and their writes: background
// until Run starts (work may run outside Run, as the River variant's
// does), cancelled when a drain gives up.
func (q *Queue[V]) jobContext() context.Context {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.workCtx
}

// abandonWriteBudget bounds the last write of a job a drain gave up on.
const abandonWriteBudget = 5 * time.Second

// PersistTimeout is how long Persist retries a write: ten leases, at least
// a minute. While a worker retries, the heartbeat keeps its lease, so a
// slow database does not cause a second run; if the database is gone, the
// lease expires and another process (or this one, later) rescues the job,
// and the late write no longer changes it.
func (q *Queue[V]) PersistTimeout() time.Duration { return max(10*q.cfg.Lease, time.Minute) }

// Persist runs fn, each try bounded by half a lease, until it succeeds,
// PersistTimeout passes or a drain gives up on the jobs in flight (the
// write then gets one short budget of its own, so nothing is left running
// until a lease expires). It returns fn's last error, or nil.
func (q *Queue[V]) Persist(fn func(context.Context) error) error {
	parent, budget := q.jobContext(), q.PersistTimeout()
	if parent.Err() != nil {
		parent, budget = context.Background(), abandonWriteBudget
	}
	ctx, cancel := context.WithTimeout(parent, budget)
	defer cancel()
	wait := 50 * time.Millisecond
	for {
		try, cancelTry := q.dbContext(ctx)
		err := fn(try)
		cancelTry()
		if err == nil || ctx.Err() != nil {
			return err
		}
		sleep(ctx, wait)
		wait = min(wait*2, time.Second)
	}
}

// Release gives j, leased under token, back to the queue without a run: it
// falls due again after delay. The write is retried (Persist); if it gives
// up, the lease expires and the job is rescued.
func (q *Queue[V]) Release(j Job[V], token string, delay time.Duration) {
	if err := q.Persist(func(ctx context.Context) error { return q.d.Release(ctx, j.ID, token, delay) }); err != nil {
		q.log.Error("giving up on a database write; the lease will expire and the message be rescued",
			"what", "release", "message_id", j.ID, "endpoint_id", j.Group, "error", err.Error())
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
