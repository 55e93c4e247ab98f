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
	"github.com/hookd/hookd/queue"
	"github.com/hookd/hookd/secrets"
	"github.com/hookd/hookd/signature"
	"github.com/hookd/hookd/store"
	"github.com/hookd/hookd/tracing"
)

// Config tunes an Engine. Zero fields take the defaults in brackets (for
// Workers, ClaimBatch and EndpointConcurrency, the queue's: queue.Config).
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
	// Workers, ClaimBatch and EndpointConcurrency go to the queue as they
	// are: it fills in their defaults.
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
	// endpoint_id. The queue's lines about itself (claims, leases, rescue,
	// drain) carry scope=queue and counts or id lists instead. Neither
	// ever logs a payload, a header value or a secret.
	log *slog.Logger

	secretsMu sync.Mutex
	secrets   map[string]string // signing key id → secret (immutable once made)
	// headers caches opened custom headers by endpoint id, with the sealed
	// bytes they came from (a PATCH replaces them).
	headers map[string]openedHeaders

	q *queue.Queue[store.Delivery]

	mu      sync.Mutex
	failing map[string]int // failures in a row this process last saw, by endpoint
	now     func() time.Time
	// applied, if not nil, is told every outcome once apply has written
	// it (the engine's tests wait on it).
	applied func(store.Message, Outcome)
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
	e := &Engine{st: st, kr: kr, sender: sender, cfg: cfg, log: log, secrets: map[string]string{}, headers: map[string]openedHeaders{},
		failing: map[string]int{}, now: store.Now, tracer: tracerOf(cfg.TracerProvider)}
	e.q = queue.New(st.QueueDriver(), queue.Config{
		Workers: cfg.Workers, GroupConcurrency: cfg.EndpointConcurrency, ClaimBatch: cfg.ClaimBatch,
		Lease: cfg.Lease, PollInterval: cfg.PollInterval, DrainTimeout: cfg.DrainTimeout, NoHandoff: cfg.NoHandoff,
		Admit: e.admit, Now: func() time.Time { return e.now() }, Log: log.With("scope", "queue"),
	}, e.work)
	return e, nil
}

// Run claims and delivers due messages until ctx ends, then stops claiming,
// waits up to DrainTimeout for attempts in flight (recording them), releases
// any it had to abandon, and returns. The queue (package queue) does the
// claiming, leasing, handoff and draining; the engine is its work.
func (e *Engine) Run(ctx context.Context) error {
	err := e.q.Run(ctx)
	if err == nil {
		e.sender.CloseIdle()
	}
	return err
}

// work is the queue's job: one turn of a leased message.
func (e *Engine) work(ctx context.Context, j queue.Job[store.Delivery], token string) {
	e.deliver(ctx, j.Value.Message, token, j.Value.Target)
}

// admit lets the queue hand a new message of the endpoint straight to a
// worker unless its circuit breaker spaces attempts: those go through the
// queue, where the probe rule applies.
func (e *Engine) admit(endpointID string) bool {
	p := e.cfg.Breaker.ProbeAfterFailures
	if p <= 0 {
		return true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.failing[endpointID] < p
}

// release gives m back to the queue without an attempt, due after delay.
func (e *Engine) release(m store.Message, token string, delay time.Duration) {
	e.q.Release(queue.Job[store.Delivery]{ID: m.ID, Group: m.EndpointID}, token, delay)
}

// retryDB runs fn until it succeeds or the queue gives up on it
// (queue.Persist), and reports whether it succeeded.
func (e *Engine) retryDB(fn func(context.Context) error, what string, m store.Message) bool {
	if err := e.q.Persist(fn); err != nil {
		e.log.Error("giving up on a database write; the lease will expire and the message be rescued",
			"what", what, "message_id", m.ID, "endpoint_id", m.EndpointID, "error", err.Error())
		return false
	}
	return true
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
