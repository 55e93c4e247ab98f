package store

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// Pull endpoints are inbound endpoints with mode "pull": their delivery
// target is paused for good, so what they receive is held (status paused)
// until the user's service fetches it (FetchedAt) and acknowledges it
// (status succeeded, DeliveredAt, TerminalAt: from then on retention
// applies).

// ModePull is the mode of a pull endpoint.
const ModePull = "pull"

// DefaultPullRetentionDays is how long an acknowledged pull event is kept
// when its endpoint does not say.
const DefaultPullRetentionDays = 7

// Pull event states, derived from FetchedAt and DeliveredAt.
const (
	PullStored    = "stored"
	PullFetched   = "fetched"
	PullDelivered = "delivered"
)

// PullState is the state of a pull event.
func PullState(m Message) string {
	switch {
	case m.DeliveredAt != nil:
		return PullDelivered
	case m.FetchedAt != nil:
		return PullFetched
	}
	return PullStored
}

// pullStateSQL is the condition of a pull state on messages.
func pullStateSQL(state string) string {
	switch state {
	case PullDelivered:
		return "messages.delivered_at IS NOT NULL"
	case PullFetched:
		return "messages.delivered_at IS NULL AND messages.fetched_at IS NOT NULL"
	}
	return "messages.delivered_at IS NULL AND messages.fetched_at IS NULL"
}

// PullFilter selects pull events; zero fields do not filter.
type PullFilter struct {
	EndpointID string // "" (logs): every pull endpoint of the project
	State      string
	EventType  string
	From, To   *time.Time // received at, [From, To)
}

// PullEventRow is a pull event (without payload) with its endpoint's name.
type PullEventRow struct {
	Message
	EndpointName string `gorm:"column:endpoint_name"`
}

func (f PullFilter) apply(q *gorm.DB) *gorm.DB {
	q = q.Joins("JOIN inbound_endpoints ie ON ie.id = messages.endpoint_id AND ie.mode = ?", ModePull).
		Where("messages.inbound AND messages.deleted_at IS NULL")
	if f.EndpointID != "" {
		q = q.Where("messages.endpoint_id = ?", f.EndpointID)
	}
	if f.State != "" {
		q = q.Where(pullStateSQL(f.State))
	}
	if f.EventType != "" {
		q = q.Where("messages.event_type = ?", f.EventType)
	}
	if f.From != nil {
		q = q.Where("messages.created_at >= ?", f.From.UTC())
	}
	if f.To != nil {
		q = q.Where("messages.created_at < ?", f.To.UTC())
	}
	return q
}

const pullColumns = "messages.id, messages.project_id, messages.endpoint_id, messages.status, messages.size_bytes, messages.event_type, " +
	"messages.created_at, messages.fetched_at, messages.delivered_at, ie.name AS endpoint_name"

// ListPullEvents returns up to limit pull events of the project matching
// f: oldest first after the id cursor (ascending), or newest first before
// it (descending, for logs).
func (s *Store) ListPullEvents(ctx context.Context, projectID string, f PullFilter, cursor string, ascending bool, limit int) ([]PullEventRow, error) {
	q := f.apply(s.db.WithContext(ctx).Table("messages").Select(pullColumns).Where("messages.project_id = ?", projectID))
	order := "messages.id DESC"
	if ascending {
		order = "messages.id"
		if cursor != "" {
			q = q.Where("messages.id > ?", cursor)
		}
	} else if cursor != "" {
		q = q.Where("messages.id < ?", cursor)
	}
	var out []PullEventRow
	err := q.Order(order).Limit(limit).Scan(&out).Error
	return out, translate(err, "list pull events")
}

// PullEventIDs returns up to limit ids of live pull events of the project
// matching f, oldest first.
func (s *Store) PullEventIDs(ctx context.Context, projectID string, f PullFilter, limit int) ([]string, error) {
	var out []string
	err := f.apply(s.db.WithContext(ctx).Table("messages").Where("messages.project_id = ?", projectID)).
		Order("messages.id").Limit(limit).Pluck("messages.id", &out).Error
	return out, translate(err, "find pull events")
}

