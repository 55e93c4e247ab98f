package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/hookd/hookd/queue"
)

// sqlitePath is the hot path on SQLite (hotpath.go): GORM and plain SQL on
// one connection, one process. Nothing is handed over at send, no other
// process needs waking, and a queued row never holds a lease.
type sqlitePath struct{ *Store }

const recordUpdateSQLite = `UPDATE messages SET ` + recordSet + ` WHERE id = @id`

func (sqlitePath) handsOff() bool { return false }

func (sqlitePath) notifyDue(*gorm.DB) error { return nil }

func (sqlitePath) listenDue(context.Context) {}

// notInFlight keeps every queued message: on SQLite none is leased.
func (sqlitePath) notInFlight(db *gorm.DB) *gorm.DB { return db }

const insertFastSQLite = `INSERT INTO messages (id, project_id, endpoint_id, status, payload, payload_sha256, size_bytes, headers,
    idempotency_key, retention_hours, next_attempt_at, created_at, updated_at, fifo_key, trace_parent, inbound, event_type)
  SELECT @id, @project, e.id, CASE WHEN e.paused THEN 'paused' ELSE 'queued' END, @payload, @sha, @size, @headers,
    @key, @retention, CASE WHEN e.paused THEN NULL ELSE @now END, @now, @now,
    CASE WHEN e.ordering = 'fifo' THEN e.id || '/' || coalesce(@okey, '') END, @trace, @inbound, @etype
  FROM endpoints e WHERE e.id = @endpoint AND e.project_id = @project AND e.deleted_at IS NULL
  ON CONFLICT DO NOTHING
  RETURNING status`

// blob passes bytes to a raw query as one value (GORM expands a plain
// []byte argument into a list).
type blob []byte

// Value implements driver.Valuer.
func (b blob) Value() (driver.Value, error) { return []byte(b), nil }

// SQLite writes through one connection, and every commit waits for its
// fsync (synchronous=FULL). So sends and attempt records that arrive
// together share one transaction, and one commit, through the batchers of
// batcher.go, as they share a statement on PostgreSQL: a quiet server
// commits each at once, a busy one pays one commit for many.

// startBatchers runs the send and record batchers until the store closes.
func (s sqlitePath) startBatchers() {
	s.sends = make(chan sendRequest, queue.Backlog)
	runBatchers(s.Store, s.sends, s.insertBatch, func(r sendRequest) { r.done <- sendResult{err: ErrClosed} })
	s.records = make(chan recordRequest, queue.Backlog)
	runBatchers(s.Store, s.records, s.recordBatch, func(r recordRequest) { r.done <- recordResult{err: ErrClosed} })
}

// insert queues m for the next batch and waits for its commit.
func (s sqlitePath) insert(ctx context.Context, m Message) (sendResult, error) {
	return s.queueSend(ctx, s.sends, m)
}

// insertBatch inserts the batch in one transaction and wakes the claimer
// if any message is due.
func (s sqlitePath) insertBatch(batch []sendRequest) {
	batch = live(batch) // (one connection: no lock order to keep)
	statuses, errs := eachInTransaction(s, len(batch), func(tx *gorm.DB, i int) (string, error) { return insertSQLite(tx, batch[i].m) })
	if slices.Contains(statuses, StatusQueued) {
		s.poke()
	}
	for i, r := range batch {
		r.done <- sendResult{status: statuses[i], err: errs[i]}
	}
}

// eachInTransaction runs do for items 0 to n-1 in one transaction, and
// returns each one's result. If that transaction fails, each item is run
// again alone, in a transaction of its own with time of its own (the batch
// may have failed by its deadline), so one bad item cannot fail the
// others.
func eachInTransaction[R any](s sqlitePath, n int, do func(tx *gorm.DB, i int) (R, error)) ([]R, []error) {
	results, errs := make([]R, n), make([]error, n)
	if n == 0 {
		return results, errs
	}
	ctx, cancel := context.WithTimeout(context.Background(), sendBatchDeadline)
	defer cancel()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for i := range n {
			var err error
			if results[i], err = do(tx, i); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		return results, errs
	}
	for i := range n {
		one, cancelOne := context.WithTimeout(context.Background(), sendBatchDeadline)
		errs[i] = s.db.WithContext(one).Transaction(func(tx *gorm.DB) error {
			var err error
			results[i], err = do(tx, i)
			return err
		})
		cancelOne()
	}
	return results, errs
}

