package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/hookd/hookd/customheaders"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/secrets"
	"github.com/hookd/hookd/signature"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/tracing"
)

// Config tunes an Engine. Zero fields take the defaults in brackets.
type Config struct {
	// Workers is how many attempts this process runs at once [64].
	Workers int
	// ClaimBatch is how many due messages one claim takes at most [32].
	ClaimBatch int
	// EndpointConcurrency caps this process's attempts in flight to one
	// endpoint, so a slow or dead endpoint cannot hold every worker [8].
	EndpointConcurrency int
	// AttemptTimeout bounds one HTTP attempt [30s].
	AttemptTimeout time.Duration
	// Lease is how long a claimed message stays with its worker before any
	// process may rescue it; it must exceed AttemptTimeout
	// [AttemptTimeout + 30s].
	Lease time.Duration
	// PollInterval is how often the queue is checked when nothing signals
	// new work (retries falling due) [500ms].
	PollInterval time.Duration
	// DrainTimeout bounds how long Run waits, after its context ends, for
	// attempts in flight; attempts still running then are abandoned without
	// being counted and their messages released [AttemptTimeout].
	DrainTimeout time.Duration
	// Schedule is the retry policy [DefaultSchedule()].
	Schedule Schedule
	// UserAgent is sent with every delivery ["hookd"].
	UserAgent string
	// Breaker is the endpoint circuit breaker [DefaultBreaker()]; zero
	// fields take DefaultBreaker's, negative ones turn that rule off.
	Breaker Breaker
	// Observer, if not nil, is told about every recorded attempt (metrics).
	Observer Observer
	// NoHandoff turns off handing new messages straight from a send to this
	// process's workers (PostgreSQL): every message is claimed from the
	// queue instead, and shows delivering during its first attempt.
	NoHandoff bool
	// TracerProvider, if not nil, records a span for every attempt, a
	// child of the span of the request that sent the message when it was
	// traced (store.Message.TraceParent).
	TracerProvider oteltrace.TracerProvider
	// TraceHeader adds the attempt span's W3C traceparent header to
	// deliveries (it replaces one the message or endpoint set), so a
	// receiver that traces continues the trace.
	TraceHeader bool
}

func (c *Config) defaults() {
	if c.Workers <= 0 {
		c.Workers = 64
	}
	if c.ClaimBatch <= 0 {
		c.ClaimBatch = 32
	}
	if c.EndpointConcurrency <= 0 {
		c.EndpointConcurrency = 8
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = 30 * time.Second
	}
	if c.Lease <= 0 {
		c.Lease = c.AttemptTimeout + 30*time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 500 * time.Millisecond
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = c.AttemptTimeout
	}
	if c.Schedule.MaxAttempts == 0 {
		c.Schedule = DefaultSchedule()
	}
	if c.UserAgent == "" {
		c.UserAgent = "hookd"
	}
	c.Breaker = c.Breaker.withDefaults()
}

// Validate says what is wrong with c (after defaults).
func (c Config) Validate() error {
	c.defaults()
	if c.Lease <= c.AttemptTimeout {
		return fmt.Errorf("the lease (%s) must be longer than the attempt timeout (%s), or live attempts would be taken over", c.Lease, c.AttemptTimeout)
	}
	return c.Schedule.Validate()
}

// sender makes the HTTP requests of attempts: *Sender, or a fake in the
// engine's tests.
type sender interface {
	Do(ctx context.Context, r Request) Result
	CloseIdle()
}

// Engine delivers messages. Several engines, in one process or many, may
// share a database: a message is leased to one engine at a time.
type Engine struct {
	tracer oteltrace.Tracer // nil: tracing off
	st     *store.Store
	kr     *secrets.Keyring
	sender sender
	cfg    Config
	// log is for lines about one message: they carry message_id and
	// endpoint_id. qlog is for lines about the queue as a whole (claims,
	// leases, rescue, drain), which carry counts or id lists instead.
	// Neither ever logs a payload, a header value or a secret.
	log, qlog *slog.Logger

	secretsMu sync.Mutex
	secrets   map[string]string // signing key id → secret (immutable once made)
	// headers caches opened custom headers by endpoint id, with the sealed
	// bytes they came from (a PATCH replaces them).
	headers map[string]openedHeaders

	mu         sync.Mutex
	inflight   int
	byEndpoint map[string]int
	holdUntil  map[string]time.Time  // endpoints waiting for their rate limit or next probe
	failing    map[string]int        // failures in a row this process last saw, by endpoint
	held       map[leaseKey]struct{} // leases of the messages in flight
	freed      chan struct{}
	idle       chan func() // idle worker goroutines take attempts here
	workers    int         // worker goroutines started
	draining   bool        // Run's context ended: no more handoffs
	backlog    bool        // the last claim was full of messages long due: older messages wait, sends do not jump them
	ran        bool        // Run was called
	wg         sync.WaitGroup
	now        func() time.Time
	// applied, if not nil, is told every outcome once apply has written
	// it (the engine's tests wait on it).
	applied func(store.Message, Outcome)
	workCtx context.Context // attempts and their writes; cancelled when a drain gives up
}

