package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// State sentinels of the message operations. Their texts are sentences
// safe to show the caller; returned errors wrap them with the current status.
var (
	ErrInvalidStatus      = errors.New("the message's status does not allow this")
	ErrDeliveryInProgress = errors.New("the message is being delivered")
	ErrRetryInProgress    = errors.New("the message is waiting for a retry; use retry-now or cancel")
	ErrReplayLimit        = errors.New("the message was replayed the maximum number of times")
	ErrRetentionExpired   = errors.New("the message's payload is no longer kept")
)

// MaxReplays is how many replays one message allows (DLQ replays do not
// count).
const MaxReplays = 10

func statusErr(sentinel error, current string) error {
	return fmt.Errorf("%w (current: %s)", sentinel, current)
}

// lockMessage reads a live message of the project inside tx, locking its row
// on PostgreSQL.
func lockMessage(tx *gorm.DB, projectID, id string) (Message, error) {
	var m Message
	err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Omit("payload").
		Where("id = ? AND project_id = ? AND deleted_at IS NULL", id, projectID).Take(&m).Error
	return m, err
}

// RetryNow makes a pending_retry message due now. It returns ErrNotFound or
// ErrInvalidStatus, and the message as it now is.
func (s *Store) RetryNow(ctx context.Context, projectID, id string) (Message, error) {
	return s.changeWaiting(ctx, projectID, id, func(m *Message, now time.Time) map[string]any {
		m.NextAttemptAt = &now
		return map[string]any{"next_attempt_at": now}
	}, true)
}

// CancelRetry ends a pending_retry message as failed_permanent. It returns
// ErrNotFound or ErrInvalidStatus, and the message as it now is.
func (s *Store) CancelRetry(ctx context.Context, projectID, id string) (Message, error) {
	m, err := s.changeWaiting(ctx, projectID, id, func(m *Message, now time.Time) map[string]any {
		msg := "cancelled"
		m.Status, m.NextAttemptAt, m.LastError, m.TerminalAt = StatusFailedPermanent, nil, &msg, &now
		return map[string]any{"status": StatusFailedPermanent, "next_attempt_at": nil, "last_error": msg, "terminal_at": now}
	}, false)
	if err == nil {
		s.countOutcome(m.ProjectID, m.EndpointID, m.ID, StatusFailedPermanent, nil)
	}
	return m, err
}

func (s *Store) changeWaiting(ctx context.Context, projectID, id string, change func(*Message, time.Time) map[string]any, wake bool) (Message, error) {
	var m Message
	now := Now()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if m, err = lockMessage(tx, projectID, id); err != nil {
			return err
		}
		if m.Status != StatusPendingRetry {
			return statusErr(ErrInvalidStatus, m.Status)
		}
		upd := change(&m, now)
		upd["updated_at"] = now
		m.UpdatedAt = now
		if err := tx.Model(&Message{}).Where("id = ?", m.ID).Updates(upd).Error; err != nil {
			return err
		}
		if wake {
			return s.notifyDue(tx)
		}
		return nil
	})
	if errors.Is(err, ErrInvalidStatus) {
		return Message{}, err
	}
	if err != nil {
		return Message{}, translate(err, "change message")
	}
	if wake {
		s.poke()
	}
	return m, nil
}

// Replay queues a finished message again with a fresh attempt budget (the
// attempt numbers continue). fromDLQ allows only failed_permanent messages
// and does not count toward MaxReplays. It returns ErrNotFound,
// ErrDeliveryInProgress, ErrRetryInProgress, ErrInvalidStatus,
// ErrReplayLimit or ErrRetentionExpired (all wrapped with the status).
func (s *Store) Replay(ctx context.Context, projectID, id string, fromDLQ bool) (Message, error) {
	var m Message
	var prev string // the status it leaves
	now := Now()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if m, err = lockMessage(tx, projectID, id); err != nil {
			return err
		}
		prev = m.Status
		switch {
		case m.Status == StatusQueued || m.Status == StatusDelivering:
			return statusErr(ErrDeliveryInProgress, m.Status)
		case m.Status == StatusPendingRetry:
			return statusErr(ErrRetryInProgress, m.Status)
		case m.Status == StatusSucceeded && !fromDLQ, m.Status == StatusFailedPermanent:
		default:
			return statusErr(ErrInvalidStatus, m.Status)
		}
		if !fromDLQ && m.ReplayCount >= MaxReplays {
			return fmt.Errorf("%w (%d)", ErrReplayLimit, MaxReplays)
		}
		var kept int64
		if err := tx.Model(&Message{}).Where("id = ? AND payload IS NOT NULL", m.ID).Count(&kept).Error; err != nil {
			return err
		}
		if kept == 0 {
			return ErrRetentionExpired
		}
		var e Endpoint // FOR SHARE: see InsertMessage
		if err := liveEndpoint(tx.Select("id", "paused").Clauses(clause.Locking{Strength: "SHARE"}), projectID, m.EndpointID).Take(&e).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return fmt.Errorf("%w: its endpoint was deleted", ErrInvalidStatus)
			}
			return err
		}
		status, next := StatusQueued, &now
		if e.Paused {
			status, next = StatusPaused, nil
		}
		upd := map[string]any{"status": status, "next_attempt_at": next, "budget_used": 0, "fast_streak": 0,
			"slow_retries": 0, "terminal_at": nil, "updated_at": now}
		if !fromDLQ {
			upd["replay_count"] = m.ReplayCount + 1
			m.ReplayCount++
		}
		if err := tx.Model(&Message{}).Where("id = ?", m.ID).Updates(upd).Error; err != nil {
			return err
		}
		m.Status, m.NextAttemptAt = status, next
		if status == StatusQueued {
			return s.notifyDue(tx)
		}
		return nil
	})
	for _, sentinel := range []error{ErrDeliveryInProgress, ErrRetryInProgress, ErrInvalidStatus, ErrReplayLimit, ErrRetentionExpired} {
		if errors.Is(err, sentinel) {
			return Message{}, err
		}
	}
	if err != nil {
		return Message{}, translate(err, "replay message")
	}
	s.countStats(m.ProjectID, m.EndpointID, m.ID, func(d *StatsDelta) {
		if prev == StatusSucceeded {
			d.Succeeded--
		} else {
			d.Failed--
		}
	})
	if m.Status == StatusQueued {
		s.poke()
	}
	return m, nil
}

