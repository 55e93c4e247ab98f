package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// BreakerPolicy says when an endpoint's run of failed attempts disables it
// and how attempts are spaced out while it keeps failing.
type BreakerPolicy struct {
	// DisableAfterFailures disables the endpoint at this many failed
	// attempts in a row; 0 never disables on a count.
	DisableAfterFailures int
	// DisableAfter disables the endpoint once it has failed every attempt
	// for this long; 0 never disables on time.
	DisableAfter time.Duration
	// ProbeAfterFailures is the run length from which attempts are spaced:
	// one attempt (a probe) at a time, across all processes, then a wait.
	ProbeAfterFailures int
	// ProbeBackoff is the wait after the first spaced failure; it doubles
	// with each further one, up to ProbeBackoffMax.
	ProbeBackoff, ProbeBackoffMax time.Duration
}

// backoff is the wait after the n-th failure in a row (n ≥ ProbeAfterFailures).
func (p BreakerPolicy) backoff(n int) time.Duration {
	d := p.ProbeBackoff
	for i := p.ProbeAfterFailures; i < n && d < p.ProbeBackoffMax; i++ {
		d *= 2
	}
	return min(d, p.ProbeBackoffMax)
}

// FailureResult is what one more failed attempt did to an endpoint.
type FailureResult struct {
	ConsecutiveFailures int
	Disabled            bool // this failure disabled the endpoint
	Reason              string
}

// RecordEndpointFailure counts one more failed attempt of the endpoint
// (started at started, ending with errText): it extends the run of
// failures, spaces the next attempt once the run is long enough, and
// disables the endpoint (pausing it, so its messages wait as a paused
// endpoint's do) when the policy says so. A deleted or already disabled
// endpoint only has its counters updated.
func (s *Store) RecordEndpointFailure(ctx context.Context, endpointID string, started time.Time, errText string, p BreakerPolicy) (FailureResult, error) {
	var out FailureResult
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var e Endpoint
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).
			Select("id", "project_id", "consecutive_failures", "failing_since", "disabled_at", "deleted_at").
			Where("id = ?", endpointID).Take(&e).Error; err != nil {
			return err
		}
		now := Now()
		n := e.ConsecutiveFailures + 1
		since := started.UTC()
		if e.FailingSince != nil {
			since = *e.FailingSince
		}
		upd := map[string]any{"consecutive_failures": n, "failing_since": since, "probe_lease_until": nil}
		if p.ProbeAfterFailures > 0 && n >= p.ProbeAfterFailures {
			upd["probe_after"] = now.Add(p.backoff(n))
		}
		out.ConsecutiveFailures = n
		live := e.DeletedAt == nil && e.DisabledAt == nil
		byCount := p.DisableAfterFailures > 0 && n >= p.DisableAfterFailures
		byTime := p.DisableAfter > 0 && now.Sub(since) >= p.DisableAfter
		if live && (byCount || byTime) {
			out.Disabled = true
			out.Reason = fmt.Sprintf("disabled by hookd after %d failed attempts in a row since %s; last error: %s",
				n, since.Format(time.RFC3339), truncate(errText, 300))
			upd["disabled_at"], upd["disabled_reason"], upd["paused"], upd["updated_at"] = now, out.Reason, true, now
		}
		if err := tx.Model(&Endpoint{}).Where("id = ?", endpointID).Updates(upd).Error; err != nil {
			return err
		}
		if !out.Disabled {
			return nil
		}
		return s.parkQueued(tx, endpointID, now)
	})
	return out, translate(err, "record endpoint failure")
}

// ResetEndpointHealth ends the endpoint's run of failures after an attempt
// it answered. It writes only when there is a run to end.
func (s *Store) ResetEndpointHealth(ctx context.Context, endpointID string) error {
	err := s.db.WithContext(ctx).Model(&Endpoint{}).Where("id = ? AND consecutive_failures > 0", endpointID).
		Updates(healthReset()).Error
	return translate(err, "reset endpoint health")
}

// healthReset is the change that ends an endpoint's run of failures (an
// answer, or a resume).
func healthReset() map[string]any {
	return map[string]any{"consecutive_failures": 0, "failing_since": nil, "probe_after": nil, "probe_lease_until": nil}
}

// ReleaseProbe gives back the endpoint's probe when the attempt that took it
// ended without an answer to judge (held back by the rate limit, abandoned
// by a drain), so the next probe need not wait out the hold.
func (s *Store) ReleaseProbe(ctx context.Context, endpointID string) error {
	err := s.db.WithContext(ctx).Model(&Endpoint{}).Where("id = ?", endpointID).Update("probe_lease_until", nil).Error
	return translate(err, "release endpoint probe")
}

// AcquireProbe decides whether an attempt to a failing endpoint may start
// now. While the endpoint's run of failures is shorter than
// p.ProbeAfterFailures every attempt may. Otherwise one attempt at a time
// may, once the spacing wait is over: it holds the probe for at most hold
// (after which another may start, should its process die). When the caller
// may not start, wait says how long until it should ask again: the rest of
// the spacing wait, or, while a probe is in flight, p.ProbeBackoff at most
// (its answer may come any moment).
func (s *Store) AcquireProbe(ctx context.Context, endpointID string, p BreakerPolicy, hold time.Duration) (ok bool, wait time.Duration, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var e Endpoint
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Select("id", "consecutive_failures", "probe_after", "probe_lease_until").
			Where("id = ?", endpointID).Take(&e).Error; err != nil {
			return err
		}
		now := Now()
		switch {
		case p.ProbeAfterFailures <= 0 || e.ConsecutiveFailures < p.ProbeAfterFailures:
			ok = true
			return nil
		case e.ProbeAfter != nil && e.ProbeAfter.After(now):
			wait = e.ProbeAfter.Sub(now)
			return nil
		case e.ProbeLeaseUntil != nil && e.ProbeLeaseUntil.After(now):
			wait = min(e.ProbeLeaseUntil.Sub(now), p.ProbeBackoff)
			return nil
		}
		ok = true
		return tx.Model(&Endpoint{}).Where("id = ?", endpointID).Update("probe_lease_until", now.Add(hold)).Error
	})
	return ok, wait, translate(err, "acquire endpoint probe")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 { // do not cut a UTF-8 sequence
		n--
	}
	return s[:n] + "…"
}