// New returns an Engine; it does nothing until Run.
func New(st *store.Store, kr *secrets.Keyring, sender *Sender, cfg Config, log *slog.Logger) (*Engine, error) {
	if st == nil || kr == nil || sender == nil {
		return nil, errors.New("delivery: store, keyring and sender are required")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.defaults()
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "delivery")
	return &Engine{st: st, kr: kr, sender: sender, cfg: cfg, log: log, qlog: log.With("scope", "queue"), secrets: map[string]string{}, headers: map[string]openedHeaders{},
		byEndpoint: map[string]int{}, holdUntil: map[string]time.Time{}, failing: map[string]int{}, held: map[leaseKey]struct{}{}, freed: make(chan struct{}, 1), idle: make(chan func()), now: store.Now,
		workCtx: context.Background(), tracer: tracerOf(cfg.TracerProvider)}, nil
}

// Run claims and delivers due messages until ctx ends, then stops claiming,
// waits up to DrainTimeout for attempts in flight (recording them), releases
// any it had to abandon, and returns.
func (e *Engine) Run(ctx context.Context) error {
	e.mu.Lock()
	ran := e.ran
	e.ran = true
	e.mu.Unlock()
	if ran {
		return errors.New("delivery: an engine runs once")
	}
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	e.workCtx = workCtx
	go e.st.ListenDue(ctx)
	if !e.cfg.NoHandoff {
		e.st.SetHandoff(handoff{e}, e.cfg.Lease)
	}
	// From the moment ctx ends, sends stop handing messages over (a send
	// that reserved a worker already still starts it; the drain below
	// waits for it).
	handoffStopped := make(chan struct{})
	context.AfterFunc(ctx, func() {
		e.st.ClearHandoff(handoff{e})
		e.mu.Lock()
		e.draining = true
		e.mu.Unlock()
		close(handoffStopped)
	})

	poll := time.NewTicker(e.cfg.PollInterval)
	defer poll.Stop()
	rescue := time.NewTicker(rescueEvery(e.cfg.Lease))
	defer rescue.Stop()
	e.rescue(ctx)
	heartbeatDone := make(chan struct{})
	go func() { defer close(heartbeatDone); e.heartbeat(workCtx) }()

	var lastClaim time.Time
	full := false
	for ctx.Err() == nil {
		if gap := time.Since(lastClaim); !full && gap < claimGap {
			// Under load, wait a moment so a claim takes several messages
			// rather than one (each claim is a round trip and a commit).
			sleep(ctx, claimGap-gap)
		}
		lastClaim = time.Now()
		var capped bool
		full, capped = e.claimAndStart(ctx)
		if full {
			continue // more may be due right now
		}
		// A finished attempt is a reason to claim again only if the last
		// claim was held back by the worker or endpoint limits: otherwise
		// every attempt would cost an (empty) claim.
		var freed <-chan struct{}
		if capped {
			freed = e.freed
		}
		select {
		case <-ctx.Done():
		case <-e.st.Due():
		case <-poll.C:
		case <-freed:
		case <-rescue.C:
			e.rescue(ctx)
		}
	}

	<-handoffStopped // no reservation follows: the wait below sees them all
	done := make(chan struct{})
	go func() { e.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(e.cfg.DrainTimeout):
		e.qlog.Warn("drain timeout: abandoning attempts in flight; their messages are released", "in_flight", e.inFlight(), "message_ids", e.heldIDs())
		cancelWork()
		<-done
	}
	cancelWork()
	<-heartbeatDone
	close(e.idle) // every attempt has returned: the workers exit
	e.sender.CloseIdle()
	return nil
}

// claimGap is the least time between the starts of two claims that did not
// fill their batch: a message sent after a quiet moment is claimed at once,
// while under load claims take several messages each.
const claimGap = time.Millisecond

