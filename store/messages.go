package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// More sentinels of the message operations.
var (
	// ErrIdempotencyMismatch: the idempotency key was used with another payload.
	ErrIdempotencyMismatch = errors.New("idempotency key reused with a different payload")
	// ErrEndpointNotFound: a send names no live endpoint of the project.
	ErrEndpointNotFound = errors.New("endpoint not found")
)

// dueChannel is the PostgreSQL notification channel that wakes workers in
// every process when messages become due.
const dueChannel = "hookd_due"

// poke wakes this process's claimer without blocking.
func (s *Store) poke() {
	select {
	case s.due <- struct{}{}:
	default:
	}
}

// Due is signalled when messages may have become due: after a send, a
// retry-now, a resume or a replay in this process, and (on PostgreSQL, once
// ListenDue runs) in any process.
func (s *Store) Due() <-chan struct{} { return s.due }

// notifyDue wakes this process now and, on PostgreSQL, every listening
// process when tx commits.
func (s *Store) notifyDue(tx *gorm.DB) error {
	if s.dialect != Postgres {
		return nil
	}
	return tx.Exec("SELECT pg_notify(?, '')", dueChannel).Error
}

// ListenDue relays PostgreSQL notifications of due messages from other
// processes to Due until ctx ends. It reconnects after errors. On SQLite it
// returns at once (one process).
func (s *Store) ListenDue(ctx context.Context) {
	if s.pool == nil {
		return
	}
	for ctx.Err() == nil {
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			sleepCtx(ctx, time.Second)
			continue
		}
		if _, err := conn.Exec(ctx, "LISTEN "+dueChannel); err == nil {
			for {
				if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
					break
				}
				s.poke()
			}
		}
		// The connection may be in any state now; do not return it to the pool.
		_ = conn.Conn().Close(context.Background())
		conn.Release()
		sleepCtx(ctx, 100*time.Millisecond)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// InsertMessage stores m for a live endpoint of m.ProjectID in one
// transaction, as queued (or paused, if the endpoint is). With an
// idempotency key already used on the endpoint it stores nothing and returns
// the existing message with created=false, or ErrIdempotencyMismatch if the
// payload differs. It returns ErrEndpointNotFound.
func (s *Store) InsertMessage(ctx context.Context, m Message) (stored Message, created bool, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var e Endpoint
		if err := liveEndpoint(tx.Select("id", "paused"), m.ProjectID, m.EndpointID).Take(&e).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return ErrEndpointNotFound
			}
			return err
		}
		if e.Paused {
			m.Status = StatusPaused
		}
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&m)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 1 {
			stored, created = m, true
			if m.Status == StatusQueued {
				return s.notifyDue(tx)
			}
			return nil
		}
		if m.IdempotencyKey == nil {
			return errors.New("insert message: no row inserted")
		}
		if err := tx.Where("endpoint_id = ? AND idempotency_key = ?", m.EndpointID, *m.IdempotencyKey).Take(&stored).Error; err != nil {
			return err
		}
		if stored.PayloadSHA256 != m.PayloadSHA256 {
			return ErrIdempotencyMismatch
		}
		return nil
	})
	if errors.Is(err, ErrEndpointNotFound) || errors.Is(err, ErrIdempotencyMismatch) {
		return Message{}, false, err
	}
	if err != nil {
		return Message{}, false, translate(err, "insert message")
	}
	if created && stored.Status == StatusQueued {
		s.poke()
	}
	return stored, created, nil
}

// ClaimDue leases up to limit due messages (oldest due first) to the caller
// until now+lease, marking them delivering, and returns them with payloads.
// Messages of the endpoints in skip are left alone. On PostgreSQL, rows
// another process is claiming are skipped (FOR UPDATE SKIP LOCKED), so no
// message is leased twice.
func (s *Store) ClaimDue(ctx context.Context, token string, lease time.Duration, limit int, skip []string) ([]Message, error) {
	now := Now()
	var b strings.Builder
	args := []any{StatusDelivering, now.Add(lease), token, now}
	b.WriteString(`UPDATE messages SET status = ?, lease_until = ?, lease_token = ?, updated_at = ?
WHERE id IN (SELECT id FROM messages
  WHERE status IN ('queued', 'pending_retry') AND next_attempt_at <= ? AND deleted_at IS NULL`)
	args = append(args, now)
	if len(skip) > 0 {
		b.WriteString(" AND endpoint_id NOT IN ?")
		args = append(args, skip)
	}
	b.WriteString(" ORDER BY next_attempt_at LIMIT ?")
	args = append(args, limit)
	if s.dialect == Postgres {
		b.WriteString(" FOR UPDATE SKIP LOCKED")
	}
	b.WriteString(") RETURNING *")
	var ms []Message
	err := s.db.WithContext(ctx).Raw(b.String(), args...).Scan(&ms).Error
	return ms, translate(err, "claim messages")
}

