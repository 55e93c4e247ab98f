package store

import (
	"context"
	"errors"
	"sort"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// InsertResult is one message's outcome in InsertMessages: the stored
// message (for an idempotent repeat, the original) and whether it is new,
// or Err (ErrEndpointNotFound, ErrIdempotencyMismatch) and nothing stored.
type InsertResult struct {
	Stored  Message
	Created bool
	Err     error
}

// InsertMessages stores several sends in one transaction, each with its own
// outcome as InsertMessage gives it: a message whose endpoint is not a live
// endpoint of its project gets ErrEndpointNotFound, a reused idempotency
// key the original message (same payload) or ErrIdempotencyMismatch, and
// neither affects the others. Every message stored is committed before it
// returns. The messages are not handed to a worker at send; the claimers
// are woken instead.
func (s *Store) InsertMessages(ctx context.Context, ms []Message) ([]InsertResult, error) {
	out := make([]InsertResult, len(ms))
	wake := false
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		clear(out)
		wake = false
		// The endpoints, read FOR SHARE like a single send's: a concurrent
		// pause, resume or delete finishes first, and this sees its result.
		type key struct{ project, endpoint string }
		paused := map[key]bool{}
		fifo := map[key]Endpoint{}
		byProject := map[string][]string{}
		for _, m := range ms {
			byProject[m.ProjectID] = append(byProject[m.ProjectID], m.EndpointID)
		}
		for project, endpointIDs := range byProject {
			var es []Endpoint
			err := tx.Select("id", "paused", "ordering").Clauses(clause.Locking{Strength: "SHARE"}).
				Where("project_id = ? AND id IN ? AND deleted_at IS NULL", project, endpointIDs).Find(&es).Error
			if err != nil {
				return err
			}
			for _, e := range es {
				paused[key{project, e.ID}] = e.Paused
				fifo[key{project, e.ID}] = e
			}
		}
		var rows []Message
		var at []int // rows[i] is ms[at[i]]
		for i, m := range ms {
			p, live := paused[key{m.ProjectID, m.EndpointID}]
			if !live {
				out[i].Err = ErrEndpointNotFound
				continue
			}
			if p {
				m.Status, m.NextAttemptAt = StatusPaused, nil
			}
			m.FIFOKey = fifoKeyOf(fifo[key{m.ProjectID, m.EndpointID}], m.OrderingKey)
			rows, at = append(rows, m), append(at, i)
		}
		if len(rows) == 0 {
			return nil
		}
		// The order of the send batcher's (endpoint, idempotency key), so
		// that two transactions inserting the same keys lock them in the
		// same order and cannot deadlock.
		order := make([]int, len(rows))
		for j := range order {
			order[j] = j
		}
		sort.SliceStable(order, func(x, y int) bool {
			a, b := rows[order[x]], rows[order[y]]
			if a.EndpointID != b.EndpointID {
				return a.EndpointID < b.EndpointID
			}
			return deref(a.IdempotencyKey) < deref(b.IdempotencyKey)
		})
		sortedRows, sortedAt := make([]Message, len(rows)), make([]int, len(rows))
		for j, k := range order {
			sortedRows[j], sortedAt[j] = rows[k], at[k]
		}
		rows, at = sortedRows, sortedAt
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&rows).Error; err != nil {
			return err
		}
		// Which rows went in: the others hit an idempotency key (the ids
		// are new).
		ids := make([]string, len(rows))
		for i, m := range rows {
			ids[i] = m.ID
		}
		var inserted []string
		if err := tx.Model(&Message{}).Where("id IN ?", ids).Pluck("id", &inserted).Error; err != nil {
			return err
		}
		in := make(map[string]bool, len(inserted))
		for _, id := range inserted {
			in[id] = true
		}
		for j, m := range rows {
			i := at[j]
			if in[m.ID] {
				out[i] = InsertResult{Stored: m, Created: true}
				wake = wake || m.Status == StatusQueued
				continue
			}
			if m.IdempotencyKey == nil {
				return errors.New("insert messages: a row without an idempotency key was not inserted")
			}
			var original Message
			if err := tx.Where("endpoint_id = ? AND idempotency_key = ?", m.EndpointID, *m.IdempotencyKey).Take(&original).Error; err != nil {
				return err
			}
			if original.PayloadSHA256 != m.PayloadSHA256 {
				out[i].Err = ErrIdempotencyMismatch
				continue
			}
			out[i] = InsertResult{Stored: original}
		}
		if wake {
			return s.notifyDue(tx)
		}
		return nil
	})
	if err != nil {
		return nil, translate(err, "insert messages")
	}
	for _, r := range out {
		if r.Created {
			s.countStats(r.Stored.ProjectID, r.Stored.EndpointID, r.Stored.ID, func(d *StatsDelta) { d.Total++ })
		}
	}
	if wake {
		s.poke()
	}
	return out, nil
}