// heartbeat extends the leases of the messages in flight every third of a
// lease until ctx ends, so only a process that stopped (or lost the
// database) lets its messages be rescued.
func (e *Engine) heartbeat(ctx context.Context) {
	t := time.NewTicker(e.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.mu.Lock()
		held := make(map[string]string, len(e.held))
		for l := range e.held {
			held[l.id] = l.token
		}
		e.mu.Unlock()
		qctx, cancel := e.dbContext(ctx)
		err := e.st.ExtendLeases(qctx, held, e.cfg.Lease)
		cancel()
		if err != nil && ctx.Err() == nil {
			e.qlog.Warn("extending leases failed; they may expire and be rescued", "in_flight", len(held), "error", err.Error())
		}
	}
}

func rescueEvery(lease time.Duration) time.Duration {
	d := lease / 4
	if d < 100*time.Millisecond {
		d = 100 * time.Millisecond
	}
	if d > 10*time.Second {
		d = 10 * time.Second
	}
	return d
}

// dbContext bounds one database call of the engine's loops. It is not
// cancelled by shutdown: a query is never interrupted half-way (the SQLite
// driver's interrupt races with closing the database), and the loops check
// ctx between calls instead.
func (e *Engine) dbContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), e.cfg.Lease/2)
}

func (e *Engine) rescue(ctx context.Context) {
	qctx, cancel := e.dbContext(ctx)
	defer cancel()
	n, err := e.st.RescueExpired(qctx)
	if err != nil {
		if ctx.Err() == nil {
			e.qlog.Warn("rescuing expired leases failed", "error", err.Error())
		}
		return
	}
	if n > 0 {
		e.qlog.Info("rescued messages whose lease expired", "count", n)
	}
}

func (e *Engine) inFlight() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.inflight
}

// heldIDs lists the messages in flight, for the drain-timeout log line.
func (e *Engine) heldIDs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, 0, len(e.held))
	for l := range e.held {
		out = append(out, l.id)
	}
	return out
}

// claimAndStart claims as many messages as there are free workers and starts
// an attempt for each. It reports whether it filled its request (so more
// may be waiting), and whether the worker limit or an endpoint's
// concurrency limit held it back (so a finished attempt may let more start).
func (e *Engine) claimAndStart(ctx context.Context) (full, capped bool) {
	e.mu.Lock()
	free := e.cfg.Workers - e.inflight
	var skip []string
	for ep, n := range e.byEndpoint {
		if n >= e.cfg.EndpointConcurrency {
			skip = append(skip, ep)
			capped = true
		}
	}
	now := time.Now()
	for ep, until := range e.holdUntil {
		if now.Before(until) {
			skip = append(skip, ep)
		} else {
			delete(e.holdUntil, ep)
		}
	}
	if free <= 0 {
		e.mu.Unlock()
		return false, true
	}
	// The workers for the claim are taken now, so a send's handoff cannot
	// take them while the claim runs; what the claim does not use is given
	// back when it returns.
	want := min(free, e.cfg.ClaimBatch)
	e.inflight += want
	e.mu.Unlock()
	reserved, started := want, 0
	behind := false // see backlogAge
	// giveBack returns the workers not started; calling it again is a no-op.
	giveBack := func() {
		e.mu.Lock()
		e.inflight -= reserved - started
		reserved = started
		e.backlog = behind
		e.mu.Unlock()
	}
	defer giveBack()
	token := ids.RandomAlnum(16)
	qctx, cancel := e.dbContext(ctx)
	defer cancel()
	msgs, targets, err := e.st.ClaimDue(qctx, token, e.cfg.Lease, want, skip)
	if err != nil && len(msgs) > 0 {
		msgIDs := make([]string, len(msgs))
		for i, m := range msgs {
			msgIDs[i] = m.ID
		}
		e.qlog.Warn("loading endpoints failed; releasing claimed messages", "message_ids", msgIDs, "error", err.Error())
		for _, m := range msgs {
			e.release(m, token, 0)
		}
		giveBack()                     // sends may use the workers meanwhile
		sleep(ctx, e.cfg.PollInterval) // the releases make them due at once: do not spin
		return false, capped
	}
	if err != nil {
		if ctx.Err() == nil {
			e.qlog.Warn("claiming messages failed", "error", err.Error())
			giveBack()
			sleep(ctx, e.cfg.PollInterval)
		}
		return false, capped
	}
	if len(msgs) == 0 {
		return false, capped
	}
	for _, m := range msgs {
		e.mu.Lock()
		if e.byEndpoint[m.EndpointID] >= e.cfg.EndpointConcurrency {
			e.mu.Unlock()
			e.release(m, token, 0)
			capped = true
			continue
		}
		started++ // its worker was taken before the claim
		e.byEndpoint[m.EndpointID]++
		e.held[leaseKey{m.ID, token}] = struct{}{}
		e.mu.Unlock()
		e.wg.Add(1)
		e.start(func() {
			defer e.wg.Done()
			defer e.done(leaseKey{m.ID, token}, m.EndpointID)
			e.deliver(e.workCtx, m, token, targets[m.EndpointID])
		})
	}
	full = len(msgs) == want
	behind = full && longestDue(msgs, e.now()) > backlogAge
	return full, capped
}

