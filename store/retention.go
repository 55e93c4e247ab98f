package store

import (
	"context"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Retention says how long what is kept.
type Retention struct {
	// Payload is how long a finished message keeps its payload, counted
	// from when it finished (succeeded or failed_permanent), for projects
	// without their own setting and messages without retention_hours.
	Payload time.Duration
	// Metadata is how long a finished message, and its attempts, are kept
	// at all, counted the same way.
	Metadata time.Duration
	// Batch is how many rows one statement changes at most.
	Batch int
}

// CleanupResult counts what one clean-up pass removed.
type CleanupResult struct {
	PayloadsPurged  int64
	MessagesDeleted int64 // with their attempts
	StatsDeleted    int64
	OtherDeleted    int64 // expired export records, rate buckets of deleted endpoints, week-old inbound rejections
}

// leaderLease is a named lease that one process at a time holds.
type leaderLease struct {
	Name   string `gorm:"primaryKey"`
	Holder string
	Until  time.Time
}

func (leaderLease) TableName() string { return "leader_leases" }

// TryLead takes or renews the named lease for holder until now+ttl, and
// reports whether holder has it: only one process at a time runs the
// clean-up. A holder that stops renewing loses it when ttl passes.
func (s *Store) TryLead(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	now := Now()
	res := s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns: []clause.Column{{Name: "name"}},
		DoUpdates: clause.Assignments(map[string]any{
			"holder": gorm.Expr("excluded.holder"),
			"until":  gorm.Expr("excluded.until"),
		}),
		Where: clause.Where{Exprs: []clause.Expression{gorm.Expr("leader_leases.until < ? OR leader_leases.holder = excluded.holder", now)}},
	}).Create(&leaderLease{Name: name, Holder: holder, Until: now.Add(ttl)})
	if res.Error != nil {
		return false, translate(res.Error, "take the clean-up lease")
	}
	return res.RowsAffected == 1, nil
}

