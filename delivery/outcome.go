package delivery

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/hookd/hookd/store"
)

// OutcomeKind is how one turn of a leased message ends.
type OutcomeKind uint8

// The kinds of outcome. An attempt (Engine.attempt) returns exactly one,
// and Engine.apply is the one place that writes it.
const (
	// Succeeded: the receiver accepted the attempt.
	Succeeded OutcomeKind = iota + 1
	// RetryAt: the attempt failed and another is scheduled
	// (Decision.Outcome.NextAttemptAt).
	RetryAt
	// FailedForGood: the message ends in the dead-letter queue, after an
	// attempt (a permanent answer, or the attempt budget spent) or without
	// one (its endpoint was deleted).
	FailedForGood
	// Wait: the message goes back to the queue for Delay without spending
	// an attempt (the endpoint's rate limit, the breaker's spacing, an
	// error of hookd's own, a drain that gave up on it).
	Wait
	// Park: the endpoint is paused; the message waits for its resume.
	Park
)

func (k OutcomeKind) String() string {
	switch k {
	case Succeeded:
		return "succeeded"
	case RetryAt:
		return "retry_at"
	case FailedForGood:
		return "failed_for_good"
	case Wait:
		return "wait"
	case Park:
		return "park"
	}
	return fmt.Sprintf("OutcomeKind(%d)", uint8(k))
}

// Outcome is what one turn of a leased message came to.
type Outcome struct {
	Kind OutcomeKind
	// Attempted is true when a request went out (or was refused by the
	// SSRF rules): Result, Decision and Record describe it.
	Attempted bool
	Result    Result
	Decision  Decision
	Record    store.Attempt
	// Delay (Wait) is how long until the message is due again. Hold also
	// keeps this process's other messages to the endpoint back for as
	// long (the wait is the endpoint's, not the message's).
	Delay time.Duration
	Hold  bool
	// Reason says why, when no attempt was made.
	Reason string
	// probe is true when the attempt took the endpoint's breaker probe.
	probe bool
	// span is the attempt's trace span (a no-op one when tracing is off),
	// ended once the attempt is recorded.
	span oteltrace.Span
}

// attempted makes the outcome of a request that went out, from its result
// and the schedule's decision.
func attempted(m store.Message, res Result, d Decision) Outcome {
	kind := RetryAt
	switch d.Outcome.Status {
	case store.StatusSucceeded:
		kind = Succeeded
	case store.StatusFailedPermanent:
		kind = FailedForGood
	}
	return Outcome{Kind: kind, Attempted: true, Result: res, Decision: d, Record: attemptRecord(m, res, d)}
}

// wait is a Wait outcome.
func wait(delay time.Duration, hold bool, reason string) Outcome {
	return Outcome{Kind: Wait, Delay: delay, Hold: hold, Reason: reason}
}

// apply writes o, the outcome of m's turn under lease token: the message's
// next state (and its attempt record), the endpoint's health, the probe,
// the metrics and the log line. Every write is retried (retryDB); one that
// finds the lease gone (the message was rescued meanwhile) records the
// attempt but leaves the message to its new holder.
func (e *Engine) apply(m store.Message, token string, t store.DeliveryTarget, o Outcome) {
	ep := t.Endpoint
	if o.probe && !o.Attempted {
		// The probe ended without an answer to judge: give it back, or
		// every process would wait out its hold.
		e.retryDB(func(ctx context.Context) error { return e.st.ReleaseProbe(ctx, ep.ID) }, "probe", m)
	}
	switch {
	case o.Kind == Park:
		var parked bool
		written := e.retryDB(func(ctx context.Context) error {
			var err error
			parked, err = e.st.ParkIfPaused(ctx, m, token)
			return err
		}, "park", m)
		if written && !parked {
			e.release(m, token, 0) // resumed meanwhile: due again at once
		}
	case o.Kind == Wait:
		if o.Hold {
			e.q.Hold(ep.ID, time.Now().Add(o.Delay))
		}
		e.release(m, token, o.Delay)
	case !o.Attempted: // failed for good without an attempt: the endpoint is gone
		e.forgetHeaders(ep.ID)
		e.retryDB(func(ctx context.Context) error { return e.st.FailLeased(ctx, m, token, o.Reason) }, "fail", m)
		e.wakeFIFO(m, o)
	default:
		e.record(m, token, t, o)
	}
	if e.applied != nil {
		e.applied(m, o)
	}
}

// record writes an attempt that went out: its record and the message's
// next state, the endpoint's health (which ends a probe either way), the
// metrics and the log line.
func (e *Engine) record(m store.Message, token string, t store.DeliveryTarget, o Outcome) {
	res, d := o.Result, o.Decision
	var no int
	e.retryDB(func(ctx context.Context) error {
		var err error
		no, err = e.st.RecordAttempt(ctx, token, o.Record, d.Outcome)
		return err
	}, "record attempt", m)
	e.wakeFIFO(m, o)
	e.trackHealth(m, t, res)
	e.observe(res, d)
	if o.span != nil {
		defer o.span.End()
	}
	attrs := []any{"message_id", m.ID, "endpoint_id", t.Endpoint.ID, "attempt", no, "outcome", string(d.Class),
		"status", res.Status, "duration_ms", res.Duration.Milliseconds(), "next", d.Outcome.Status}
	if d.RetryType != "" {
		attrs = append(attrs, "retry_type", d.RetryType, "retry_in", d.RetryAfter.String())
	}
	if res.Err != nil {
		attrs = append(attrs, "error", logError(res.Err))
	}
	// Successes are the bulk and are in the attempt rows anyway: debug.
	level := slog.LevelInfo
	if d.Class == Success {
		level = slog.LevelDebug
	}
	e.log.Log(context.Background(), level, "delivery attempt", attrs...)
}

// wakeFIFO wakes the queue's claimer when m, a message of a FIFO endpoint,
// has ended: the next message of its ordering key is claimable now.
func (e *Engine) wakeFIFO(m store.Message, o Outcome) {
	if m.FIFOKey != nil && (o.Kind == Succeeded || o.Kind == FailedForGood) {
		e.q.Wake()
	}
}