// backlogAge is how long the messages of a full claim must have been due
// for the engine to stop handing new messages to workers, so that they
// queue behind the older ones instead of overtaking them for as long as the
// backlog lasts. A full claim of messages due for less (the rest of a
// publish that had more endpoints than free workers, say) is no backlog:
// the claims keep up, and stopping the handoff there sent every following
// message down the costlier claim path.
const backlogAge = 250 * time.Millisecond

// longestDue is how long the longest-due of msgs has been due at now.
// Messages of FIFO endpoints do not count: each waits for the one before
// it, so its due time (when it was accepted) says nothing of the claims.
func longestDue(msgs []store.Message, now time.Time) time.Duration {
	var longest time.Duration
	for _, m := range msgs {
		if m.NextAttemptAt != nil && m.FIFOKey == nil {
			longest = max(longest, now.Sub(*m.NextAttemptAt))
		}
	}
	return longest
}

// start runs attempt on an idle worker goroutine, or on a new one if none is
// idle. Workers wait for the next attempt instead of exiting: an attempt
// needs a deep stack (HTTP client, TLS, database driver), and a fresh
// goroutine would grow its stack anew every time (measured: 7 % of hookd's
// CPU). There are never more workers than attempts that ran at once, and
// they exit when Run returns.
func (e *Engine) start(attempt func()) {
	select {
	case e.idle <- attempt:
		return
	default:
	}
	e.mu.Lock()
	spawn := e.workers < e.cfg.Workers
	if spawn {
		e.workers++
	}
	e.mu.Unlock()
	if spawn {
		go func() {
			attempt()
			for next := range e.idle {
				next()
			}
		}()
		return
	}
	// Every worker exists, and this attempt holds one of the Workers slots
	// (claims and handoffs take a slot before they start an attempt), so
	// fewer than Workers other attempts hold one: a worker has finished, or
	// is about to, and takes this.
	e.idle <- attempt
}

// handoff is the store's way to give a new message straight to the engine's
// workers (store.Handoff).
type handoff struct{ e *Engine }

// Reserve takes a worker slot for a message to the endpoint if the engine
// runs, has a free worker, and the endpoint is below its concurrency cap,
// not held back (rate limit, probe spacing) and not failing: those go
// through the queue, where the claim's checks apply.
func (h handoff) Reserve(endpointID string) bool {
	e := h.e
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.draining || e.backlog || e.inflight >= e.cfg.Workers || e.byEndpoint[endpointID] >= e.cfg.EndpointConcurrency {
		return false
	}
	if until, ok := e.holdUntil[endpointID]; ok && time.Now().Before(until) {
		return false
	}
	if p := e.cfg.Breaker.ProbeAfterFailures; p > 0 && e.failing[endpointID] >= p {
		return false
	}
	e.inflight++
	e.byEndpoint[endpointID]++
	e.wg.Add(1)
	return true
}

// Unreserve gives back a slot Reserve took.
func (h handoff) Unreserve(endpointID string) {
	h.e.done(leaseKey{}, endpointID)
	h.e.wg.Done()
}

// Start delivers a handed-over message on the slot Reserve took.
func (h handoff) Start(m store.Message, t store.DeliveryTarget, token string) {
	e := h.e
	lease := leaseKey{m.ID, token}
	e.mu.Lock()
	e.held[lease] = struct{}{}
	e.mu.Unlock()
	e.start(func() {
		defer e.wg.Done()
		defer e.done(lease, m.EndpointID)
		if e.workCtx.Err() != nil {
			// The drain gave up on attempts: this one does not start.
			e.release(m, token, 0)
			return
		}
		e.deliver(e.workCtx, m, token, t)
	})
}

