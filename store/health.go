package store

import (
	"context"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// EndpointHealth is an endpoint's circuit-breaker state as stored. The
// policy that reads and changes it lives with the delivery engine; the
// store only keeps it consistent across processes.
type EndpointHealth struct {
	ConsecutiveFailures int
	FailingSince        *time.Time // start of the current run of failures
	ProbeAfter          *time.Time // while failing, no attempt starts before this
	ProbeLeaseUntil     *time.Time // a probe attempt is in flight until at most this
	// Live is false for a deleted or already disabled endpoint.
	Live bool
}

// HealthChange is what a breaker decision writes back to an endpoint.
type HealthChange struct {
	ConsecutiveFailures int
	FailingSince        *time.Time
	ProbeAfter          *time.Time
	ProbeLeaseUntil     *time.Time
	// Disable, when not empty, disables the endpoint with this reason: it
	// is paused, and its queued messages wait as a paused endpoint's do.
	Disable string
}

// UpdateEndpointHealth reads the endpoint's breaker state with its row
// locked, asks decide what to change (given the store's clock), and writes
// that in the same transaction, so processes sharing the database take
// turns. decide returns write=false to change nothing.
func (s *Store) UpdateEndpointHealth(ctx context.Context, endpointID string, decide func(h EndpointHealth, now time.Time) (c HealthChange, write bool)) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var e Endpoint
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).
			Select("id", "consecutive_failures", "failing_since", "probe_after", "probe_lease_until", "disabled_at", "deleted_at").
			Where("id = ?", endpointID).Take(&e).Error; err != nil {
			return err
		}
		now := Now()
		c, write := decide(EndpointHealth{ConsecutiveFailures: e.ConsecutiveFailures, FailingSince: e.FailingSince,
			ProbeAfter: e.ProbeAfter, ProbeLeaseUntil: e.ProbeLeaseUntil, Live: e.DeletedAt == nil && e.DisabledAt == nil}, now)
		if !write {
			return nil
		}
		upd := map[string]any{"consecutive_failures": c.ConsecutiveFailures, "failing_since": c.FailingSince,
			"probe_after": c.ProbeAfter, "probe_lease_until": c.ProbeLeaseUntil}
		disable := c.Disable != "" && e.DeletedAt == nil && e.DisabledAt == nil
		if disable {
			upd["disabled_at"], upd["disabled_reason"], upd["paused"], upd["updated_at"] = now, c.Disable, true, now
		}
		if err := tx.Model(&Endpoint{}).Where("id = ?", endpointID).Updates(upd).Error; err != nil {
			return err
		}
		if !disable {
			return nil
		}
		return s.parkQueued(tx, endpointID, now)
	})
	return translate(err, "update endpoint health")
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
