package delivery

import (
	"time"

	"github.com/hookd/hookd/store"
)

// Observer learns about every attempt the engine makes, once its record is
// written (or the engine gave up writing it). It is called on the delivery path of every message, so it
// must be cheap and must not block: count, do not query (package metrics
// implements it with counters and histograms).
type Observer interface {
	ObserveAttempt(AttemptObservation)
}

// AttemptObservation is one recorded attempt as an Observer sees it.
type AttemptObservation struct {
	// Class is how the result was treated.
	Class Class
	// Status is the receiver's HTTP status; 0 when there was no answer
	// (network error, timeout, refused destination).
	Status int
	// Duration is the attempt's total time.
	Duration time.Duration
	// RetryType is "fast" or "slow" when a retry was scheduled, "" when not.
	RetryType string
	// DeadLettered is true when the attempt ended the message in the DLQ
	// (failed_permanent): a permanent failure, or the attempt budget spent.
	DeadLettered bool
}

// observe tells the configured Observer, if any, about a recorded attempt.
func (e *Engine) observe(res Result, d Decision) {
	if e.cfg.Observer == nil {
		return
	}
	e.cfg.Observer.ObserveAttempt(AttemptObservation{
		Class:        d.Class,
		Status:       res.Status,
		Duration:     res.Duration,
		RetryType:    d.RetryType,
		DeadLettered: d.Outcome.Status == store.StatusFailedPermanent,
	})
}