// leaseKey identifies one lease: the same message may be leased again (by a
// new claim) while an older attempt of it is still winding down.
type leaseKey struct{ id, token string }

func (e *Engine) done(lease leaseKey, endpointID string) {
	e.mu.Lock()
	delete(e.held, lease)
	e.inflight--
	if e.byEndpoint[endpointID]--; e.byEndpoint[endpointID] <= 0 {
		delete(e.byEndpoint, endpointID)
	}
	e.mu.Unlock()
	select {
	case e.freed <- struct{}{}:
	default:
	}
}

// abandonWriteBudget bounds the final write of an attempt abandoned by a
// drain that ran out of time.
const abandonWriteBudget = 5 * time.Second

// persistTimeout bounds how long the database writes that follow an
// attempt are retried. While the worker retries, its heartbeat keeps the
// lease, so a slow database does not cause a second delivery; if the
// database is gone, the lease expires and another process (or this one,
// later) rescues the message, and the late record no longer changes it.
func (e *Engine) persistTimeout() time.Duration { return max(10*e.cfg.Lease, time.Minute) }

func (e *Engine) release(m store.Message, token string, delay time.Duration) {
	e.retryDB(func(ctx context.Context) error { return e.st.ReleaseLease(ctx, m.ID, token, delay) }, "release", m)
}

