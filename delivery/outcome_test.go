package delivery

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/store"
)

// The engine's turn of one message, from inside: a real store, a fake
// sender that answers as each test says, and the engine's clock standing
// still. Each test claims a message as a worker would, runs the engine's
// turn (attempt, then apply) and checks the outcome it came to and what
// the store holds afterwards.

// fakeSender answers every request with answer's result and keeps the
// requests.
type fakeSender struct {
	mu     sync.Mutex
	reqs   []Request
	answer func(context.Context, Request) Result
}

func (f *fakeSender) Do(ctx context.Context, r Request) Result {
	f.mu.Lock()
	f.reqs = append(f.reqs, r)
	f.mu.Unlock()
	return f.answer(ctx, r)
}

func (f *fakeSender) CloseIdle() {}

func (f *fakeSender) requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

// answered is a result with an HTTP status and optional headers.
func answered(status int, header ...string) Result {
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Set(header[i], header[i+1])
	}
	return Result{Started: store.Now(), Status: status, Header: h, Duration: 3 * time.Millisecond, RequestHeader: http.Header{}}
}

// turnHarness is a harness whose engine sends through fake and whose clock
// reads clock; outcomes collects what apply wrote.
type turnHarness struct {
	harness
	fake     *fakeSender
	clock    time.Time
	outcomes chan Outcome
}

func newTurnHarness(t *testing.T, dialect string, cfg Config, answer func(context.Context, Request) Result) turnHarness {
	t.Helper()
	if cfg.AttemptTimeout == 0 {
		cfg.AttemptTimeout = 5 * time.Second
	}
	h := newHarness(t, dialect, cfg, func(http.ResponseWriter, *http.Request) {
		t.Error("the fake sender sends nothing")
	})
	fake := &fakeSender{answer: answer}
	clock := store.Now()
	h.e.sender, h.e.now = fake, func() time.Time { return clock }
	outcomes := make(chan Outcome, 64)
	h.e.applied = func(_ store.Message, o Outcome) { outcomes <- o }
	return turnHarness{harness: h, fake: fake, clock: clock, outcomes: outcomes}
}

// claim leases the longest-due message under a new token, as a worker's
// claim does, and requires it to be message id.
func (h turnHarness) claim(t *testing.T, id string) (store.Message, store.DeliveryTarget, string) {
	t.Helper()
	token := ids.RandomAlnum(16)
	msgs, targets, err := h.st.ClaimDue(context.Background(), token, time.Minute, 1, nil)
	require.NoError(t, err)
	require.Len(t, msgs, 1, "message %s is due", id)
	require.Equal(t, id, msgs[0].ID)
	return msgs[0], targets[msgs[0].EndpointID], token
}

// turn claims message id and runs the engine's turn of it.
func (h turnHarness) turn(t *testing.T, id string) Outcome {
	t.Helper()
	m, target, token := h.claim(t, id)
	h.e.deliver(context.Background(), m, token, target)
	select {
	case o := <-h.outcomes:
		return o
	default:
		require.FailNow(t, "apply reported no outcome")
		return Outcome{}
	}
}

func (h turnHarness) attempts(t *testing.T, id string) []store.Attempt {
	t.Helper()
	as, err := h.st.ListAttempts(context.Background(), h.project.ID, id, 100)
	require.NoError(t, err)
	return as
}