// insertSQLite runs the one-statement insert on db: the stored status, or
// "" when nothing was inserted.
func insertSQLite(db *gorm.DB, m Message) (string, error) {
	headers, err := m.Headers.Value()
	if err != nil {
		return "", err
	}
	values := map[string]any{
		"id": m.ID, "project": m.ProjectID, "endpoint": m.EndpointID, "payload": blob(m.Payload), "sha": m.PayloadSHA256,
		"size": m.SizeBytes, "headers": headers, "key": m.IdempotencyKey, "retention": m.RetentionHours, "now": m.CreatedAt,
		"okey": m.OrderingKey, "trace": m.TraceParent, "inbound": m.Inbound, "etype": inboundEventType(m),
	}
	rows, err := db.Raw(insertFastSQLite, values).Rows()
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var status string
	if rows.Next() {
		if err := rows.Scan(&status); err != nil {
			return "", err
		}
	}
	return status, rows.Err()
}

func (s sqlitePath) claim(ctx context.Context, token string, lease time.Duration, limit int, skip []string) ([]Message, map[string]DeliveryTarget, error) {
	now := Now()
	var b strings.Builder
	args := []any{StatusDelivering, now.Add(lease), token, now}
	b.WriteString(`UPDATE messages SET status = ?, lease_until = ?, lease_token = ?, updated_at = ?
WHERE id IN (SELECT id FROM messages m
  WHERE status IN ('queued', 'pending_retry') AND next_attempt_at <= ? AND deleted_at IS NULL AND ` + fifoFree)
	args = append(args, now)
	if len(skip) > 0 {
		b.WriteString(" AND endpoint_id NOT IN ?")
		args = append(args, skip)
	}
	b.WriteString(" ORDER BY next_attempt_at LIMIT ?) RETURNING *")
	args = append(args, limit)
	var ms []Message
	if err := s.db.WithContext(ctx).Raw(b.String(), args...).Scan(&ms).Error; err != nil {
		return nil, nil, err
	}
	if len(ms) == 0 {
		return nil, nil, nil
	}
	epIDs := make([]string, 0, len(ms))
	seen := map[string]bool{}
	for _, m := range ms {
		if !seen[m.EndpointID] {
			seen[m.EndpointID] = true
			epIDs = append(epIDs, m.EndpointID)
		}
	}
	targets, err := s.deliveryTargets(ctx, epIDs)
	return ms, targets, err
}

// rescue makes claimed messages whose lease ended due again.
func (s sqlitePath) rescue(ctx context.Context) (int64, error) {
	now := Now()
	res := s.db.WithContext(ctx).Model(&Message{}).Where("status = ? AND lease_until < ?", StatusDelivering, now).
		Updates(map[string]any{"status": StatusPendingRetry, "next_attempt_at": now, "lease_until": nil, "lease_token": nil, "updated_at": now})
	return res.RowsAffected, res.Error
}

func (s sqlitePath) extendLeases(ctx context.Context, ids, tokens []string, lease time.Duration) error {
	return s.db.WithContext(ctx).Model(&Message{}).
		Where("id IN ? AND lease_token IN ? AND status IN ?", ids, tokens, leasedStatuses).
		Update("lease_until", Now().Add(lease)).Error
}

// record queues an attempt record for the next batch and waits for its
// commit.
func (s sqlitePath) record(ctx context.Context, token string, a Attempt, o Outcome) (int, error) {
	return s.queueRecord(ctx, token, a, o)
}

// recordBatch records the batch in one transaction, in order (a message
// twice in a batch, a late record beside a current one, is recorded
// twice, correctly).
func (s sqlitePath) recordBatch(batch []recordRequest) {
	nos, errs := eachInTransaction(s, len(batch), func(tx *gorm.DB, i int) (int, error) {
		r := batch[i]
		return recordSQLite(tx, r.token, r.a, r.o)
	})
	for i, r := range batch {
		r.done <- recordResult{no: nos[i], err: errs[i]}
	}
}