// RescueExpired makes due again every message whose lease ended (its worker
// died or lost the database): the interrupted attempt is not counted. It
// returns how many it rescued.
func (s *Store) RescueExpired(ctx context.Context) (int64, error) {
	now := Now()
	res := s.db.WithContext(ctx).Model(&Message{}).
		Where("status = ? AND lease_until < ?", StatusDelivering, now).
		Updates(map[string]any{"status": StatusPendingRetry, "next_attempt_at": now, "lease_until": nil, "lease_token": nil, "updated_at": now})
	if res.Error != nil {
		return 0, translate(res.Error, "rescue messages")
	}
	if res.RowsAffected > 0 {
		s.poke()
	}
	return res.RowsAffected, nil
}

// ExtendLeases moves the lease of messages this worker still holds (id and
// token both match, status delivering) to until: a live worker keeps its
// messages however long an attempt takes; only a dead one lets them expire.
func (s *Store) ExtendLeases(ctx context.Context, held map[string]string, until time.Time) error {
	if len(held) == 0 {
		return nil
	}
	ids := make([]string, 0, len(held))
	tokens := make([]string, 0, len(held))
	seen := map[string]bool{}
	for id, tok := range held {
		ids = append(ids, id)
		if !seen[tok] {
			seen[tok] = true
			tokens = append(tokens, tok)
		}
	}
	err := s.db.WithContext(ctx).Model(&Message{}).
		Where("id IN ? AND lease_token IN ? AND status = ?", ids, tokens, StatusDelivering).
		Update("lease_until", until).Error
	return translate(err, "extend leases")
}

// DeliveryTarget is what a worker needs to deliver to an endpoint.
type DeliveryTarget struct {
	Endpoint Endpoint
	Keys     []SigningKey // newest first
}

// DeliveryTargets loads the endpoints (deleted ones included, so workers can
// see the deletion) and their signing keys for the given ids.
func (s *Store) DeliveryTargets(ctx context.Context, endpointIDs []string) (map[string]DeliveryTarget, error) {
	var es []Endpoint
	if err := s.db.WithContext(ctx).Where("id IN ?", endpointIDs).Find(&es).Error; err != nil {
		return nil, translate(err, "load endpoints")
	}
	var ks []SigningKey
	if err := s.db.WithContext(ctx).Where("endpoint_id IN ?", endpointIDs).Order("id DESC").Find(&ks).Error; err != nil {
		return nil, translate(err, "load signing keys")
	}
	out := make(map[string]DeliveryTarget, len(es))
	for _, e := range es {
		out[e.ID] = DeliveryTarget{Endpoint: e}
	}
	for _, k := range ks {
		t := out[k.EndpointID]
		t.Keys = append(t.Keys, k)
		out[k.EndpointID] = t
	}
	return out, nil
}

// Outcome is the new state of a message after one attempt, decided by the
// delivery policy.
type Outcome struct {
	Status         string
	NextAttemptAt  *time.Time
	BudgetUsed     int
	FastStreak     int
	SlowRetries    int
	LastError      *string
	ResponseStatus *int
	LatencyMs      *int
}

// RecordAttempt stores attempt a and, if the caller still holds the
// message's lease (token), applies o to the message. A retry of a message
// whose endpoint was deleted meanwhile becomes failed_permanent instead. It
// returns the attempt number given to a.
func (s *Store) RecordAttempt(ctx context.Context, token string, a Attempt, o Outcome) (int, error) {
	now := Now()
	var attemptNo int
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var m Message
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Select("id", "attempt_count", "lease_token", "first_attempt_at", "endpoint_id").
			Where("id = ?", a.MessageID).Take(&m).Error; err != nil {
			return err
		}
		attemptNo = m.AttemptCount + 1
		a.AttemptNo = attemptNo
		if err := tx.Create(&a).Error; err != nil {
			return err
		}
		upd := map[string]any{"attempt_count": attemptNo, "updated_at": now}
		if m.LeaseToken != nil && *m.LeaseToken == token {
			if o.Status == StatusPendingRetry {
				var n int64
				if err := tx.Model(&Endpoint{}).Where("id = ? AND deleted_at IS NOT NULL", m.EndpointID).Count(&n).Error; err != nil {
					return err
				}
				if n > 0 {
					o.Status, o.NextAttemptAt = StatusFailedPermanent, nil
					msg := "endpoint deleted"
					o.LastError = &msg
				}
			}
			upd["status"] = o.Status
			upd["next_attempt_at"] = o.NextAttemptAt
			upd["budget_used"] = o.BudgetUsed
			upd["fast_streak"] = o.FastStreak
			upd["slow_retries"] = o.SlowRetries
			upd["last_error"] = o.LastError
			upd["response_status"] = o.ResponseStatus
			upd["response_latency_ms"] = o.LatencyMs
			upd["lease_until"] = nil
			upd["lease_token"] = nil
			if m.FirstAttemptAt == nil {
				upd["first_attempt_at"] = a.StartedAt
			}
			switch o.Status {
			case StatusSucceeded:
				upd["delivered_at"] = now
				upd["terminal_at"] = now
			case StatusFailedPermanent:
				upd["terminal_at"] = now
			}
		}
		return tx.Model(&Message{}).Where("id = ?", a.MessageID).Updates(upd).Error
	})
	return attemptNo, translate(err, "record attempt")
}