// MessageFilter selects messages for lists and bulk operations; zero fields
// do not filter.
type MessageFilter struct {
	EndpointID    string
	Status        string
	CreatedAfter  *time.Time // inclusive
	CreatedBefore *time.Time // exclusive
	EventType     string     // made by an event of this type
	EventID       string     // made by this event
	// Replayable keeps only messages a replay could queue: payload kept,
	// replays left, endpoint not deleted.
	Replayable bool
	// Inbound selects received messages instead of sent ones.
	Inbound bool
	// Forwarded keeps, of received messages, those of forwarding
	// endpoints (not the held messages of cli and pull endpoints).
	Forwarded bool
}

func (f MessageFilter) apply(q *gorm.DB) *gorm.DB {
	q = q.Where("messages.inbound = ?", f.Inbound)
	if f.Forwarded {
		q = q.Where("messages.endpoint_id IN (SELECT id FROM inbound_endpoints WHERE mode = 'forward')")
	}
	if f.Replayable {
		q = q.Where("messages.payload IS NOT NULL AND messages.replay_count < ?", MaxReplays).
			Where("EXISTS (SELECT 1 FROM endpoints WHERE endpoints.id = messages.endpoint_id AND endpoints.deleted_at IS NULL)")
	}
	if f.EndpointID != "" {
		q = q.Where("messages.endpoint_id = ?", f.EndpointID)
	}
	if f.Status != "" {
		q = q.Where("messages.status = ?", f.Status)
	}
	if f.EventType != "" {
		q = q.Where("messages.event_type = ?", f.EventType)
	}
	if f.EventID != "" {
		q = q.Where("messages.event_id = ?", f.EventID)
	}
	// created_at is the exact filter; the id range (ids are UUIDv7 of the
	// creation time, see idSlack) lets the (project_id, id) index start and
	// stop at the window instead of walking the whole history.
	if f.CreatedAfter != nil {
		q = q.Where("messages.created_at >= ? AND messages.id >= ?", f.CreatedAfter.UTC(), idFloor(f.CreatedAfter.Add(-idSlack)))
	}
	if f.CreatedBefore != nil {
		q = q.Where("messages.created_at < ? AND messages.id < ?", f.CreatedBefore.UTC(), idFloor(f.CreatedBefore.Add(idSlack)))
	}
	return q
}

// IDsMatching reports which of ids name messages of the project (deleted
// ones included) that f selects: the check of a bulk operation's listed
// ids (of one direction, one endpoint, forwarding endpoints…).
func (s *Store) IDsMatching(ctx context.Context, projectID string, ids []string, f MessageFilter) (map[string]bool, error) {
	out := map[string]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	var found []string
	err := f.apply(s.db.WithContext(ctx).Model(&Message{}).Where("messages.id IN ? AND messages.project_id = ?", ids, projectID)).
		Pluck("messages.id", &found).Error
	for _, id := range found {
		out[id] = true
	}
	return out, translate(err, "find messages")
}

// MatchingIDs returns up to limit ids of the project's live messages that
// match f, oldest first.
func (s *Store) MatchingIDs(ctx context.Context, projectID string, f MessageFilter, limit int) ([]string, error) {
	var out []string
	q := f.apply(s.db.WithContext(ctx).Model(&Message{}).Where("messages.project_id = ? AND messages.deleted_at IS NULL", projectID))
	err := q.Order("messages.id").Limit(limit).Pluck("messages.id", &out).Error
	return out, translate(err, "find messages")
}