func TestOutcomes(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d string) {
		t.Run("Succeeded", func(t *testing.T) {
			t.Parallel()
			h := newTurnHarness(t, d, Config{}, func(context.Context, Request) Result { return answered(204) })
			id := h.insert(t, 0)
			o := h.turn(t, id)
			require.Equal(t, Succeeded, o.Kind)
			require.True(t, o.Attempted)
			m := h.message(t, id)
			require.Equal(t, store.StatusSucceeded, m.Status)
			require.Equal(t, 1, m.AttemptCount)
			require.Nil(t, m.LeaseToken)
			require.NotNil(t, m.DeliveredAt)
			as := h.attempts(t, id)
			require.Len(t, as, 1)
			require.Equal(t, string(Success), as[0].Outcome)
			require.Equal(t, 204, *as[0].ResponseStatus)
		})
		t.Run("RetryAt", func(t *testing.T) {
			t.Parallel()
			h := newTurnHarness(t, d, Config{}, func(context.Context, Request) Result { return answered(503, "Retry-After", "3600") })
			id := h.insert(t, 0)
			o := h.turn(t, id)
			require.Equal(t, RetryAt, o.Kind)
			m := h.message(t, id)
			require.Equal(t, store.StatusPendingRetry, m.Status)
			// The schedule's first slow wait is 30 min; the receiver's
			// Retry-After asks for an hour: on the engine's clock.
			require.Equal(t, h.clock.Add(time.Hour), m.NextAttemptAt.UTC())
			require.Equal(t, 1, m.AttemptCount)
			require.Equal(t, 1, m.SlowRetries)
			require.Nil(t, m.LeaseToken)
			require.Equal(t, "slow", *h.attempts(t, id)[0].RetryType)
		})
		t.Run("FailedForGood", func(t *testing.T) {
			t.Parallel()
			status := 410
			h := newTurnHarness(t, d, Config{Schedule: Schedule{Slow: []time.Duration{time.Hour}, MaxAttempts: 1}},
				func(context.Context, Request) Result { return answered(status) })
			permanent := h.insert(t, 0)
			o := h.turn(t, permanent)
			require.Equal(t, FailedForGood, o.Kind, "a permanent answer")
			require.True(t, o.Attempted)
			require.Equal(t, store.StatusFailedPermanent, h.message(t, permanent).Status)

			status = 500
			spent := h.insert(t, 0)
			o = h.turn(t, spent)
			require.Equal(t, FailedForGood, o.Kind, "a retryable answer with the budget spent")
			m := h.message(t, spent)
			require.Equal(t, store.StatusFailedPermanent, m.Status)
			require.Equal(t, "HTTP 500", *m.LastError)
		})
		t.Run("EndpointDeleted", func(t *testing.T) {
			t.Parallel()
			h := newTurnHarness(t, d, Config{}, func(context.Context, Request) Result { return answered(200) })
			id := h.insert(t, 0)
			m, target, token := h.claim(t, id)
			require.NoError(t, h.st.DeleteEndpoint(context.Background(), h.project.ID, h.endpoint.ID))
			target.Endpoint.DeletedAt = new(store.Now()) // as the next claim would load it
			h.e.deliver(context.Background(), m, token, target)
			o := <-h.outcomes
			require.Equal(t, FailedForGood, o.Kind)
			require.False(t, o.Attempted)
			require.Zero(t, h.fake.requests(), "nothing sent")
			got := h.message(t, id)
			require.Equal(t, store.StatusFailedPermanent, got.Status)
			require.Equal(t, "endpoint deleted", *got.LastError)
			require.Zero(t, got.AttemptCount, "no attempt spent")
		})
		t.Run("Park", func(t *testing.T) {
			t.Parallel()
			h := newTurnHarness(t, d, Config{}, func(context.Context, Request) Result { return answered(200) })
			ctx := context.Background()
			id := h.insert(t, 0)
			m, target, token := h.claim(t, id)
			_, err := h.st.SetEndpointPaused(ctx, h.project.ID, h.endpoint.ID, true)
			require.NoError(t, err)
			target.Endpoint.Paused = true
			h.e.deliver(ctx, m, token, target)
			o := <-h.outcomes
			require.Equal(t, Park, o.Kind)
			require.Zero(t, h.fake.requests())
			got := h.message(t, id)
			require.Equal(t, store.StatusPaused, got.Status)
			require.Zero(t, got.AttemptCount)
			require.Nil(t, got.LeaseToken)

			// Resumed between the claim and the park: the message is due
			// again at once instead of waiting for a resume that came.
			_, err = h.st.SetEndpointPaused(ctx, h.project.ID, h.endpoint.ID, false)
			require.NoError(t, err)
			m, target, token = h.claim(t, id)
			target.Endpoint.Paused = true // the claim's (stale) view
			h.e.deliver(ctx, m, token, target)
			require.Equal(t, Park, (<-h.outcomes).Kind)
			got = h.message(t, id)
			require.Equal(t, store.StatusQueued, got.Status)
			require.Nil(t, got.LeaseToken)
			require.False(t, got.NextAttemptAt.After(store.Now()), "due now")
		})
		t.Run("WaitForTheRateLimit", func(t *testing.T) {
			t.Parallel()
			h := newTurnHarness(t, d, Config{}, func(context.Context, Request) Result { return answered(200) })
			ctx := context.Background()
			rps, burst := 1, 1
			require.NoError(t, h.st.UpdateEndpoint(ctx, h.project.ID, h.endpoint.ID, store.EndpointUpdate{RateLimitRPS: &rps, Burst: &burst}))
			first, second := h.insert(t, time.Second), h.insert(t, 0)
			require.Equal(t, Succeeded, h.turn(t, first).Kind, "the burst's one token")
			before := store.Now()
			o := h.turn(t, second)
			require.Equal(t, Wait, o.Kind)
			require.False(t, o.Attempted)
			require.True(t, o.Hold, "the wait is the endpoint's")
			require.Positive(t, o.Delay)
			require.LessOrEqual(t, o.Delay, time.Second)
			require.Equal(t, 1, h.fake.requests(), "only the first was sent")
			m := h.message(t, second)
			require.Equal(t, store.StatusQueued, m.Status)
			require.Zero(t, m.AttemptCount, "waiting spends no attempt")
			require.Nil(t, m.LeaseToken)
			require.True(t, m.NextAttemptAt.After(before), "due when the next token is")
			until, held := h.e.q.HeldUntil(h.endpoint.ID)
			require.True(t, held, "the engine holds the endpoint's other messages back meanwhile")
			require.True(t, until.After(before), "until the next token")
		})
		t.Run("WaitForTheProbe", func(t *testing.T) {
			t.Parallel()
			h := newTurnHarness(t, d, Config{Breaker: Breaker{ProbeAfterFailures: 1, ProbeBackoff: time.Hour, ProbeBackoffMax: time.Hour}},
				func(context.Context, Request) Result { return answered(500) })
			first, second := h.insert(t, time.Second), h.insert(t, 0)
			require.Equal(t, RetryAt, h.turn(t, first).Kind, "the failure that starts the run")
			o := h.turn(t, second)
			require.Equal(t, Wait, o.Kind, "spaced: the next probe is an hour away")
			require.True(t, o.Hold)
			require.Greater(t, o.Delay, 59*time.Minute)
			require.Equal(t, 1, h.fake.requests())
			m := h.message(t, second)
			require.Zero(t, m.AttemptCount)
			require.Equal(t, store.StatusQueued, m.Status)
		})
		t.Run("WaitWhenAbandoned", func(t *testing.T) {
			t.Parallel()
			// The drain gave up on the attempt: its context ended with no
			// answer. Not the receiver's fault: nothing counted, due now.
			h := newTurnHarness(t, d, Config{Breaker: Breaker{ProbeAfterFailures: 1, ProbeBackoff: time.Millisecond, ProbeBackoffMax: time.Millisecond}},
				func(ctx context.Context, _ Request) Result {
					<-ctx.Done()
					return Result{Started: store.Now(), Err: ctx.Err()}
				})
			// One failure on record: the next attempt holds the probe, and
			// must give it back.
			require.NoError(t, h.st.UpdateEndpointHealth(context.Background(), h.endpoint.ID, func(h store.EndpointHealth, now time.Time) (store.HealthChange, bool) {
				return store.HealthChange{ConsecutiveFailures: 1, FailingSince: &now}, true
			}))
			id := h.insert(t, 0)
			m, target, token := h.claim(t, id)
			target.Endpoint.ConsecutiveFailures = 1
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			h.e.deliver(ctx, m, token, target)
			o := <-h.outcomes
			require.Equal(t, Wait, o.Kind)
			require.False(t, o.Attempted)
			require.Zero(t, o.Delay)
			require.True(t, o.probe, "the attempt held the probe")
			got := h.message(t, id)
			require.Equal(t, store.StatusQueued, got.Status)
			require.Zero(t, got.AttemptCount)
			require.NoError(t, h.st.UpdateEndpointHealth(context.Background(), h.endpoint.ID, func(eh store.EndpointHealth, _ time.Time) (store.HealthChange, bool) {
				require.Nil(t, eh.ProbeLeaseUntil, "the probe was given back")
				require.Equal(t, 1, eh.ConsecutiveFailures, "and the run is unchanged")
				return store.HealthChange{}, false
			}))
		})
		t.Run("WaitWhenSigningFails", func(t *testing.T) {
			t.Parallel()
			h := newTurnHarness(t, d, Config{PollInterval: 100 * time.Millisecond}, func(context.Context, Request) Result { return answered(200) })
			on := true
			require.NoError(t, h.st.UpdateEndpoint(context.Background(), h.project.ID, h.endpoint.ID, store.EndpointUpdate{HMACEnabled: &on}))
			id := h.insert(t, 0) // the harness's key is not sealed by this keyring
			o := h.turn(t, id)
			require.Equal(t, Wait, o.Kind)
			require.False(t, o.Hold)
			require.Equal(t, time.Second, o.Delay, "ten poll intervals")
			require.Zero(t, h.fake.requests(), "an unsigned delivery is not sent")
			require.Zero(t, h.message(t, id).AttemptCount)
		})
	})
}