// GetPullEvent returns a live event of the pull endpoint (with payload and
// headers). Unless preview, its first read marks it fetched. It returns
// ErrNotFound.
func (s *Store) GetPullEvent(ctx context.Context, projectID, endpointID, id string, preview bool) (Message, error) {
	var m Message
	err := s.db.WithContext(ctx).Where("id = ? AND endpoint_id = ? AND project_id = ? AND inbound AND deleted_at IS NULL", id, endpointID, projectID).
		Take(&m).Error
	if err != nil {
		return m, translate(err, "get pull event")
	}
	if !preview && m.FetchedAt == nil && m.DeliveredAt == nil {
		now := Now()
		res := s.db.WithContext(ctx).Model(&Message{}).Where("id = ? AND fetched_at IS NULL", id).Updates(map[string]any{"fetched_at": now, "updated_at": now})
		if res.Error != nil {
			return m, translate(res.Error, "mark pull event fetched")
		}
		if res.RowsAffected == 1 {
			m.FetchedAt = &now
		} else if err := s.db.WithContext(ctx).Select("fetched_at").Where("id = ?", id).Take(&m).Error; err != nil {
			return m, translate(err, "get pull event")
		}
	}
	return m, nil
}

// AckPullEvents marks the listed live, unacknowledged events of the pull
// endpoint delivered and returns how many it marked. One statement marks
// and returns them, so concurrent acknowledgements of the same events
// count each once.
func (s *Store) AckPullEvents(ctx context.Context, projectID, endpointID string, ids []string) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	now := Now()
	var acked []Message
	err := s.db.WithContext(ctx).Raw(`UPDATE messages SET status = ?, delivered_at = ?, terminal_at = ?, updated_at = ?, next_attempt_at = NULL,
    fetched_at = COALESCE(fetched_at, ?)
  WHERE id IN ? AND endpoint_id = ? AND project_id = ? AND inbound AND delivered_at IS NULL AND deleted_at IS NULL
  RETURNING id, created_at`, StatusSucceeded, now, now, now, now, ids, endpointID, projectID).Scan(&acked).Error
	if err != nil {
		return 0, translate(err, "acknowledge pull events")
	}
	for _, m := range acked {
		ms := int(now.Sub(m.CreatedAt).Milliseconds())
		s.countOutcome(projectID, endpointID, m.ID, StatusSucceeded, &ms)
	}
	return len(acked), nil
}

// PullCounts are a pull endpoint's live events per state.
type PullCounts struct {
	Stored, Fetched, Delivered int
}

// CountPullEvents counts the live events of a pull endpoint per state.
func (s *Store) CountPullEvents(ctx context.Context, endpointID string) (PullCounts, error) {
	var c PullCounts
	err := s.db.WithContext(ctx).Table("messages").
		Select("COALESCE(SUM(CASE WHEN delivered_at IS NULL AND fetched_at IS NULL THEN 1 ELSE 0 END), 0) AS stored, "+
			"COALESCE(SUM(CASE WHEN delivered_at IS NULL AND fetched_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS fetched, "+
			"COALESCE(SUM(CASE WHEN delivered_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS delivered").
		Where("endpoint_id = ? AND inbound AND deleted_at IS NULL", endpointID).Scan(&c).Error
	return c, translate(err, "count pull events")
}

// PullTimes are the times of one pull event, for statistics.
type PullTimes struct {
	CreatedAt   time.Time
	FetchedAt   *time.Time
	DeliveredAt *time.Time
}

// EachPullEvent calls fn with the times of each of the project's pull
// events (of one endpoint, unless endpointID is "") received since from,
// deleted ones included (statistics count what was received). Rows are
// streamed: memory does not grow with the window.
func (s *Store) EachPullEvent(ctx context.Context, projectID, endpointID string, from time.Time, fn func(PullTimes)) error {
	q := s.db.WithContext(ctx).Table("messages").Select("messages.created_at, messages.fetched_at, messages.delivered_at").
		Joins("JOIN inbound_endpoints ie ON ie.id = messages.endpoint_id AND ie.mode = ?", ModePull).
		Where("messages.project_id = ? AND messages.inbound AND messages.created_at >= ? AND messages.id >= ?", projectID, from.UTC(), idFloor(from.Add(-idSlack)))
	if endpointID != "" {
		q = q.Where("messages.endpoint_id = ?", endpointID)
	}
	rows, err := q.Rows()
	if err != nil {
		return translate(err, "read pull statistics")
	}
	defer rows.Close()
	for rows.Next() {
		var t PullTimes
		if err := rows.Scan(&t.CreatedAt, &t.FetchedAt, &t.DeliveredAt); err != nil {
			return translate(err, "read pull statistics")
		}
		fn(t)
	}
	return translate(rows.Err(), "read pull statistics")
}
