package store

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// ExportCompleted is the status stored for every export: the CSV is made
// from the database when it is downloaded, so an export is complete as soon
// as its filters are recorded. "expired" is not stored; readers derive it
// from ExpiresAt.
const ExportCompleted = "completed"

// The directions of exports: sent or received messages.
const (
	ExportDirectionOutbound = "outbound"
	ExportDirectionInbound  = "inbound"
)

// ExportRetention is how long an export row is kept after it expires
// (expired exports still show in lists as expired), before
// PurgeExpiredExports removes it.
const ExportRetention = 7 * 24 * time.Hour

// Export records the filters of a CSV export of a project's messages. The
// CSV selects the live messages created in [FilterStartTime, windowEnd)
// that match FilterStatus and FilterEndpointID (nil: any).
type Export struct {
	ID               string `gorm:"primaryKey"`
	ProjectID        string
	Status           string
	FilterStartTime  time.Time
	FilterEndTime    time.Time
	FilterStatus     *string
	FilterEndpointID *string // an endpoint id as messages store it (an inbound endpoint's for inbound exports)
	FilterDirection  string
	RowCount         int64 // matching messages when the export was created
	FileSizeBytes    *int64
	ErrorMessage     *string
	CreatedAt        time.Time
	StartedAt        *time.Time
	CompletedAt      *time.Time
	ExpiresAt        time.Time
	DeletedAt        *time.Time
}

// windowEnd is the exclusive upper bound of the messages' created_at: the
// filter's end, but never later than the export's own creation, so a
// download never includes messages sent after the export was made and
// row_count stays meaningful.
func (x Export) windowEnd() time.Time {
	if x.CreatedAt.Before(x.FilterEndTime) {
		return x.CreatedAt
	}
	return x.FilterEndTime
}

// ExportRow is one line of an export's CSV: a message's delivery summary,
// never its payload or headers.
type ExportRow struct {
	ID                string `gorm:"column:id"`
	EndpointID        string
	EndpointURL       string `gorm:"-"`
	Status            string
	AttemptCount      int
	CreatedAt         time.Time
	DeliveredAt       *time.Time
	ResponseStatus    *int
	ResponseLatencyMs *int
	LastError         *string
	NextAttemptAt     *time.Time
	DeletedAt         *time.Time `gorm:"column:deleted_at"`
	Inbound           bool       // a received message (exported by inbound exports only)
}

// idSlack widens the message-id range an export covers beyond its
// created_at window. Message ids are UUIDv7 minted in the same instant as
// created_at (handlers.SendWebhook), so the id's millisecond timestamp is
// within a hair of created_at; the range lets reads start and stop in the
// (project_id, id) index instead of walking the project's whole history,
// and created_at stays the exact filter. A message whose id ran more than
// this ahead of its created_at (a backwards clock step of over a minute
// while sending) could be missed at a window's end.
const idSlack = time.Minute

// idFloor is the smallest UUIDv7 string whose timestamp is t's
// millisecond (clamped to the 48-bit range of UUIDv7 timestamps). Ids with
// an earlier millisecond sort before it, as text, and later ones after.
func idFloor(t time.Time) string {
	ms := t.UnixMilli()
	ms = max(0, min(ms, 1<<48-1))
	return fmt.Sprintf("%08x-%04x-7000-8000-000000000000", ms>>16, ms&0xffff)
}

// idRange is the message-id range export x covers, [lo, hi).
func (x Export) idRange() (lo, hi string) {
	return idFloor(x.FilterStartTime.Add(-idSlack)), idFloor(x.windowEnd().Add(idSlack))
}

// matches is the export's exact filter, the same as exportScope's.
func (x Export) matches(r ExportRow) bool {
	end := x.windowEnd()
	return r.DeletedAt == nil && r.Inbound == (x.FilterDirection == ExportDirectionInbound) && !r.CreatedAt.Before(x.FilterStartTime) && r.CreatedAt.Before(end) &&
		(x.FilterStatus == nil || r.Status == *x.FilterStatus) &&
		(x.FilterEndpointID == nil || r.EndpointID == *x.FilterEndpointID)
}

// exportScope restricts q (over messages) to the rows export x selects:
// the project's live messages through the lists' own filter.
func exportScope(q *gorm.DB, x Export) *gorm.DB {
	start, end := x.FilterStartTime, x.windowEnd()
	f := MessageFilter{EndpointID: deref(x.FilterEndpointID), Status: deref(x.FilterStatus), CreatedAfter: &start, CreatedBefore: &end,
		Inbound: x.FilterDirection == ExportDirectionInbound}
	return f.apply(q.Where("messages.project_id = ? AND messages.deleted_at IS NULL", x.ProjectID))
}

// CreateExport counts the messages x selects, stores x with that RowCount
// and returns the stored record. x.ProjectID must name an existing project.
func (s *Store) CreateExport(ctx context.Context, x Export) (Export, error) {
	var n int64
	var err error
	if s.dialect == Postgres {
		// Counting wants a bitmap scan of messages_project_idx over the id
		// range (measured ~2 ms for 4,700 rows, against ~560 ms for the
		// parallel sequential scan chosen without it); the pool turns bitmap
		// scans off for the queue's sake (store.go), so turn them on for
		// this transaction only.
		err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec("SET LOCAL enable_bitmapscan = on").Error; err != nil {
				return err
			}
			return exportScope(tx.Table("messages"), x).Count(&n).Error
		})
	} else {
		err = exportScope(s.db.WithContext(ctx).Table("messages"), x).Count(&n).Error
	}
	if err != nil {
		return Export{}, translate(err, "count export rows")
	}
	x.RowCount = n
	if err := s.db.WithContext(ctx).Create(&x).Error; err != nil {
		return Export{}, translate(err, "create export")
	}
	return x, nil
}