// TestLeaseLoss: a worker whose lease ended while it worked (its process
// was thought dead, the message rescued and claimed again) still records
// its attempt (it happened), but the message belongs to its new holder:
// the late outcome does not change it, and neither does a late wait.
func TestLeaseLoss(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d string) {
		ctx := context.Background()
		h := newTurnHarness(t, d, Config{}, func(context.Context, Request) Result { return answered(200) })
		lose := func(id, token string) string {
			t.Helper()
			// The lease ends (as if a minute passed), a rescuer makes the
			// message due again, and another worker claims it.
			q := `UPDATE messages SET lease_until = ? WHERE id = ? AND lease_token = ?`
			if d == store.Postgres {
				q = `UPDATE messages SET lease_until = now() - interval '1 second' WHERE id = $1 AND lease_token = $2`
				_, err := h.st.DB().ExecContext(ctx, q, id, token)
				require.NoError(t, err)
			} else {
				_, err := h.st.DB().ExecContext(ctx, q, store.Now().Add(-time.Second), id, token)
				require.NoError(t, err)
			}
			n, err := h.st.RescueExpired(ctx)
			require.NoError(t, err)
			require.Equal(t, int64(1), n)
			_, _, other := h.claim(t, id)
			return other
		}

		id := h.insert(t, 0)
		m, target, token := h.claim(t, id)
		other := lose(id, token)
		h.e.deliver(ctx, m, token, target)
		require.Equal(t, Succeeded, (<-h.outcomes).Kind)
		got := h.message(t, id)
		require.Equal(t, 1, got.AttemptCount, "the attempt is recorded")
		require.Len(t, h.attempts(t, id), 1)
		require.Equal(t, store.StatusDelivering, got.Status, "the new holder's")
		require.Equal(t, other, *got.LeaseToken)
		require.Nil(t, got.DeliveredAt)

		// A late wait (rate limit, drain) gives back nothing it no longer holds.
		h.e.apply(m, token, target, wait(0, false, "test"))
		<-h.outcomes
		got = h.message(t, id)
		require.Equal(t, store.StatusDelivering, got.Status)
		require.Equal(t, other, *got.LeaseToken)

		// The holder's own outcome applies.
		h.e.apply(got, other, target, attempted(got, answered(200), h.e.cfg.Schedule.Decide(got, answered(200), h.clock)))
		<-h.outcomes
		got = h.message(t, id)
		require.Equal(t, store.StatusSucceeded, got.Status)
		require.Equal(t, 2, got.AttemptCount)
	})
}

