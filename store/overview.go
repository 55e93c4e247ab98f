package store

import (
	"context"
	"fmt"
)

// OverviewCap is where Overview's counts stop, so that a project with a
// long history or a deep backlog still gets its answer in milliseconds.
const OverviewCap = 100_000

// Overview is a project's outbound delivery at a glance.
type Overview struct {
	Queued, Delivering, PendingRetry, DLQ int64
	Capped                                bool // a count reached OverviewCap
	Failing, Disabled                     []Endpoint
}

// Overview counts the project's outbound messages waiting now and in the
// dead-letter queue (each count stopping at OverviewCap), and lists up to
// limit failing (not disabled) endpoints, most failures first, and up to
// limit disabled ones, newest first.
func (s *Store) Overview(ctx context.Context, projectID string, limit int) (Overview, error) {
	var o Overview
	db := s.db.WithContext(ctx)
	count := func(status string, n *int64) error {
		// The inner LIMIT bounds the work; the partial indexes of the
		// queue and the DLQ serve the common cases.
		err := db.Raw(`SELECT count(*) FROM (SELECT 1 FROM messages
			WHERE project_id = ? AND status = ? AND deleted_at IS NULL AND NOT inbound LIMIT ?) AS m`,
			projectID, status, OverviewCap).Scan(n).Error
		if *n >= OverviewCap {
			o.Capped = true
		}
		return err
	}
	for _, c := range []struct {
		status string
		n      *int64
	}{{"queued", &o.Queued}, {"delivering", &o.Delivering}, {"pending_retry", &o.PendingRetry}, {"failed_permanent", &o.DLQ}} {
		if err := count(c.status, c.n); err != nil {
			return o, translate(err, fmt.Sprintf("count %s messages", c.status))
		}
	}
	const live = "project_id = ? AND deleted_at IS NULL AND NOT inbound"
	if err := db.Where(live, projectID).Where("consecutive_failures > 0 AND disabled_at IS NULL").
		Order("consecutive_failures DESC, id DESC").Limit(limit).Find(&o.Failing).Error; err != nil {
		return o, translate(err, "list failing endpoints")
	}
	if err := db.Where(live, projectID).Where("disabled_at IS NOT NULL").
		Order("disabled_at DESC, id DESC").Limit(limit).Find(&o.Disabled).Error; err != nil {
		return o, translate(err, "list disabled endpoints")
	}
	return o, nil
}
