package handlers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"sync"

	"github.com/google/uuid"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.opentelemetry.io/otel/attribute"

	"github.com/hookd/hookd/eventtypes"
	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/store"
)

// EventTypeHeader names, on every delivery of a message made by an event,
// the event's type.
const EventTypeHeader = "X-Webhook-Event-Type"

// CreateEventType stores a new event type of the caller's project.
func (s *Server) CreateEventType(ctx context.Context, req gen.CreateEventTypeRequestObject) (gen.CreateEventTypeResponseObject, error) {
	b := req.Body
	if err := checkText("description", b.Description, true); err != nil {
		return nil, err
	}
	schema, err := schemaText(b.Schema)
	if err != nil {
		return nil, err
	}
	now := store.Now()
	et := store.EventType{ProjectID: projectID(ctx), Name: b.Name, Description: deref(b.Description, ""), Schema: schema,
		Archived: deref(b.Archived, false), CreatedAt: now, UpdatedAt: now}
	if err := s.Store.CreateEventType(ctx, et); err != nil {
		return nil, err
	}
	return gen.CreateEventType201JSONResponse{Data: toEventType(et), Meta: meta(ctx)}, nil
}

// schemaText checks a JSON Schema and returns the text to store: nil for
// none or for {} (which any payload matches).
func schemaText(raw *json.RawMessage) (*string, error) {
	if raw == nil {
		return nil, nil
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, *raw); err != nil {
		return nil, invalid("/schema", "json-schema", err.Error())
	}
	if compact.String() == "{}" {
		return nil, nil
	}
	if _, err := eventtypes.Compile(compact.Bytes()); err != nil {
		return nil, invalid("/schema", "json-schema", err.Error())
	}
	text := compact.String()
	return &text, nil
}

func toEventType(et store.EventType) gen.EventType {
	out := gen.EventType{Name: et.Name, Description: et.Description, Archived: et.Archived,
		CreatedAt: et.CreatedAt.UTC(), UpdatedAt: et.UpdatedAt.UTC()}
	if et.Schema != nil {
		raw := json.RawMessage(*et.Schema)
		out.Schema = &raw
	}
	return out
}

// ListEventTypes pages through the project's event types by name.
func (s *Server) ListEventTypes(ctx context.Context, req gen.ListEventTypesRequestObject) (gen.ListEventTypesResponseObject, error) {
	after, err := decodeCursor(req.Params.Cursor, eventtypes.ValidName)
	if err != nil {
		return nil, err
	}
	limit := deref(req.Params.Limit, 50)
	ets, err := s.Store.ListEventTypes(ctx, projectID(ctx), after, limit+1)
	if err != nil {
		return nil, err
	}
	hasMore := len(ets) > limit
	if hasMore {
		ets = ets[:limit]
	}
	data := make([]gen.EventType, len(ets))
	for i, et := range ets {
		data[i] = toEventType(et)
	}
	var next *string
	if hasMore {
		c := encodeCursor(ets[len(ets)-1].Name)
		next = &c
	}
	return gen.ListEventTypes200JSONResponse{Data: data, Meta: gen.PageMeta{RequestId: RequestID(ctx), NextCursor: next, HasMore: hasMore}}, nil
}

// GetEventType returns one event type.
func (s *Server) GetEventType(ctx context.Context, req gen.GetEventTypeRequestObject) (gen.GetEventTypeResponseObject, error) {
	et, err := s.Store.GetEventType(ctx, projectID(ctx), req.Name)
	if err != nil {
		return nil, err
	}
	return gen.GetEventType200JSONResponse{Data: toEventType(et), Meta: meta(ctx)}, nil
}

// UpdateEventType changes the fields given.
func (s *Server) UpdateEventType(ctx context.Context, req gen.UpdateEventTypeRequestObject) (gen.UpdateEventTypeResponseObject, error) {
	b := req.Body
	if err := checkText("description", b.Description, true); err != nil {
		return nil, err
	}
	u := store.EventTypeUpdate{Description: b.Description, Archived: b.Archived}
	if b.Schema != nil {
		schema, err := schemaText(b.Schema)
		if err != nil {
			return nil, err
		}
		u.Schema = &schema
	}
	et, err := s.Store.UpdateEventType(ctx, projectID(ctx), req.Name, u)
	if err != nil {
		return nil, err
	}
	return gen.UpdateEventType200JSONResponse{Data: toEventType(et), Meta: meta(ctx)}, nil
}

// DeleteEventType removes an event type.
func (s *Server) DeleteEventType(ctx context.Context, req gen.DeleteEventTypeRequestObject) (gen.DeleteEventTypeResponseObject, error) {
	if err := s.Store.DeleteEventType(ctx, projectID(ctx), req.Name); err != nil {
		return nil, err
	}
	var out gen.DeleteEventType200JSONResponse
	out.Data.Name, out.Data.Deleted, out.Meta = req.Name, true, meta(ctx)
	return out, nil
}

