package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
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

// Due is signalled when messages may have become due: after a send (not
// handed to a worker), a retry-now, a resume, a replay or a release without
// delay in this process, and (on PostgreSQL, once ListenDue runs) after
// sends, retry-nows, resumes and replays in other processes.
func (s *Store) Due() <-chan struct{} { return s.due }

// notifyDue wakes, on PostgreSQL, every other listening process when tx
// commits; the caller pokes this process after the commit.
func (s *Store) notifyDue(tx *gorm.DB) error { return s.hot.notifyDue(tx) }

// ListenDue relays PostgreSQL notifications of due messages from other
// processes to Due until ctx ends. It reconnects after errors. On SQLite it
// returns at once (one process).
func (s *Store) ListenDue(ctx context.Context) { s.hot.listenDue(ctx) }

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
	// The common case is one statement (one round trip, one commit): insert
	// if the endpoint is live, taking its paused state, and (PostgreSQL)
	// notify the workers at commit. No row back means the endpoint is gone
	// or the idempotency key exists; the transaction below sorts that out.
	res, err := s.hot.insert(ctx, m)
	if err != nil {
		return Message{}, false, translate(err, "insert message")
	}
	if status := res.status; status != "" {
		m.Status = status
		if status == StatusPaused {
			m.NextAttemptAt = nil
		}
		s.countStats(m.ProjectID, m.EndpointID, m.ID, func(d *StatsDelta) { d.Total++ })
		return m, true, nil
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// FOR SHARE: a concurrent pause, resume or delete (which lock the
		// endpoint FOR UPDATE) finishes first, and this read sees its result.
		var e Endpoint
		if err := liveEndpoint(tx.Select("id", "paused", "ordering").Clauses(clause.Locking{Strength: "SHARE"}), m.ProjectID, m.EndpointID).Take(&e).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return ErrEndpointNotFound
			}
			return err
		}
		if e.Paused {
			m.Status = StatusPaused
		}
		m.FIFOKey = fifoKeyOf(e, m.OrderingKey)
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
	if created {
		s.countStats(stored.ProjectID, stored.EndpointID, stored.ID, func(d *StatsDelta) { d.Total++ })
		if stored.Status == StatusQueued {
			s.poke()
		}
	}
	return stored, created, nil
}

// ClaimDue leases up to limit due messages (oldest due first) to the caller
// until now+lease, marking them delivering, and returns them with payloads,
// and the delivery targets of their endpoints (deleted ones included, so
// workers can see the deletion). Messages of the endpoints in skip are left
// alone. On PostgreSQL, rows another process is claiming are skipped (FOR
// UPDATE SKIP LOCKED), so no message is leased twice, and one statement
// does it all. If the messages were leased but their endpoints could not be
// read, it returns them with the error; the caller must release them.
func (s *Store) ClaimDue(ctx context.Context, token string, lease time.Duration, limit int, skip []string) ([]Message, map[string]DeliveryTarget, error) {
	ms, targets, err := s.hot.claim(ctx, token, lease, limit, skip)
	return ms, targets, translate(err, "claim messages")
}

// RescueExpired makes due again every claimed (delivering) message whose
// lease ended (its worker died or lost the database): the interrupted
// attempt is not counted. It returns how many it rescued. A message handed
// to a worker at send needs no rescue: it is queued, and claims take it once
// its lease ends.
func (s *Store) RescueExpired(ctx context.Context) (int64, error) {
	n, err := s.hot.rescue(ctx)
	if err != nil {
		return 0, translate(err, "rescue messages")
	}
	if n > 0 {
		s.poke()
	}
	return n, nil
}

// leaseEnded is true of a row no worker holds: no lease, or one that has
// ended (its process died). A queued message handed to a worker at send
// is leased (handoff.go); the database's clock judges the lease, as it set
// it. Handoff happens only on PostgreSQL: on SQLite queued rows never hold a
// lease.
const leaseEnded = "(lease_until IS NULL OR lease_until < now())"

// notInFlight keeps the queued messages no worker holds (leaseEnded).
func (s *Store) notInFlight(db *gorm.DB) *gorm.DB { return s.hot.notInFlight(db) }

// leasedStatuses are the statuses of a message a worker holds: delivering
// once claimed, queued when handed over at send (handoff.go).
var leasedStatuses = []string{StatusDelivering, StatusQueued}