// TestRunReportsEveryOutcome: the running engine (claims and handoffs,
// workers, the heartbeat) takes each message through one turn per due
// time, and the test waits on the outcomes it reports, not on the clock:
// three messages answered 200, 410 and 503 come to Succeeded,
// FailedForGood and RetryAt, each once.
func TestRunReportsEveryOutcome(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d string) {
		statusOf := map[string]int{}
		var mu sync.Mutex
		h := newTurnHarness(t, d, Config{Workers: 2, PollInterval: 20 * time.Millisecond}, func(_ context.Context, r Request) Result {
			mu.Lock()
			defer mu.Unlock()
			return answered(statusOf[r.Headers.Get("X-Webhook-Id")])
		})
		mu.Lock()
		for _, s := range []int{200, 410, 503} {
			statusOf[h.insert(t, 0)] = s
		}
		mu.Unlock()
		stop := h.run()
		got := map[OutcomeKind]int{}
		for range 3 {
			select {
			case o := <-h.outcomes:
				got[o.Kind]++
			case <-time.After(time.Minute): // bounds only a failing test
				require.FailNow(t, "the engine reported fewer than three outcomes", "%v", got)
			}
		}
		require.NoError(t, stop())
		require.Equal(t, map[OutcomeKind]int{Succeeded: 1, FailedForGood: 1, RetryAt: 1}, got)
		select {
		case o := <-h.outcomes:
			require.Failf(t, "a fourth outcome", "%v", o.Kind)
		default:
		}
		require.Equal(t, 3, h.fake.requests())
		require.Zero(t, h.inFlight())
	})
}

// attemptsAtEnd is a span processor that, when an attempt span ends,
// notes how many attempts its message has on record then.
type attemptsAtEnd struct {
	sdktrace.SpanProcessor
	h   turnHarness
	t   *testing.T
	got chan int
}

func (p attemptsAtEnd) OnEnd(s sdktrace.ReadOnlySpan) {
	p.SpanProcessor.OnEnd(s)
	for _, kv := range s.Attributes() {
		if kv.Key == "hookd.message_id" {
			as, err := p.h.st.ListAttempts(context.Background(), p.h.project.ID, kv.Value.AsString(), 10)
			if err != nil {
				p.t.Error(err)
			}
			p.got <- len(as)
		}
	}
}

// TestAttemptSpanCoversItsRecord: an attempt's span ends once its record
// is written (operations.md: "from building the request to recording it").
func TestAttemptSpanCoversItsRecord(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, d string) {
		rec := tracetest.NewSpanRecorder()
		h := newTurnHarness(t, d, Config{}, func(context.Context, Request) Result { return answered(200) })
		p := attemptsAtEnd{SpanProcessor: rec, h: h, t: t, got: make(chan int, 4)}
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		h.e.tracer = tracerOf(tp)

		id := h.insert(t, 0)
		require.Equal(t, Succeeded, h.turn(t, id).Kind)
		require.Equal(t, 1, <-p.got, "the attempt was on record when its span ended")
		spans := rec.Ended()
		require.Len(t, spans, 1)
		require.Equal(t, "hookd.attempt", spans[0].Name())
	})
}