// retryDB runs fn, each try bounded by half a lease, until it succeeds,
// persistTimeout passes or the engine abandons its work (drain deadline).
// It reports whether fn succeeded.
func (e *Engine) retryDB(fn func(context.Context) error, what string, m store.Message) bool {
	parent, budget := e.workCtx, e.persistTimeout()
	if parent.Err() != nil {
		// The drain gave up on this attempt: its last write (record the
		// answer, or release the message) still gets a short, separate
		// budget, so nothing is left delivering until a lease expires.
		parent, budget = context.Background(), abandonWriteBudget
	}
	ctx, cancel := context.WithTimeout(parent, budget)
	defer cancel()
	wait := 50 * time.Millisecond
	for {
		try, cancelTry := e.dbContext(ctx)
		err := fn(try)
		cancelTry()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			e.log.Error("giving up on a database write; the lease will expire and the message be rescued",
				"what", what, "message_id", m.ID, "endpoint_id", m.EndpointID, "error", err.Error())
			return false
		}
		sleep(ctx, wait)
		wait = min(wait*2, time.Second)
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

// deliver takes m, leased under token, through one turn: attempt decides
// its outcome, apply writes it.
func (e *Engine) deliver(ctx context.Context, m store.Message, token string, t store.DeliveryTarget) {
	e.apply(m, token, t, e.attempt(ctx, m, t))
}

// attempt makes one attempt of m, or finds why none may be made now, and
// says what came of it. It writes nothing about m itself (apply does); the
// breaker's probe and the endpoint's rate limit are the shared state it
// takes from.
func (e *Engine) attempt(ctx context.Context, m store.Message, t store.DeliveryTarget) Outcome {
	ep := t.Endpoint
	switch {
	case ep.ID == "" || ep.DeletedAt != nil:
		return Outcome{Kind: FailedForGood, Reason: "endpoint deleted"}
	case ep.Paused:
		return Outcome{Kind: Park, Reason: "endpoint paused"}
	}

	// The breaker first: a message held back for a probe must not use up
	// the endpoint's shared rate-limit tokens.
	probe, held := e.mayStart(m, ep)
	if held.Kind != 0 {
		return held
	}
	o := e.send(ctx, m, t)
	o.probe = probe
	return o
}

// send signs and sends m to its endpoint, unless the endpoint's rate limit
// or an error of hookd's own holds it back.
func (e *Engine) send(ctx context.Context, m store.Message, t store.DeliveryTarget) Outcome {
	ep := t.Endpoint
	custom, err := e.headersOf(ep)
	if err != nil {
		e.log.Error("cannot open the endpoint's custom headers; releasing the message", "message_id", m.ID, "endpoint_id", ep.ID, "error", err.Error())
		return wait(e.cfg.PollInterval*10, false, "custom headers unreadable")
	}

	if ep.RateLimitRPS > 0 {
		// The endpoint's own limit holds the message back without
		// spending an attempt.
		var delay time.Duration
		e.retryDB(func(ctx context.Context) error {
			var err error
			delay, err = e.st.TakeToken(ctx, ep.ProjectID, ep.ID, ep.RateLimitRPS, ep.Burst)
			return err
		}, "rate limit", m)
		if delay > 0 {
			return wait(delay, true, "endpoint rate limit")
		}
	}

	span := oteltrace.SpanFromContext(ctx) // tracing off: a no-op span, nothing allocated
	if e.tracer != nil {
		ctx, span = e.tracer.Start(tracing.WithParent(ctx, m.TraceParent), "hookd.attempt", oteltrace.WithSpanKind(oteltrace.SpanKindClient),
			oteltrace.WithAttributes(attribute.String("hookd.message_id", m.ID), attribute.String("hookd.endpoint_id", ep.ID),
				attribute.String("hookd.project_id", m.ProjectID), attribute.Int("hookd.attempt", m.AttemptCount+1)))
		if m.EventType != nil {
			span.SetAttributes(attribute.String("hookd.event_type", *m.EventType))
		}
	}

	now := e.now()
	h := http.Header{}
	for k, v := range custom {
		h.Set(k, v)
	}
	for k, v := range m.Headers {
		h.Set(k, v)
	}
	if name := ep.AuthHeader; name != nil {
		// The endpoint's credential, after the message's headers: a send
		// cannot replace it. (It is in custom, sealed with the headers.)
		if _, value := customheaders.SplitAuth(custom, *name); value != "" {
			h.Set(*name, value)
		} else {
			// Only a process of an earlier release can lose it (by
			// re-sealing the headers without it): say so, and deliver.
			e.log.Warn("the endpoint's credential is missing from its sealed headers; delivering without it (set the endpoint's auth again)",
				"message_id", m.ID, "endpoint_id", ep.ID, "auth_header", *name)
		}
	}
	if h.Get("Content-Type") == "" {
		// Sends are JSON (their headers cannot set it); a received
		// message keeps its provider's content type.
		h.Set("Content-Type", "application/json")
	}
	h.Set("User-Agent", e.cfg.UserAgent) // set last: custom headers cannot replace it
	if e.cfg.TraceHeader {
		h.Del("Traceparent")
		h.Del("Tracestate")
		tracing.Inject(ctx, propagation.HeaderCarrier(h))
	}
	if err := e.sign(h, m, t, now.Unix()); err != nil {
		e.log.Error("cannot sign the delivery; releasing the message", "message_id", m.ID, "endpoint_id", ep.ID, "error", err.Error())
		span.End()
		return wait(e.cfg.PollInterval*10, false, "signing keys unreadable")
	}

	res := e.sender.Do(ctx, Request{URL: ep.URL, Body: m.Payload, Headers: h, Timeout: e.cfg.AttemptTimeout})
	if ctx.Err() != nil && res.Status == 0 {
		// Abandoned by the drain deadline: not the receiver's fault, not counted.
		span.End()
		return wait(0, false, "abandoned by the drain")
	}
	d := e.cfg.Schedule.Decide(m, res, e.now())
	o := attempted(m, res, d)
	o.Record.RequestHeaders = customheaders.Redact(o.Record.RequestHeaders, custom)
	if span.IsRecording() {
		endAttemptSpan(span, res, d)
	}
	o.span = span // ended by apply, once the attempt is recorded
	return o
}

// tracerOf is the engine's tracer of tp; nil when tracing is off.
func tracerOf(tp oteltrace.TracerProvider) oteltrace.Tracer {
	if tp == nil {
		return nil
	}
	return tracing.Tracer(tp)
}

// endAttemptSpan records an attempt's answer and outcome on its span,
// marked failed unless the receiver accepted the message.
func endAttemptSpan(span oteltrace.Span, res Result, d Decision) {
	span.SetAttributes(attribute.String("hookd.outcome", string(d.Class)), attribute.String("hookd.next_status", d.Outcome.Status))
	if res.Status != 0 {
		span.SetAttributes(semconv.HTTPResponseStatusCode(res.Status))
	}
	if d.Class != Success {
		msg := "answered " + strconv.Itoa(res.Status)
		if res.Err != nil {
			msg = logError(res.Err)
		}
		span.SetStatus(codes.Error, msg)
	}
}

// probeHold is how long a probe attempt keeps other attempts to its failing
// endpoint waiting, should its process die before recording it.
func (e *Engine) probeHold() time.Duration { return e.cfg.AttemptTimeout + 5*time.Second }

// mayStart applies the circuit breaker's spacing: while an endpoint keeps
// failing, one attempt at a time (across all processes) probes it, and the
// others wait, without spending an attempt, until the next probe is due.
// It reports whether m's attempt is the endpoint's probe, or, when the
// attempt may not start, the Wait outcome that holds it back.
func (e *Engine) mayStart(m store.Message, ep store.Endpoint) (probe bool, held Outcome) {
	e.mu.Lock()
	failures := max(ep.ConsecutiveFailures, e.failing[ep.ID])
	e.mu.Unlock()
	b := e.cfg.Breaker
	if !b.spaces(failures) {
		return false, Outcome{}
	}
	var ok bool
	var delay time.Duration
	e.retryDB(func(ctx context.Context) error {
		return e.st.UpdateEndpointHealth(ctx, ep.ID, func(h store.EndpointHealth, now time.Time) (store.HealthChange, bool) {
			var c *store.HealthChange
			ok, delay, c = b.acquire(h, e.probeHold(), now)
			if c == nil {
				return store.HealthChange{}, false
			}
			return *c, true
		})
	}, "probe", m)
	if ok {
		return true, Outcome{}
	}
	return false, wait(delay, true, "circuit breaker: waiting for the endpoint's next probe")
}

// endpointFailed reports whether an attempt's result counts against its
// endpoint's health: no answer (connection refused, timeout, TLS, refused
// destination), 408 or 5xx. Any other answer, 429 included (its pacing is
// the fast retry track's job), shows the endpoint alive.
func endpointFailed(r Result) bool {
	return r.Status == 0 || r.Status == http.StatusRequestTimeout || r.Status >= 500
}

// trackHealth feeds an attempt's result to the circuit breaker.
func (e *Engine) trackHealth(m store.Message, t store.DeliveryTarget, r Result) {
	ep := t.Endpoint
	if endpointFailed(r) {
		errText := fmt.Sprintf("HTTP %d", r.Status)
		if r.Err != nil {
			errText = logError(r.Err) // the reason is logged too
		}
		var c store.HealthChange
		e.retryDB(func(ctx context.Context) error {
			return e.st.UpdateEndpointHealth(ctx, ep.ID, func(h store.EndpointHealth, now time.Time) (store.HealthChange, bool) {
				c = e.cfg.Breaker.failure(h, r.Started, errText, now)
				return c, true
			})
		}, "endpoint health", m)
		e.mu.Lock()
		e.failing[ep.ID] = c.ConsecutiveFailures
		e.mu.Unlock()
		if c.Disable != "" {
			e.log.Warn("endpoint disabled by the circuit breaker; resume it to deliver its messages again",
				"endpoint_id", ep.ID, "project_id", m.ProjectID, "message_id", m.ID,
				"consecutive_failures", c.ConsecutiveFailures, "reason", c.Disable)
		}
		return
	}
	e.mu.Lock()
	known := max(ep.ConsecutiveFailures, e.failing[ep.ID])
	delete(e.failing, ep.ID)
	e.mu.Unlock()
	if known > 0 {
		e.retryDB(func(ctx context.Context) error { return e.st.ResetEndpointHealth(ctx, ep.ID) }, "endpoint health", m)
	}
}

// logError is err's text for the log, without the URL that a *url.Error
// names: an endpoint URL may carry the receiver's own token in its path or
// query, and endpoint_id identifies the endpoint already.
func logError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + ": " + ue.Err.Error()
	}
	return err.Error()
}