// ExtendLeases renews for lease the leases of messages this worker still
// holds (id and token both match; status delivering, or queued when handed
// over at send): a live worker keeps its messages however long an attempt
// takes; only a dead one lets them expire. On PostgreSQL the database's
// clock measures the lease.
func (s *Store) ExtendLeases(ctx context.Context, held map[string]string, lease time.Duration) error {
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
	return translate(s.hot.extendLeases(ctx, ids, tokens, lease), "extend leases")
}

// DeliveryTarget is what a worker needs to deliver to an endpoint.
type DeliveryTarget struct {
	Endpoint Endpoint
	Keys     []SigningKey // newest first
}

// deliveryTargets loads the endpoints (deleted ones included) and their
// signing keys for the given ids.
func (s *Store) deliveryTargets(ctx context.Context, endpointIDs []string) (map[string]DeliveryTarget, error) {
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
	EndpointID     string // the message's endpoint, for the delivery statistics
}

// RecordAttempt stores attempt a and, if the caller still holds the
// message's lease (token), applies o to the message; a late record of a
// message rescued meanwhile only adds the attempt. It returns the attempt
// number given to a. (A retry scheduled for a message whose endpoint was
// deleted meanwhile fails when it is next claimed, without an attempt.)
func (s *Store) RecordAttempt(ctx context.Context, token string, a Attempt, o Outcome) (no int, err error) {
	no, err = s.hot.record(ctx, token, a, o)
	if err == nil {
		if no > 1 {
			s.countStats(a.ProjectID, o.EndpointID, a.MessageID, func(d *StatsDelta) { d.Retries++ })
		}
		s.countOutcome(a.ProjectID, o.EndpointID, a.MessageID, o.Status, o.LatencyMs)
	}
	return no, translate(err, "record attempt")
}

func (s *Store) attemptNo(ctx context.Context, attemptID string) (int, error) {
	var a Attempt
	err := s.db.WithContext(ctx).Select("attempt_no").Where("id = ?", attemptID).Take(&a).Error
	return a.AttemptNo, translate(err, "record attempt")
}

// isUniqueViolation reports a PostgreSQL unique violation that reached us
// outside GORM's error translation (raw queries read with Row()).
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// recordSet is the SET list shared by both dialects: the attempt always
// counts; the outcome applies only while the lease token matches (the
// right-hand sides see the row as it was).
const recordSet = `attempt_count = attempt_count + 1, updated_at = @now,
    first_attempt_at = COALESCE(first_attempt_at, @started),
    status = CASE WHEN lease_token = @tok THEN @status ELSE status END,
    next_attempt_at = CASE WHEN lease_token = @tok THEN @next ELSE next_attempt_at END,
    budget_used = CASE WHEN lease_token = @tok THEN @budget ELSE budget_used END,
    fast_streak = CASE WHEN lease_token = @tok THEN @fast ELSE fast_streak END,
    slow_retries = CASE WHEN lease_token = @tok THEN @slow ELSE slow_retries END,
    last_error = CASE WHEN lease_token = @tok THEN @lasterr ELSE last_error END,
    response_status = CASE WHEN lease_token = @tok THEN @rstatus ELSE response_status END,
    response_latency_ms = CASE WHEN lease_token = @tok THEN @latency ELSE response_latency_ms END,
    delivered_at = CASE WHEN lease_token = @tok AND @status = 'succeeded' THEN @now ELSE delivered_at END,
    terminal_at = CASE WHEN lease_token = @tok AND @status IN ('succeeded', 'failed_permanent') THEN @now ELSE terminal_at END,
    lease_until = CASE WHEN lease_token = @tok THEN NULL ELSE lease_until END,
    lease_token = CASE WHEN lease_token = @tok THEN NULL ELSE lease_token END`

// ReleaseLease gives a leased message back without an attempt: due again at
// now+delay (hookd's own rate limit or concurrency cap held it back).
func (s *Store) ReleaseLease(ctx context.Context, id, token string, delay time.Duration) error {
	now := Now()
	err := s.db.WithContext(ctx).Exec(`UPDATE messages SET status = CASE WHEN attempt_count = 0 THEN 'queued' ELSE 'pending_retry' END,
  next_attempt_at = ?, lease_until = NULL, lease_token = NULL, updated_at = ? WHERE id = ? AND lease_token = ?`,
		now.Add(delay), now, id, token).Error
	if err == nil && delay <= 0 {
		s.poke() // due again now
	}
	return translate(err, "release message")
}