// PublishEvent stores an event and one message per subscribed endpoint in
// one transaction.
func (s *Server) PublishEvent(ctx context.Context, req gen.PublishEventRequestObject) (gen.PublishEventResponseObject, error) {
	b := req.Body
	// The messages are sends in every other way: same checks, and the
	// event type as one more header (which sends may not set themselves).
	m, err := newMessage(ctx, gen.SendRequest{EndpointId: "-", Payload: b.Payload, Headers: b.Headers, RetentionHours: b.RetentionHours,
		OrderingKey: b.OrderingKey})
	if err != nil {
		return nil, err
	}
	if err := s.checkPublishable(ctx, b.EventType, b.Payload); err != nil {
		return nil, err
	}
	m.Headers[EventTypeHeader] = b.EventType
	evID := ids.NewUUID()
	m.EventType, m.EventID = &b.EventType, &evID
	// One fingerprint of what makes the event: type, owner and payload.
	h := sha256.New()
	for _, part := range []string{b.EventType, deref(b.OwnerId, "")} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	h.Write(b.Payload)
	ev := store.Event{ID: evID, ProjectID: projectID(ctx), EventType: b.EventType, OwnerID: b.OwnerId, IdempotencyKey: b.IdempotencyKey,
		PayloadSHA256: hex.EncodeToString(h.Sum(nil)), CreatedAt: m.CreatedAt}
	cctx, span := s.startCommit(ctx, attribute.String("hookd.event_id", evID), attribute.String("hookd.event_type", b.EventType))
	stored, msgs, created, err := s.Store.PublishEvent(cctx, ev, m, ids.NewUUID, func(e store.Endpoint) bool {
		return eventtypes.Matches(e.EventTypes, b.EventType)
	})
	if err == nil {
		span.SetAttributes(attribute.Int("hookd.message_count", len(msgs)))
	}
	endSpan(span, err)
	if err != nil {
		return nil, err
	}
	data := gen.EventPublished{EventId: uuid.MustParse(stored.ID), EventType: stored.EventType, OwnerId: stored.OwnerID,
		EndpointCount: stored.EndpointCount, MessageIds: make([]uuid.UUID, len(msgs)), CreatedAt: stored.CreatedAt.UTC()}
	for i, m := range msgs {
		data.MessageIds[i] = uuid.MustParse(m.ID)
	}
	if !created {
		return gen.PublishEvent200JSONResponse{Data: data, Meta: meta(ctx)}, nil
	}
	for range msgs {
		s.Metrics.MessageAccepted()
	}
	return gen.PublishEvent202JSONResponse{Data: data, Meta: meta(ctx)}, nil
}

// checkPublishable applies the event type's rules: not archived, known
// unless the project allows unknown types, and its schema accepts payload.
func (s *Server) checkPublishable(ctx context.Context, name string, payload []byte) error {
	et, err := s.Store.GetEventType(ctx, projectID(ctx), name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		p, err := s.Store.GetProject(ctx, projectID(ctx))
		if err != nil {
			return err
		}
		if !p.AllowUnknownEventTypes {
			return &Error{Status: http.StatusBadRequest, Code: "UNKNOWN_EVENT_TYPE",
				Message: "the project has no event type " + name + " and does not allow publishing unknown types; create it first",
				Details: map[string]any{"field": "/event_type"}}
		}
		return nil
	case err != nil:
		return err
	case et.Archived:
		return &Error{Status: http.StatusBadRequest, Code: "EVENT_TYPE_ARCHIVED",
			Message: "event type " + name + " is archived; un-archive it to publish it", Details: map[string]any{"field": "/event_type"}}
	case et.Schema == nil:
		return nil
	}
	sch, err := s.schemas.get(et)
	if err != nil {
		return err
	}
	var pe *eventtypes.PayloadError
	if err := eventtypes.Validate(sch, payload); errors.As(err, &pe) {
		return &Error{Status: http.StatusBadRequest, Code: "INVALID_PAYLOAD", Message: pe.Error(),
			Details: map[string]any{"field": "/payload" + pe.Location, "rule": "schema"}}
	} else if err != nil {
		return err
	}
	return nil
}

// schemaCache keeps compiled event type schemas while their text stays
// the same.
type schemaCache struct {
	mu sync.Mutex
	m  map[string]cachedSchema // project id + "/" + name
}

type cachedSchema struct {
	text string
	sch  *jsonschema.Schema
}

const maxCachedSchemas = 10_000

func (c *schemaCache) get(et store.EventType) (*jsonschema.Schema, error) {
	key := et.ProjectID + "/" + et.Name
	c.mu.Lock()
	hit, ok := c.m[key]
	c.mu.Unlock()
	if ok && hit.text == *et.Schema {
		return hit.sch, nil
	}
	sch, err := eventtypes.Compile([]byte(*et.Schema))
	if err != nil {
		return nil, err // stored schemas were compiled before: not expected
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedSchemas {
		c.m = map[string]cachedSchema{} // bounded memory; compiling again is cheap
	}
	c.m[key] = cachedSchema{text: *et.Schema, sch: sch}
	return sch, nil
}

// GetEvent returns an event with its messages.
func (s *Server) GetEvent(ctx context.Context, req gen.GetEventRequestObject) (gen.GetEventResponseObject, error) {
	ev, msgs, err := s.Store.GetEvent(ctx, projectID(ctx), req.Id.String())
	if err != nil {
		return nil, err
	}
	data := gen.Event{Id: uuid.MustParse(ev.ID), EventType: ev.EventType, OwnerId: ev.OwnerID, EndpointCount: ev.EndpointCount,
		CreatedAt: ev.CreatedAt.UTC(), Messages: make([]gen.EventMessage, len(msgs))}
	for i, m := range msgs {
		data.Messages[i] = gen.EventMessage{MessageId: uuid.MustParse(m.ID), EndpointId: m.EndpointID, Status: gen.MessageStatus(m.Status)}
	}
	return gen.GetEvent200JSONResponse{Data: data, Meta: meta(ctx)}, nil
}