// sign sets the id, timestamp and (when the endpoint signs) signature
// headers of the endpoint's scheme: HookBridge's X-Webhook-* or Standard
// Webhooks' webhook-*. Both sign with every active key, newest first.
func (e *Engine) sign(h http.Header, m store.Message, t store.DeliveryTarget, ts int64) error {
	idHeader, tsHeader := signature.HeaderID, signature.HeaderTimestamp
	standard := t.Endpoint.SignatureScheme == signature.SchemeStandardWebhooks
	if standard {
		idHeader, tsHeader = signature.StandardHeaderID, signature.StandardHeaderTimestamp
	}
	h.Set(idHeader, m.ID)
	h.Set(tsHeader, strconv.FormatInt(ts, 10))
	if !t.Endpoint.HMACEnabled {
		return nil
	}
	secrets, err := e.secretsOf(t.Keys)
	if err != nil {
		return err
	}
	if !standard {
		h.Set(signature.HeaderSignature, signature.Header(ts, m.Payload, secrets...))
		return nil
	}
	sig, err := signature.StandardHeader(m.ID, ts, m.Payload, secrets...)
	if err != nil {
		return err
	}
	h.Set(signature.StandardHeaderSignature, sig)
	return nil
}

// secretsOf opens the endpoint's signing secrets, newest first, caching
// them (a key's secret never changes).
func (e *Engine) secretsOf(keys []store.SigningKey) ([]string, error) {
	if len(keys) == 0 {
		return nil, errors.New("the endpoint has no signing key")
	}
	out := make([]string, 0, len(keys))
	e.secretsMu.Lock()
	defer e.secretsMu.Unlock()
	for _, k := range keys {
		s, ok := e.secrets[k.ID]
		if !ok {
			pt, err := e.kr.Open(k.MasterKeyID, k.SecretSealed, []byte(k.ID))
			if err != nil {
				return nil, fmt.Errorf("signing key %s: %w", k.ID, err)
			}
			s = string(pt)
			e.secrets[k.ID] = s
		}
		out = append(out, s)
	}
	return out, nil
}

