// Package delivery sends messages to their endpoints: it claims due
// messages from the store, signs and POSTs them, classifies the answer,
// records the attempt and schedules what happens next.
package delivery

import (
	"fmt"
	"time"

	"github.com/hookd/hookd/store"
)

// Schedule is the retry policy. The zero value is not usable; start from
// DefaultSchedule.
type Schedule struct {
	// Slow is the wait before each retry of an ordinary retryable failure
	// (5xx, 408, network error, timeout); the last entry repeats.
	Slow []time.Duration
	// Fast is the wait before each retry after consecutive 429 answers;
	// after len(Fast) of them the slow track takes over.
	Fast []time.Duration
	// MaxAttempts is the attempt budget; when it is spent the message is
	// failed_permanent.
	MaxAttempts int
	// RetryAfterCap bounds how long a receiver's Retry-After can push a
	// retry out.
	RetryAfterCap time.Duration
}

// DefaultSchedule is hookd's default retry schedule: slow 30m, 2h, 6h,
// 12h, 24h, 48h, 72h; fast 30s, 60s, 120s, 240s, 300s; 8 attempts; Retry-After
// capped at 24h.
func DefaultSchedule() Schedule {
	return Schedule{
		Slow:          []time.Duration{30 * time.Minute, 2 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour, 48 * time.Hour, 72 * time.Hour},
		Fast:          []time.Duration{30 * time.Second, 60 * time.Second, 120 * time.Second, 240 * time.Second, 300 * time.Second},
		MaxAttempts:   8,
		RetryAfterCap: 24 * time.Hour,
	}
}

// Validate says what is wrong with s.
func (s Schedule) Validate() error {
	switch {
	case len(s.Slow) == 0:
		return fmt.Errorf("the slow retry schedule needs at least one delay")
	case s.MaxAttempts < 1 || s.MaxAttempts > 100:
		return fmt.Errorf("max attempts must be 1 to 100, got %d", s.MaxAttempts)
	case s.RetryAfterCap < 0:
		return fmt.Errorf("the Retry-After cap must not be negative")
	}
	for _, d := range append(append([]time.Duration{}, s.Slow...), s.Fast...) {
		if d <= 0 {
			return fmt.Errorf("retry delays must be positive, got %s", d)
		}
	}
	return nil
}

// Class is how an attempt's result is treated.
type Class string

// Classes of results. Success ends the message; Retryable schedules another
// attempt while the budget lasts; Permanent ends it in the DLQ at once.
const (
	Success   Class = "success"
	Retryable Class = "retryable"
	Permanent Class = "permanent"
)

// Classify sorts an attempt's result: 2xx success; 408, 429, 5xx, network
// errors and timeouts retryable; every other status (3xx included, since
// redirects are not followed) and a destination refused at connect time
// permanent.
func Classify(r Result) Class {
	switch {
	case r.Blocked:
		return Permanent
	case r.Status == 0:
		return Retryable
	case r.Status >= 200 && r.Status < 300:
		return Success
	case r.Status == 408 || r.Status == 429 || r.Status >= 500:
		return Retryable
	}
	return Permanent
}

// Decision is what happens to a message after an attempt.
type Decision struct {
	Class      Class
	Outcome    store.Outcome
	RetryType  string        // "fast" or "slow" when a retry is scheduled
	RetryAfter time.Duration // the wait before the next attempt, when scheduled
}

// Decide computes the message's next state from its counters before the
// attempt (m) and the attempt's result.
func (s Schedule) Decide(m store.Message, r Result, now time.Time) Decision {
	class := Classify(r)
	o := store.Outcome{
		EndpointID:  m.EndpointID,
		BudgetUsed:  m.BudgetUsed + 1,
		FastStreak:  m.FastStreak,
		SlowRetries: m.SlowRetries,
		LastError:   errorText(r, class),
	}
	if r.Status != 0 {
		// Latency is that of an answer: none came on a connection error,
		// a timeout or a refused destination, so it stays null.
		st, ms := r.Status, int(r.Duration.Milliseconds())
		o.ResponseStatus, o.LatencyMs = &st, &ms
	}
	d := Decision{Class: class}
	switch class {
	case Success:
		o.Status, o.FastStreak, o.LastError = store.StatusSucceeded, 0, nil
	case Permanent:
		o.Status = store.StatusFailedPermanent
	case Retryable:
		if o.BudgetUsed >= s.MaxAttempts {
			o.Status = store.StatusFailedPermanent
			break
		}
		var wait time.Duration
		if r.Status == 429 && m.FastStreak < len(s.Fast) {
			wait = s.Fast[m.FastStreak]
			o.FastStreak = m.FastStreak + 1
			d.RetryType = "fast"
		} else {
			i := m.SlowRetries
			if i >= len(s.Slow) {
				i = len(s.Slow) - 1
			}
			wait = s.Slow[i]
			o.SlowRetries = m.SlowRetries + 1
			if r.Status != 429 {
				o.FastStreak = 0
			}
			d.RetryType = "slow"
		}
		if ra, ok := RetryAfter(r.Header, now); ok {
			if ra > s.RetryAfterCap {
				ra = s.RetryAfterCap
			}
			if ra > wait {
				wait = ra
			}
		}
		next := now.Add(wait)
		o.Status, o.NextAttemptAt = store.StatusPendingRetry, &next
		d.RetryAfter = wait
	}
	d.Outcome = o
	return d
}

func errorText(r Result, c Class) *string {
	var s string
	switch {
	case r.Blocked:
		s = r.Err.Error()
	case r.TimedOut && r.Status == 0:
		s = "timeout: no answer within the attempt timeout"
	case r.Err != nil && r.Status == 0:
		s = "connection error: " + r.Err.Error()
	case c == Success:
		return nil
	case r.Status >= 300 && r.Status < 400:
		s = fmt.Sprintf("HTTP %d (redirects are not followed)", r.Status)
	default:
		s = fmt.Sprintf("HTTP %d", r.Status)
	}
	return &s
}