// Cleanup runs one clean-up pass at now, in batches of r.Batch rows, each
// its own short transaction, until nothing is left or ctx ends:
//   - purges the payloads of finished (or deleted) messages past their
//     retention (the message's retention_hours, else its project's, else
//     r.Payload);
//     a message still queued, delivering, retrying or paused is never
//     touched, nor is its payload;
//   - deletes finished (or deleted) messages, with their attempts, once
//     r.Metadata has passed since they finished;
//   - deletes per-minute statistics older than 2 days and per-hour ones
//     older than r.Metadata (at least 31 days), export records expired
//     for a week, and rate-limit buckets of deleted endpoints.
func (s *Store) Cleanup(ctx context.Context, now time.Time, r Retention) (CleanupResult, error) {
	var out CleanupResult
	batch := max(r.Batch, 1)
	// Webhooks held for listeners (cli endpoints) finish after
	// ListenRetention, so the retention below applies to them.
	if _, err := s.inBatches(ctx, batch, func(ctx context.Context) (int64, error) {
		res := s.db.WithContext(ctx).Exec(`UPDATE messages SET status = ?, terminal_at = ?, updated_at = ?, next_attempt_at = NULL WHERE id IN (
  SELECT m.id FROM messages m JOIN inbound_endpoints ie ON ie.id = m.endpoint_id AND ie.mode = 'cli'
  WHERE m.inbound AND m.status = ? AND m.created_at < ? LIMIT ?)`, StatusSucceeded, now, now, StatusPaused, now.Add(-ListenRetention), batch)
		return res.RowsAffected, translate(res.Error, "finish held cli messages")
	}); err != nil {
		return out, err
	}
	// Payloads under the project's (or the default) retention: one
	// statement for every project on the default, one per project with a
	// setting of its own (few), not one per project.
	var custom []Project
	if err := s.db.WithContext(ctx).Select("id", "retention_hours").Where("retention_hours > 0").Find(&custom).Error; err != nil {
		return out, translate(err, "list projects")
	}
	type group struct {
		keep  time.Duration
		where string // which projects
		arg   any
	}
	groups := []group{{r.Payload, "1 = 1", nil}}
	if len(custom) > 0 {
		ids := make([]string, len(custom))
		for i, p := range custom {
			ids[i] = p.ID
			groups = append(groups, group{time.Duration(p.RetentionHours) * time.Hour, "project_id = ?", p.ID})
		}
		groups[0].where, groups[0].arg = "project_id NOT IN ?", ids
	}
	for _, g := range groups {
		args := []any{now.Add(-g.keep)}
		if g.arg != nil {
			args = append(args, g.arg)
		}
		args = append(args, batch)
		n, err := s.inBatches(ctx, batch, func(ctx context.Context) (int64, error) {
			res := s.db.WithContext(ctx).Exec(`UPDATE messages SET payload = NULL WHERE id IN (
  SELECT id FROM messages WHERE payload IS NOT NULL AND terminal_at IS NOT NULL AND retention_hours IS NULL
    AND terminal_at < ? AND `+g.where+` AND (status IN ('succeeded', 'failed_permanent') OR deleted_at IS NOT NULL)
  LIMIT ?`+s.skipLocked()+`)`, args...)
			return res.RowsAffected, translate(res.Error, "purge payloads")
		})
		out.PayloadsPurged += n
		if err != nil {
			return out, err
		}
	}
	// Payloads with their own retention_hours.
	expired := "terminal_at < CAST(@now AS timestamptz) - retention_hours * interval '1 hour'"
	if s.dialect == SQLite {
		expired = "terminal_at < datetime(@now, '-' || retention_hours || ' hours')"
	}
	n, err := s.inBatches(ctx, batch, func(ctx context.Context) (int64, error) {
		res := s.db.WithContext(ctx).Exec(`UPDATE messages SET payload = NULL WHERE id IN (
  SELECT id FROM messages WHERE payload IS NOT NULL AND terminal_at IS NOT NULL AND retention_hours IS NOT NULL
    AND `+expired+` AND (status IN ('succeeded', 'failed_permanent') OR deleted_at IS NOT NULL) LIMIT @batch`+s.skipLocked()+`)`,
			map[string]any{"now": now, "batch": batch})
		return res.RowsAffected, translate(res.Error, "purge payloads")
	})
	out.PayloadsPurged += n
	if err != nil {
		return out, err
	}
	// Whole messages and their attempts.
	cutoff := now.Add(-r.Metadata)
	out.MessagesDeleted, err = s.inBatches(ctx, batch, func(ctx context.Context) (int64, error) {
		var deleted int64
		err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			// Locked (PostgreSQL), so a replay cannot revive a message
			// whose attempts are being deleted.
			var ids []string
			q := tx.Model(&Message{}).Where("terminal_at IS NOT NULL AND terminal_at < ? AND (status IN ? OR deleted_at IS NOT NULL)",
				cutoff, []string{StatusSucceeded, StatusFailedPermanent}).Order("terminal_at").Limit(batch)
			if s.dialect == Postgres {
				q = q.Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"})
			}
			if err := q.Pluck("id", &ids).Error; err != nil || len(ids) == 0 {
				return err
			}
			if err := tx.Where("message_id IN ?", ids).Delete(&Attempt{}).Error; err != nil {
				return err
			}
			res := tx.Where("id IN ?", ids).Delete(&Message{})
			deleted = res.RowsAffected
			return res.Error
		})
		return deleted, translate(err, "delete expired messages")
	})
	if err != nil {
		return out, err
	}
	// Statistics and rate buckets.
	statsKeep := max(r.Metadata, 31*24*time.Hour)
	out.StatsDeleted, err = s.inBatches(ctx, batch, func(ctx context.Context) (int64, error) {
		res := s.db.WithContext(ctx).Exec(`DELETE FROM message_stats WHERE (project_id, endpoint_id, granularity, bucket) IN (
  SELECT project_id, endpoint_id, granularity, bucket FROM message_stats
  WHERE (granularity = ? AND bucket < ?) OR (granularity = ? AND bucket < ?) LIMIT ?)`,
			StatsMinute, now.Add(-48*time.Hour), StatsHour, now.Add(-statsKeep), batch)
		return res.RowsAffected, translate(res.Error, "delete old statistics")
	})
	if err != nil {
		return out, err
	}
	n, err = s.inBatches(ctx, batch, func(ctx context.Context) (int64, error) { return s.PurgeExpiredExports(ctx, now, batch) })
	out.OtherDeleted += n
	if err != nil {
		return out, err
	}
	res := s.db.WithContext(ctx).Exec(`DELETE FROM endpoint_rate_buckets WHERE endpoint_id IN (SELECT id FROM endpoints WHERE deleted_at IS NOT NULL)`)
	if res.Error != nil {
		return out, translate(res.Error, "delete rate buckets")
	}
	out.OtherDeleted += res.RowsAffected
	n, err = s.inBatches(ctx, batch, func(ctx context.Context) (int64, error) {
		res := s.db.WithContext(ctx).Exec(`DELETE FROM inbound_rejections WHERE id IN (
  SELECT id FROM inbound_rejections WHERE received_at < ? LIMIT ?)`, now.Add(-RejectionRetention), batch)
		return res.RowsAffected, translate(res.Error, "delete old rejections")
	})
	out.OtherDeleted += n
	return out, err
}

// skipLocked ends a row-selecting subquery of a clean-up statement: on
// PostgreSQL, rows another transaction holds are left for the next pass
// instead of waited for.
func (s *Store) skipLocked() string {
	if s.dialect == Postgres {
		return " FOR UPDATE SKIP LOCKED"
	}
	return ""
}

// inBatches runs step, which handles at most batch rows and says how many
// it did, until a step does fewer (the work is done) or ctx ends (out of
// time: the next pass continues), and returns how many rows it did in all.
func (s *Store) inBatches(ctx context.Context, batch int, step func(context.Context) (int64, error)) (int64, error) {
	var total int64
	for {
		n, err := step(ctx)
		total += n
		if err != nil {
			return total, err
		}
		if n < int64(batch) {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}