// ReleaseLease gives a leased message back without an attempt: due again at
// now+delay (hookd's own rate limit or concurrency cap held it back).
func (s *Store) ReleaseLease(ctx context.Context, id, token string, delay time.Duration) error {
	now := Now()
	err := s.db.WithContext(ctx).Exec(`UPDATE messages SET status = CASE WHEN attempt_count = 0 THEN 'queued' ELSE 'pending_retry' END,
  next_attempt_at = ?, lease_until = NULL, lease_token = NULL, updated_at = ? WHERE id = ? AND lease_token = ?`,
		now.Add(delay), now, id, token).Error
	return translate(err, "release message")
}

// ParkIfPaused sets a leased message to paused if its endpoint is paused,
// and reports whether it did. The endpoint row is read FOR SHARE, so a
// concurrent resume (which locks it FOR UPDATE) either sees the parked
// message or makes this call see the endpoint resumed.
func (s *Store) ParkIfPaused(ctx context.Context, id, endpointID, token string) (bool, error) {
	parked := false
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var e Endpoint
		if err := tx.Clauses(clause.Locking{Strength: "SHARE"}).Select("id", "paused").Where("id = ?", endpointID).Take(&e).Error; err != nil {
			return err
		}
		if !e.Paused {
			return nil
		}
		parked = true
		return tx.Model(&Message{}).Where("id = ? AND lease_token = ?", id, token).
			Updates(map[string]any{"status": StatusPaused, "next_attempt_at": nil, "lease_until": nil, "lease_token": nil, "updated_at": Now()}).Error
	})
	return parked, translate(err, "park message")
}

// FailLeased ends a leased message as failed_permanent without an attempt
// (its endpoint is gone).
func (s *Store) FailLeased(ctx context.Context, id, token, reason string) error {
	now := Now()
	err := s.db.WithContext(ctx).Model(&Message{}).Where("id = ? AND lease_token = ?", id, token).
		Updates(map[string]any{"status": StatusFailedPermanent, "last_error": reason, "next_attempt_at": nil,
			"lease_until": nil, "lease_token": nil, "terminal_at": now, "updated_at": now}).Error
	return translate(err, "fail message")
}

// GetMessage returns a message of the project (not deleted), or ErrNotFound.
func (s *Store) GetMessage(ctx context.Context, projectID, id string) (Message, error) {
	var m Message
	err := s.db.WithContext(ctx).Omit("payload").Where("id = ? AND project_id = ? AND deleted_at IS NULL", id, projectID).Take(&m).Error
	return m, translate(err, "get message")
}

// ListAttempts returns up to limit attempts of a message of the project, in
// attempt order; none for a missing or foreign message.
func (s *Store) ListAttempts(ctx context.Context, projectID, messageID string, limit int) ([]Attempt, error) {
	var as []Attempt
	err := s.db.WithContext(ctx).Where("message_id = ? AND project_id = ?", messageID, projectID).
		Order("attempt_no").Limit(limit).Find(&as).Error
	return as, translate(err, "list attempts")
}

// CountByStatus counts the project's messages per status (for tests and
// operators).
func (s *Store) CountByStatus(ctx context.Context, projectID string) (map[string]int64, error) {
	var rows []struct {
		Status string
		N      int64
	}
	err := s.db.WithContext(ctx).Model(&Message{}).Select("status, count(*) AS n").
		Where("project_id = ? AND deleted_at IS NULL", projectID).Group("status").Scan(&rows).Error
	out := map[string]int64{}
	for _, r := range rows {
		out[r.Status] = r.N
	}
	return out, translate(err, fmt.Sprintf("count messages of %s", projectID))
}
