package store

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// EventType is a kind of event a project publishes, optionally with a JSON
// Schema its payloads must match.
type EventType struct {
	ProjectID   string `gorm:"primaryKey"`
	Name        string `gorm:"primaryKey"`
	Description string
	Schema      *string // JSON Schema text; nil: any payload
	Archived    bool
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Event is one published event; its messages (one per matching endpoint)
// name it in event_id.
type Event struct {
	ID             string `gorm:"primaryKey"`
	ProjectID      string
	EventType      string
	OwnerID        *string
	IdempotencyKey *string
	PayloadSHA256  string `gorm:"column:payload_sha256"`
	EndpointCount  int
	CreatedAt      time.Time
}

// More sentinels of the event operations.
var (
	// ErrDuplicateEventType: the project has an event type of that name.
	ErrDuplicateEventType = errors.New("event type exists")
	// ErrEventIdempotencyMismatch: the idempotency key was used for
	// another event (type, owner or payload).
	ErrEventIdempotencyMismatch = errors.New("idempotency key reused for a different event")
)

// CreateEventType stores et; ErrDuplicateEventType if its name is taken.
func (s *Store) CreateEventType(ctx context.Context, et EventType) error {
	res := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&et)
	if res.Error != nil {
		return translate(res.Error, "create event type")
	}
	if res.RowsAffected == 0 {
		return ErrDuplicateEventType
	}
	return nil
}

// GetEventType returns the project's event type, or ErrNotFound.
func (s *Store) GetEventType(ctx context.Context, projectID, name string) (EventType, error) {
	var et EventType
	err := s.db.WithContext(ctx).Where("project_id = ? AND name = ?", projectID, name).Take(&et).Error
	return et, translate(err, "get event type")
}

// ListEventTypes returns up to limit of the project's event types in name
// order, after the name after ("" for the first page).
func (s *Store) ListEventTypes(ctx context.Context, projectID, after string, limit int) ([]EventType, error) {
	var out []EventType
	q := s.db.WithContext(ctx).Where("project_id = ?", projectID)
	if after != "" {
		q = q.Where("name > ?", after)
	}
	err := q.Order("name").Limit(limit).Find(&out).Error
	return out, translate(err, "list event types")
}

// EventTypeUpdate lists what a PATCH may change; nil means unchanged.
type EventTypeUpdate struct {
	Description *string
	Schema      **string // set to a nil *string to remove the schema
	Archived    *bool
}

// UpdateEventType applies u and returns the event type; ErrNotFound.
func (s *Store) UpdateEventType(ctx context.Context, projectID, name string, u EventTypeUpdate) (EventType, error) {
	var et EventType
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("project_id = ? AND name = ?", projectID, name).Take(&et).Error; err != nil {
			return err
		}
		if u.Description != nil {
			et.Description = *u.Description
		}
		if u.Schema != nil {
			et.Schema = *u.Schema
		}
		if u.Archived != nil {
			et.Archived = *u.Archived
		}
		et.UpdatedAt = Now()
		return tx.Select("*").Where("project_id = ? AND name = ?", projectID, name).Save(&et).Error
	})
	return et, translate(err, "update event type")
}

// DeleteEventType removes the project's event type; ErrNotFound. Events
// and messages of that type stay as they are.
func (s *Store) DeleteEventType(ctx context.Context, projectID, name string) error {
	res := s.db.WithContext(ctx).Where("project_id = ? AND name = ?", projectID, name).Delete(&EventType{})
	if res.Error != nil {
		return translate(res.Error, "delete event type")
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// maxFanOutRows is how many messages one INSERT of a fan-out writes.
const maxFanOutRows = 500

// PublishEvent stores ev and one message per live endpoint of its project
// (of ev.OwnerID when set) that match accepts, made from template (its id
// is replaced, its endpoint set, its status paused for a paused endpoint),
// all in one transaction. With an idempotency key already used, it returns
// the original event and its messages with created=false, or
// ErrEventIdempotencyMismatch if the type, owner or payload differ.
func (s *Store) PublishEvent(ctx context.Context, ev Event, template Message, newID func() string, match func(Endpoint) bool) (Event, []Message, bool, error) {
	return s.hot.publish(ctx, ev, template, newID, match)
}

// fanOutMessage is template's message to endpoint e: its own id, the
// endpoint's FIFO key, paused (not due) when e is paused.
func fanOutMessage(template Message, e Endpoint, id string) Message {
	m := template
	m.ID, m.EndpointID = id, e.ID
	m.FIFOKey = fifoKeyOf(e, template.OrderingKey)
	if e.Paused {
		m.Status, m.NextAttemptAt = StatusPaused, nil
	}
	return m
}

// repeats reports whether ev, published with the idempotency key of o,
// is the same event (type, owner and payload); if not, the key is reused
// for another event.
func (ev Event) repeats(o Event) bool {
	return o.EventType == ev.EventType && o.PayloadSHA256 == ev.PayloadSHA256 && deref(o.OwnerID) == deref(ev.OwnerID)
}

// GetEvent returns the project's event with its messages (id, endpoint and
// status, oldest first); ErrNotFound.
func (s *Store) GetEvent(ctx context.Context, projectID, id string) (Event, []Message, error) {
	var ev Event
	if err := s.db.WithContext(ctx).Where("project_id = ? AND id = ?", projectID, id).Take(&ev).Error; err != nil {
		return Event{}, nil, translate(err, "get event")
	}
	var msgs []Message
	err := s.db.WithContext(ctx).Select("id", "endpoint_id", "status").
		Where("project_id = ? AND event_id = ? AND deleted_at IS NULL", projectID, id).Order("id").Find(&msgs).Error
	return ev, msgs, translate(err, "get event messages")
}