// GetExport returns a live (not deleted) export of the project, expired or
// not, or ErrNotFound.
func (s *Store) GetExport(ctx context.Context, projectID, id string) (Export, error) {
	var x Export
	err := s.db.WithContext(ctx).Where("id = ? AND project_id = ? AND deleted_at IS NULL", id, projectID).Take(&x).Error
	return x, translate(err, "get export")
}

// GetExportByID returns a live export whatever its project, or
// ErrNotFound. It serves signed download links, which carry no API key:
// call it only for an id whose link signature has been verified.
func (s *Store) GetExportByID(ctx context.Context, id string) (Export, error) {
	var x Export
	err := s.db.WithContext(ctx).Where("id = ? AND deleted_at IS NULL", id).Take(&x).Error
	return x, translate(err, "get export")
}

// ListExports returns up to limit live exports of the project, newest
// first, starting after the export id beforeID ("" for the first page).
func (s *Store) ListExports(ctx context.Context, projectID, beforeID string, limit int) ([]Export, error) {
	xs, err := livePage[Export](s.db.WithContext(ctx), projectID, beforeID, limit)
	return xs, translate(err, "list exports")
}

// DeleteExport soft-deletes a live export of the project; its download
// links stop working at once. It returns ErrNotFound if the project has no
// such live export.
func (s *Store) DeleteExport(ctx context.Context, projectID, id string) error {
	res := s.db.WithContext(ctx).Model(&Export{}).
		Where("id = ? AND project_id = ? AND deleted_at IS NULL", id, projectID).
		Update("deleted_at", Now())
	if res.Error != nil {
		return translate(res.Error, "delete export")
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// ExportRows reads the next page of export x: it scans up to limit of the
// project's messages in the export's id range whose id is after afterID
// ("" to start), in id (creation) order, and returns those that match the
// export, each with its endpoint URL, and next, the afterID of the
// following page ("" once the range is exhausted). A page may hold fewer
// rows than limit, even none, while next is not "".
//
// The query has only the conditions messages_project_idx (project_id, id)
// answers and the order it gives, so on either database each page is one
// index range scan with no sort, whatever the filters; the time, status,
// endpoint and deleted filters are applied to the scanned rows here. With
// the filters in SQL, the planners preferred the status and endpoint
// indexes plus a sort of all of an endpoint's messages on every page
// (docs/operations.md (exports) has the measurements). Each page is its own
// short query, so a download holds no connection or transaction while rows
// are written to the client (SQLite has a single connection).
func (s *Store) ExportRows(ctx context.Context, x Export, afterID string, limit int) (rows []ExportRow, next string, err error) {
	lo, hi := x.idRange()
	q := s.db.WithContext(ctx).Table("messages").
		Select("id, endpoint_id, status, attempt_count, created_at, delivered_at, response_status, response_latency_ms, "+
			"last_error, next_attempt_at, deleted_at, inbound").
		Where("project_id = ? AND id >= ? AND id < ?", x.ProjectID, lo, hi)
	if afterID != "" {
		q = q.Where("id > ?", afterID)
	}
	var scanned []ExportRow
	if err := q.Order("id").Limit(limit).Scan(&scanned).Error; err != nil {
		return nil, "", translate(err, "read export rows")
	}
	if len(scanned) == limit {
		next = scanned[len(scanned)-1].ID
	}
	rows = scanned[:0]
	for _, r := range scanned {
		if x.matches(r) {
			rows = append(rows, r)
		}
	}
	if len(rows) == 0 {
		return rows, next, nil
	}
	// The URLs in a second, small query: a page names few endpoints.
	seen := map[string]bool{}
	var eps []string
	for _, r := range rows {
		if !seen[r.EndpointID] {
			seen[r.EndpointID] = true
			eps = append(eps, r.EndpointID)
		}
	}
	var urls []struct {
		ID  string
		URL string `gorm:"column:url"`
	}
	if err := s.db.WithContext(ctx).Table("endpoints").Select("id, url").
		Where("project_id = ? AND id IN ?", x.ProjectID, eps).Scan(&urls).Error; err != nil {
		return nil, "", translate(err, "read export endpoints")
	}
	byID := make(map[string]string, len(urls))
	for _, u := range urls {
		byID[u.ID] = u.URL
	}
	for i := range rows {
		rows[i].EndpointURL = byID[rows[i].EndpointID]
	}
	return rows, next, nil
}

// PurgeExpiredExports deletes up to limit export rows (deleted or not)
// that expired more than ExportRetention before now, oldest first, and
// returns how many it deleted. Call it repeatedly until it returns less
// than limit; each call is one short statement. limit must be positive.
func (s *Store) PurgeExpiredExports(ctx context.Context, now time.Time, limit int) (int64, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("purge exports: limit must be positive, got %d", limit)
	}
	cutoff := now.Add(-ExportRetention).UTC()
	batch := s.db.Model(&Export{}).Select("id").Where("expires_at < ?", cutoff).Order("expires_at").Limit(limit)
	res := s.db.WithContext(ctx).Where("id IN (?)", batch).Delete(&Export{})
	return res.RowsAffected, translate(res.Error, "purge exports")
}