// openedHeaders is an endpoint's custom headers and the sealed bytes they
// were opened from.
type openedHeaders struct {
	sealed  string
	headers map[string]string
}

// headersOf opens the endpoint's custom headers (plain text for endpoints
// stored by earlier releases), caching them while their sealed bytes stay
// the same.
func (e *Engine) headersOf(ep store.Endpoint) (map[string]string, error) {
	if ep.HeadersSealed == nil {
		return ep.Headers, nil
	}
	e.secretsMu.Lock()
	defer e.secretsMu.Unlock()
	if c, ok := e.headers[ep.ID]; ok && c.sealed == string(ep.HeadersSealed) {
		return c.headers, nil
	}
	keyID := ""
	if ep.HeadersKeyID != nil {
		keyID = *ep.HeadersKeyID
	}
	h, err := customheaders.Open(e.kr, ep.ID, keyID, ep.HeadersSealed)
	if err != nil {
		return nil, err
	}
	if len(e.headers) >= maxCachedHeaders {
		clear(e.headers) // bounded memory; reopening is cheap
	}
	e.headers[ep.ID] = openedHeaders{sealed: string(ep.HeadersSealed), headers: h}
	return h, nil
}

// maxCachedHeaders bounds the opened-headers cache (at most about 16 KB an
// endpoint).
const maxCachedHeaders = 10_000

// forgetHeaders drops a deleted endpoint's opened headers.
func (e *Engine) forgetHeaders(endpointID string) {
	e.secretsMu.Lock()
	delete(e.headers, endpointID)
	e.secretsMu.Unlock()
}

func attemptRecord(m store.Message, r Result, d Decision) store.Attempt {
	a := store.Attempt{
		ID:                    ids.NewUUID(),
		ProjectID:             m.ProjectID,
		MessageID:             m.ID,
		StartedAt:             r.Started.Truncate(time.Microsecond),
		Outcome:               string(d.Class),
		DurationMs:            ms(r.Duration),
		DNSMs:                 msPtr(r.DNS),
		ConnectMs:             msPtr(r.Connect),
		TLSMs:                 msPtr(r.TLS),
		TTFBMs:                msPtr(r.TTFB),
		TransferMs:            msPtr(r.Transfer),
		ConnReused:            r.ConnReused,
		RequestHeaders:        flatten(r.RequestHeader),
		ResponseHeaders:       flatten(r.Header),
		ResponseBodyTruncated: r.BodyTruncated,
		ErrorText:             d.Outcome.LastError,
	}
	if r.Status != 0 {
		st := r.Status
		a.ResponseStatus = &st
		body := r.Body
		a.ResponseBody = &body
	}
	if r.ResolvedIP != "" {
		ip := r.ResolvedIP
		a.ResolvedIP = &ip
	}
	if d.RetryType != "" {
		rt := d.RetryType
		secs := int(d.RetryAfter.Round(time.Second) / time.Second)
		a.RetryType, a.RetryAfterSeconds = &rt, &secs
	}
	return a
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func msPtr(d *time.Duration) *float64 {
	if d == nil {
		return nil
	}
	v := ms(*d)
	return &v
}

func flatten(h http.Header) store.Headers {
	out := store.Headers{}
	for k, vs := range h {
		if len(vs) > 0 {
			out[k] = vs[0]
			for _, v := range vs[1:] {
				out[k] += ", " + v
			}
		}
	}
	return out
}