// recordSQLite records an attempt in tx: the message's change, then the
// attempt row numbered by it. A record already written (a retry of a
// write whose commit was not heard about) answers its number again.
func recordSQLite(tx *gorm.DB, token string, a Attempt, o Outcome) (int, error) {
	var done Attempt
	err := tx.Select("attempt_no").Where("id = ?", a.ID).Limit(1).Find(&done).Error
	if err != nil {
		return 0, err
	}
	if done.AttemptNo > 0 {
		return done.AttemptNo, nil
	}
	if err := tx.Exec(recordUpdateSQLite, recordArgs(token, a, o)).Error; err != nil {
		return 0, err
	}
	var m Message
	if err := tx.Select("attempt_count").Where("id = ?", a.MessageID).Take(&m).Error; err != nil {
		return 0, err
	}
	a.AttemptNo = m.AttemptCount
	return a.AttemptNo, tx.Create(&a).Error
}

// authenticate finds a live API key by its hash, with its project's limits.
func (s sqlitePath) authenticate(ctx context.Context, keyHash string) (APIKey, ProjectLimits, error) {
	var row struct {
		APIKey                 `gorm:"embedded"`
		RateLimitPerMinute     int
		SendRateLimitPerMinute int
	}
	err := s.db.WithContext(ctx).Raw(`SELECT k.*, p.rate_limit_per_minute, p.send_rate_limit_per_minute
FROM api_keys k JOIN projects p ON p.id = k.project_id
WHERE k.key_hash = ? AND k.deleted_at IS NULL`, keyHash).Scan(&row).Error
	if err == nil && row.ID == "" {
		err = ErrNotFound
	}
	return row.APIKey, ProjectLimits{RateLimitPerMinute: row.RateLimitPerMinute, SendRateLimitPerMinute: row.SendRateLimitPerMinute}, err
}

// publish stores an event and its messages in one transaction, the
// messages in batches of maxFanOutRows.
func (s sqlitePath) publish(ctx context.Context, ev Event, template Message, newID func() string, match func(Endpoint) bool) (Event, []Message, bool, error) {
	var msgs []Message
	created := false
	stored := ev
	wake := false
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		msgs, created, stored, wake = nil, false, ev, false
		// The endpoints, FOR SHARE like a send's: a concurrent pause,
		// resume or delete finishes first, and this sees its result.
		var es []Endpoint
		q := tx.Select("id", "paused", "event_types", "owner_id", "ordering").Clauses(clause.Locking{Strength: "SHARE"}).
			Where("project_id = ? AND deleted_at IS NULL AND NOT inbound", ev.ProjectID)
		if ev.OwnerID != nil {
			q = q.Where("owner_id = ?", *ev.OwnerID)
		}
		if err := q.Order("id").Find(&es).Error; err != nil {
			return err
		}
		for _, e := range es {
			if !match(e) {
				continue
			}
			m := fanOutMessage(template, e, newID())
			wake = wake || m.Status == StatusQueued
			msgs = append(msgs, m)
		}
		ev.EndpointCount = len(msgs)
		res := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&ev)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			// The idempotency key is taken (a concurrent publish with it has
			// committed by now): answer with that event.
			if ev.IdempotencyKey == nil {
				return errors.New("publish event: no row inserted")
			}
			// (into a zero Event: GORM would add a set primary key to the
			// condition)
			var original Event
			if err := tx.Where("project_id = ? AND idempotency_key = ?", ev.ProjectID, *ev.IdempotencyKey).Take(&original).Error; err != nil {
				return err
			}
			stored = original
			if !ev.repeats(stored) {
				return ErrEventIdempotencyMismatch
			}
			wake = false
			msgs = nil
			return tx.Select("id", "endpoint_id", "status").Where("event_id = ?", stored.ID).Order("id").Find(&msgs).Error
		}
		stored, created = ev, true
		if len(msgs) > 0 {
			if err := tx.CreateInBatches(msgs, maxFanOutRows).Error; err != nil {
				return err
			}
		}
		if wake {
			return s.notifyDue(tx)
		}
		return nil
	})
	if errors.Is(err, ErrEventIdempotencyMismatch) {
		return Event{}, nil, false, err
	}
	if err != nil {
		return Event{}, nil, false, translate(err, "publish event")
	}
	if created {
		for _, m := range msgs {
			s.countStats(m.ProjectID, m.EndpointID, m.ID, func(d *StatsDelta) { d.Total++ })
		}
		if wake {
			s.poke()
		}
	}
	return stored, msgs, created, nil
}

// inboundOriginal finds the message of an idempotency key.
func (s sqlitePath) inboundOriginal(ctx context.Context, endpointID, key string) (Message, bool, error) {
	m, err := s.inboundByKey(s.db.WithContext(ctx), endpointID, key)
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return Message{}, false, nil
	}
	return m, err == nil, err
}