// ParkIfPaused sets a leased message to paused if its endpoint is paused
// (or fails it if the endpoint was deleted meanwhile), and reports whether it
// did either. The endpoint row is read FOR SHARE, so a concurrent resume
// (which locks it FOR UPDATE) either sees the parked message or makes this
// call see the endpoint resumed.
func (s *Store) ParkIfPaused(ctx context.Context, m Message, token string) (bool, error) {
	id, endpointID := m.ID, m.EndpointID
	parked, failed := false, false
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var e Endpoint
		if err := tx.Clauses(clause.Locking{Strength: "SHARE"}).Select("id", "paused", "deleted_at").Where("id = ?", endpointID).Take(&e).Error; err != nil {
			return err
		}
		now := Now()
		switch {
		case e.DeletedAt != nil:
			parked = true
			res := tx.Model(&Message{}).Where("id = ? AND lease_token = ?", id, token).
				Updates(map[string]any{"status": StatusFailedPermanent, "last_error": "endpoint deleted", "next_attempt_at": nil,
					"lease_until": nil, "lease_token": nil, "terminal_at": now, "updated_at": now})
			failed = res.RowsAffected > 0
			return res.Error
		case !e.Paused:
			return nil
		}
		parked = true
		return tx.Model(&Message{}).Where("id = ? AND lease_token = ?", id, token).
			Updates(map[string]any{"status": StatusPaused, "next_attempt_at": nil, "lease_until": nil, "lease_token": nil, "updated_at": now}).Error
	})
	if err == nil && failed {
		s.countOutcome(m.ProjectID, m.EndpointID, m.ID, StatusFailedPermanent, nil)
	}
	return parked, translate(err, "park message")
}

// FailLeased ends a leased message as failed_permanent without an attempt
// (its endpoint is gone).
func (s *Store) FailLeased(ctx context.Context, m Message, token, reason string) error {
	now := Now()
	res := s.db.WithContext(ctx).Model(&Message{}).Where("id = ? AND lease_token = ?", m.ID, token).
		Updates(map[string]any{"status": StatusFailedPermanent, "last_error": reason, "next_attempt_at": nil,
			"lease_until": nil, "lease_token": nil, "terminal_at": now, "updated_at": now})
	if res.Error == nil && res.RowsAffected > 0 {
		s.countOutcome(m.ProjectID, m.EndpointID, m.ID, StatusFailedPermanent, nil)
	}
	return translate(res.Error, "fail message")
}

// GetMessage returns a message of the project (not deleted), or ErrNotFound.
func (s *Store) GetMessage(ctx context.Context, projectID, id string) (Message, error) {
	var m Message
	err := s.db.WithContext(ctx).Omit("payload").Where("id = ? AND project_id = ? AND deleted_at IS NULL", id, projectID).Take(&m).Error
	return m, translate(err, "get message")
}

// MessagePayload returns the exact payload bytes of a live message of the
// project. It returns ErrNotFound for a missing, deleted or foreign id and
// ErrRetentionExpired once retention has purged the payload.
func (s *Store) MessagePayload(ctx context.Context, projectID, id string) ([]byte, error) {
	var m Message
	err := s.db.WithContext(ctx).Select("id", "payload").Where("id = ? AND project_id = ? AND deleted_at IS NULL", id, projectID).Take(&m).Error
	if err != nil {
		return nil, translate(err, "get payload")
	}
	if m.Payload == nil {
		return nil, ErrRetentionExpired
	}
	return m.Payload, nil
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

// recordArgs are the values of an attempt's record statement shared by
// both dialects.
func recordArgs(token string, a Attempt, o Outcome) map[string]any {
	return map[string]any{
		"id": a.MessageID, "tok": token, "now": Now(), "status": o.Status, "next": o.NextAttemptAt,
		"budget": o.BudgetUsed, "fast": o.FastStreak, "slow": o.SlowRetries, "lasterr": o.LastError,
		"rstatus": o.ResponseStatus, "latency": o.LatencyMs, "started": a.StartedAt,
	}
}