// DeletedMessage is what a delete did to one message: when it was deleted,
// and whether that was by an earlier delete (Already).
type DeletedMessage struct {
	ID        string
	DeletedAt time.Time
	Already   bool
}

// DeleteMessage soft-deletes a message of the project and says when it was
// deleted (by an earlier delete when Already). It returns ErrNotFound for a
// missing or foreign id.
func (s *Store) DeleteMessage(ctx context.Context, projectID, id string) (DeletedMessage, error) {
	out, err := s.DeleteMessages(ctx, projectID, []string{id})
	if err != nil {
		return DeletedMessage{}, err
	}
	if len(out) == 0 {
		return DeletedMessage{}, ErrNotFound
	}
	return out[0], nil
}

// DeleteMessages soft-deletes the project's live messages among ids and
// returns one DeletedMessage per id of the project, deleted now or before
// (Already), in id order; unknown and foreign ids are left out. A message
// in flight finishes its attempt but is never delivered again.
func (s *Store) DeleteMessages(ctx context.Context, projectID string, ids []string) ([]DeletedMessage, error) {
	if len(ids) == 0 {
		return []DeletedMessage{}, nil
	}
	var found []Message
	now := Now()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Lock in id order (PostgreSQL), as every multi-row change does.
		if err := tx.Model(&Message{}).Select("id", "deleted_at").Where("id IN ? AND project_id = ?", ids, projectID).
			Order("id").Clauses(clause.Locking{Strength: "UPDATE"}).Find(&found).Error; err != nil {
			return err
		}
		var live []string
		for _, m := range found {
			if m.DeletedAt == nil {
				live = append(live, m.ID)
			}
		}
		if len(live) == 0 {
			return nil
		}
		return tx.Model(&Message{}).Where("id IN ? AND project_id = ?", live, projectID).
			// A deleted message counts as finished for the clean-up.
			Updates(map[string]any{"deleted_at": now, "updated_at": now, "next_attempt_at": nil,
				"terminal_at": gorm.Expr("COALESCE(terminal_at, ?)", now)}).Error
	})
	if err != nil {
		return nil, translate(err, "delete messages")
	}
	out := make([]DeletedMessage, len(found))
	for i, m := range found {
		if m.DeletedAt != nil {
			out[i] = DeletedMessage{ID: m.ID, DeletedAt: m.DeletedAt.UTC(), Already: true}
		} else {
			out[i] = DeletedMessage{ID: m.ID, DeletedAt: now.UTC()}
		}
	}
	return out, nil
}

// NewlyDeleted lists the ids that ds deleted now (not Already).
func NewlyDeleted(ds []DeletedMessage) []string {
	out := []string{}
	for _, d := range ds {
		if !d.Already {
			out = append(out, d.ID)
		}
	}
	return out
}

// MessageRow is a message with its endpoint's URL, for lists.
type MessageRow struct {
	Message
	EndpointURL string `gorm:"column:endpoint_url"`
}

// ListMessages returns up to limit of the project's live messages matching
// f, newest first, starting after the message id beforeID ("" for the
// first page).
func (s *Store) ListMessages(ctx context.Context, projectID string, f MessageFilter, beforeID string, limit int) ([]MessageRow, error) {
	q := s.db.WithContext(ctx).Table("messages").
		Select("messages.id, messages.project_id, messages.endpoint_id, messages.status, messages.attempt_count, messages.created_at, "+
			"messages.delivered_at, messages.terminal_at, messages.next_attempt_at, messages.response_status, messages.response_latency_ms, "+
			"messages.last_error, messages.event_type, messages.event_id, endpoints.url AS endpoint_url").
		Joins("JOIN endpoints ON endpoints.id = messages.endpoint_id").
		Where("messages.project_id = ? AND messages.deleted_at IS NULL", projectID)
	q = f.apply(q)
	if beforeID != "" {
		q = q.Where("messages.id < ?", beforeID)
	}
	var rows []MessageRow
	err := q.Order("messages.id DESC").Limit(limit).Scan(&rows).Error
	return rows, translate(err, "list messages")
}

// WaitingBehind returns, for a message of a FIFO endpoint that is still
// waiting, the id of the oldest earlier message with its ordering key that
// holds it back ("" when none does).
func (s *Store) WaitingBehind(ctx context.Context, m Message) (string, error) {
	if m.FIFOKey == nil || m.Status == StatusSucceeded || m.Status == StatusFailedPermanent {
		return "", nil
	}
	var ids []string
	err := s.db.WithContext(ctx).Model(&Message{}).
		Where(fifoWaiting+" AND fifo_key = ? AND id < ?", *m.FIFOKey, m.ID).
		Order("id").Limit(1).Pluck("id", &ids).Error
	if err != nil || len(ids) == 0 {
		return "", translate(err, "find the message ahead")
	}
	return ids[0], nil
}
