package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/handlers"
	"github.com/hookd/hookd/store"
)

// publish posts a raw event and returns the answer's status, data and error.
func (e *env) publish(key, body string) (int, gen.EventPublished, gen.ErrorEnvelope) {
	e.t.Helper()
	status, env, raw := e.do(http.MethodPost, "/v1/events", key, "application/json", []byte(body))
	var ok gen.EventPublishedEnvelope
	if status < 300 {
		require.NoError(e.t, json.Unmarshal(raw, &ok), string(raw))
	}
	return status, ok.Data, env
}

func field(env gen.ErrorEnvelope) any {
	if env.Error.Details == nil {
		return nil
	}
	return (*env.Error.Details)["field"]
}

// TestEventTypes: create (with a schema), list by name with a cursor, get,
// patch (description, archived, schema replaced and removed with {}),
// delete; bad names and schemas are 400s naming the field; another
// project's types are 404.
func TestEventTypes(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		c := e.a.client
		schema := json.RawMessage(`{"type":"object","required":["order_id"]}`)
		r, err := c.CreateEventTypeWithResponse(ctx, gen.CreateEventTypeRequest{Name: "order.created", Description: ptr("An order was placed."), Schema: &schema})
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, r.StatusCode(), string(r.Body))
		require.JSONEq(t, string(schema), string(*r.JSON201.Data.Schema))
		require.False(t, r.JSON201.Data.Archived)
		for _, name := range []string{"order.paid", "invoice.paid"} {
			r, err = c.CreateEventTypeWithResponse(ctx, gen.CreateEventTypeRequest{Name: name})
			require.NoError(t, err)
			require.Equal(t, http.StatusCreated, r.StatusCode(), string(r.Body))
			require.Nil(t, r.JSON201.Data.Schema)
		}
		dup, err := c.CreateEventTypeWithResponse(ctx, gen.CreateEventTypeRequest{Name: "order.paid"})
		require.NoError(t, err)
		require.Equal(t, http.StatusConflict, dup.StatusCode())
		require.Contains(t, string(dup.Body), "DUPLICATE_EVENT_TYPE")

		// Name order, two per page.
		var names []string
		var cursor *string
		for {
			l, err := c.ListEventTypesWithResponse(ctx, &gen.ListEventTypesParams{Limit: ptr(2), Cursor: cursor})
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, l.StatusCode(), string(l.Body))
			for _, et := range l.JSON200.Data {
				names = append(names, et.Name)
			}
			if !l.JSON200.Meta.HasMore {
				break
			}
			cursor = l.JSON200.Meta.NextCursor
		}
		require.Equal(t, []string{"invoice.paid", "order.created", "order.paid"}, names)

		p, err := c.UpdateEventTypeWithResponse(ctx, "order.created", gen.UpdateEventTypeRequest{Archived: ptr(true), Description: ptr("renamed")})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, p.StatusCode(), string(p.Body))
		require.True(t, p.JSON200.Data.Archived)
		require.Equal(t, "renamed", p.JSON200.Data.Description)
		require.NotNil(t, p.JSON200.Data.Schema, "a PATCH without schema keeps it")
		empty := json.RawMessage(`{ }`)
		p, err = c.UpdateEventTypeWithResponse(ctx, "order.created", gen.UpdateEventTypeRequest{Schema: &empty})
		require.NoError(t, err)
		require.Nil(t, p.JSON200.Data.Schema, "{} removes the schema")
		require.True(t, p.JSON200.Data.Archived)

		for _, bad := range []struct{ method, path, body, field string }{
			{http.MethodPost, "/v1/event-types", `{"name":"order created"}`, "/name"},
			{http.MethodPost, "/v1/event-types", `{"name":"x","schema":{"type":"nonsense"}}`, "/schema"},
			{http.MethodPost, "/v1/event-types", `{"name":"x","schema":{"$ref":"https://example.com/s.json"}}`, "/schema"},
			{http.MethodPatch, "/v1/event-types/order.paid", `{"schema":{"minimum":"ten"}}`, "/schema"},
			{http.MethodPatch, "/v1/event-types/order.paid", `{"schema":"x"}`, "/schema"},
		} {
			status, env, raw := e.do(bad.method, bad.path, e.a.key, "application/json", []byte(bad.body))
			require.Equal(t, http.StatusBadRequest, status, "%s: %s", bad.body, raw)
			require.Equal(t, bad.field, field(env), "%s: %s", bad.body, raw)
		}

		// Another project sees none of them.
		g, err := e.b.client.GetEventTypeWithResponse(ctx, "order.paid")
		require.NoError(t, err)
		require.Equal(t, http.StatusNotFound, g.StatusCode())
		d, err := e.b.client.DeleteEventTypeWithResponse(ctx, "order.paid")
		require.NoError(t, err)
		require.Equal(t, http.StatusNotFound, d.StatusCode())

		d, err = c.DeleteEventTypeWithResponse(ctx, "order.paid")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, d.StatusCode(), string(d.Body))
		g, err = c.GetEventTypeWithResponse(ctx, "order.paid")
		require.NoError(t, err)
		require.Equal(t, http.StatusNotFound, g.StatusCode())
	})
}

// TestPublishFanOut: an event becomes one message per live endpoint
// subscribed to its type (of its owner when given), paused endpoints
// getting a paused one; the deliveries carry the exact payload and the
// event type; the event, the logs and the messages name each other;
// endpoints filter by owner and type; the type's rules apply.
func TestPublishFanOut(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, options{receivers: true, engine: testEngineConfig()}, func(t *testing.T, e *env) {
		ctx := context.Background()
		c := e.a.client
		rc := newReceiver(t, nil)
		mk := func(path string, patterns []string, owner *string) string {
			t.Helper()
			var p *gen.EventTypePatterns
			if patterns != nil {
				pp := patterns
				p = &pp
			}
			r, err := c.CreateEndpointWithResponse(ctx, gen.CreateEndpointRequest{Url: rc.url(path), EventTypes: p, OwnerId: owner})
			require.NoError(t, err)
			require.Equal(t, http.StatusCreated, r.StatusCode(), string(r.Body))
			return r.JSON201.Data.Id
		}
		orders := mk("/orders", []string{"order.*"}, ptr("c1"))
		all := mk("/all", nil, ptr("c2"))
		invoices := mk("/invoices", []string{"invoice.paid"}, nil)
		paused := mk("/paused", []string{"order.created"}, nil)
		pr, err := c.PauseEndpointWithResponse(ctx, paused)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, pr.StatusCode())
		e.createEndpoint(e.b, rc.url("/other-project")) // subscribed to everything, in project b

		g, err := c.GetEndpointWithResponse(ctx, orders)
		require.NoError(t, err)
		require.Equal(t, []string{"order.*"}, g.JSON200.Data.EventTypes)
		require.Equal(t, "c1", *g.JSON200.Data.OwnerId)

		payload := `{"order_id": 1001, "total":"12.50"}`
		status, ev, env := e.publish(e.a.key, `{"event_type":"order.created","payload":`+payload+`}`)
		require.Equal(t, http.StatusAccepted, status, env.Error.Message)
		require.Equal(t, 3, ev.EndpointCount)
		require.Len(t, ev.MessageIds, 3)
		got := rc.waitFor(t, 2, patience)
		for _, d := range got {
			require.Equal(t, payload, string(d.body))
			require.Equal(t, "order.created", d.header.Get(handlers.EventTypeHeader))
		}
		paths := map[string]bool{}
		for _, id := range ev.MessageIds {
			m, err := c.GetMessageWithResponse(ctx, id)
			require.NoError(t, err)
			require.Equal(t, "order.created", *m.JSON200.Data.EventType)
			require.Equal(t, ev.EventId, *m.JSON200.Data.EventId)
			paths[m.JSON200.Data.EndpointId] = true
			if m.JSON200.Data.EndpointId == paused {
				require.Equal(t, gen.MessageStatus("paused"), m.JSON200.Data.Status)
			} else {
				e.waitStatus(id, "succeeded", patience)
			}
		}
		require.Equal(t, map[string]bool{orders: true, all: true, paused: true}, paths)

		ge, err := c.GetEventWithResponse(ctx, ev.EventId)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, ge.StatusCode(), string(ge.Body))
		require.Len(t, ge.JSON200.Data.Messages, 3)
		require.Equal(t, "order.created", ge.JSON200.Data.EventType)
		other, err := e.b.client.GetEventWithResponse(ctx, ev.EventId)
		require.NoError(t, err)
		require.Equal(t, http.StatusNotFound, other.StatusCode(), "another project's event")

		logs, err := c.GetLogsWithResponse(ctx, &gen.GetLogsParams{EventId: &ev.EventId})
		require.NoError(t, err)
		require.Len(t, logs.JSON200.Data, 3)
		require.Equal(t, "order.created", *logs.JSON200.Data[0].EventType)

		// Only the owner's endpoints; none at all is a valid answer.
		status, ev2, _ := e.publish(e.a.key, `{"event_type":"order.paid","owner_id":"c1","payload":{"order_id":1001}}`)
		require.Equal(t, http.StatusAccepted, status)
		require.Equal(t, 1, ev2.EndpointCount)
		status, ev3, _ := e.publish(e.a.key, `{"event_type":"invoice.paid","owner_id":"c9","payload":{}}`)
		require.Equal(t, http.StatusAccepted, status)
		require.Zero(t, ev3.EndpointCount)
		require.Empty(t, ev3.MessageIds)
		status, ev4, _ := e.publish(e.a.key, `{"event_type":"invoice.paid","payload":{}}`)
		require.Equal(t, http.StatusAccepted, status)
		require.Equal(t, 2, ev4.EndpointCount, "the invoices endpoint and the one subscribed to everything")
		logs, err = c.GetLogsWithResponse(ctx, &gen.GetLogsParams{EventType: ptr("invoice.paid")})
		require.NoError(t, err)
		require.Len(t, logs.JSON200.Data, 2)

		// Endpoint filters.
		l, err := c.ListEndpointsWithResponse(ctx, &gen.ListEndpointsParams{OwnerId: ptr("c1")})
		require.NoError(t, err)
		require.Len(t, l.JSON200.Data, 1)
		require.Equal(t, orders, l.JSON200.Data[0].Id)
		var ids []string
		var cursor *string
		for {
			l, err = c.ListEndpointsWithResponse(ctx, &gen.ListEndpointsParams{EventType: ptr("invoice.paid"), Limit: ptr(1), Cursor: cursor})
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, l.StatusCode(), string(l.Body))
			for _, ep := range l.JSON200.Data {
				ids = append(ids, ep.Id)
			}
			if !l.JSON200.Meta.HasMore {
				break
			}
			cursor = l.JSON200.Meta.NextCursor
		}
		require.ElementsMatch(t, []string{all, invoices}, ids)

		// Subscriptions change with PATCH.
		u, err := c.UpdateEndpointWithResponse(ctx, invoices, gen.UpdateEndpointRequest{EventTypes: &gen.EventTypePatterns{"order.created"}, OwnerId: ptr("c3")})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, u.StatusCode(), string(u.Body))
		require.Equal(t, []string{"order.created"}, u.JSON200.Data.EventTypes)
		require.Equal(t, "c3", *u.JSON200.Data.OwnerId)
		u, err = c.UpdateEndpointWithResponse(ctx, invoices, gen.UpdateEndpointRequest{OwnerId: ptr("")})
		require.NoError(t, err)
		require.Nil(t, u.JSON200.Data.OwnerId, `"" removes the owner`)

		// The type's rules.
		schema := json.RawMessage(`{"type":"object","properties":{"id":{"type":"integer"}},"required":["id"]}`)
		_, err = c.CreateEventTypeWithResponse(ctx, gen.CreateEventTypeRequest{Name: "user.created", Schema: &schema})
		require.NoError(t, err)
		status, _, env = e.publish(e.a.key, `{"event_type":"user.created","payload":{"id":"seven"}}`)
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, "INVALID_PAYLOAD", env.Error.Code)
		require.Equal(t, "/payload/id", field(env))
		status, _, _ = e.publish(e.a.key, `{"event_type":"user.created","payload":{"id":7}}`)
		require.Equal(t, http.StatusAccepted, status)
		_, err = c.UpdateEventTypeWithResponse(ctx, "user.created", gen.UpdateEventTypeRequest{Archived: ptr(true)})
		require.NoError(t, err)
		status, _, env = e.publish(e.a.key, `{"event_type":"user.created","payload":{"id":7}}`)
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, "EVENT_TYPE_ARCHIVED", env.Error.Code)
		_, err = e.store.UpdateProjectSettings(ctx, e.a.project.Name, store.ProjectSettings{AllowUnknownEventTypes: ptr(false)})
		require.NoError(t, err)
		status, _, env = e.publish(e.a.key, `{"event_type":"never.created","payload":{}}`)
		require.Equal(t, http.StatusBadRequest, status)
		require.Equal(t, "UNKNOWN_EVENT_TYPE", env.Error.Code)
		require.Equal(t, "/event_type", field(env))

		// Bad input.
		for _, bad := range []struct{ method, path, body, field string }{
			{http.MethodPost, "/v1/events", `{"event_type":"order created","payload":{}}`, "/event_type"},
			{http.MethodPost, "/v1/events", `{"event_type":"order.created","payload":{},"headers":{"X-Webhook-Event-Type":"forged"}}`, "/headers"},
			{http.MethodPost, "/v1/endpoints", `{"url":"` + rc.url("/bad") + `","event_types":["order*"]}`, "/event_types/0"},
			{http.MethodPatch, "/v1/endpoints/" + orders, `{"event_types":["ok.*","*.created"]}`, "/event_types/1"},
		} {
			status, env, raw := e.do(bad.method, bad.path, e.a.key, "application/json", []byte(bad.body))
			require.Equal(t, http.StatusBadRequest, status, "%s: %s", bad.body, raw)
			require.Equal(t, bad.field, field(env), "%s: %s", bad.body, raw)
		}
	})
}

// TestPublishIdempotency: a repeat with the key answers 200 with the
// original event and messages; another payload, type or owner is 409; 20
// concurrent repeats make one event.
func TestPublishIdempotency(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, e *env) {
		for i := range 3 {
			e.createEndpoint(e.a, fmt.Sprintf("https://93.184.216.34/idem/%d", i))
		}
		body := `{"event_type":"order.created","payload":{"n":1},"idempotency_key":"evt-1"}`
		status, first, env := e.publish(e.a.key, body)
		require.Equal(t, http.StatusAccepted, status, env.Error.Message)
		require.Len(t, first.MessageIds, 3)
		status, again, _ := e.publish(e.a.key, body)
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, first.EventId, again.EventId)
		require.ElementsMatch(t, first.MessageIds, again.MessageIds)
		for _, other := range []string{
			`{"event_type":"order.created","payload":{"n":2},"idempotency_key":"evt-1"}`,
			`{"event_type":"order.paid","payload":{"n":1},"idempotency_key":"evt-1"}`,
			`{"event_type":"order.created","owner_id":"c1","payload":{"n":1},"idempotency_key":"evt-1"}`,
		} {
			status, _, env = e.publish(e.a.key, other)
			require.Equal(t, http.StatusConflict, status, other)
			require.Equal(t, "IDEMPOTENCY_MISMATCH", env.Error.Code)
		}
		// The key is the project's: project b may use it too.
		e.createEndpoint(e.b, "https://93.184.216.34/idem/b")
		status, _, _ = e.publish(e.b.key, body)
		require.Equal(t, http.StatusAccepted, status)

		const n = 20
		race := `{"event_type":"order.created","payload":{"race":true},"idempotency_key":"evt-race"}`
		events := make(chan uuid.UUID, n)
		created := make(chan int, n)
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, ev, env := e.publish(e.a.key, race)
				if !assert.Contains(t, []int{http.StatusAccepted, http.StatusOK}, status, env.Error.Message) {
					return
				}
				assert.Len(t, ev.MessageIds, 3)
				events <- ev.EventId
				created <- status
			}()
		}
		wg.Wait()
		close(events)
		close(created)
		ids := map[uuid.UUID]bool{}
		for id := range events {
			ids[id] = true
		}
		require.Len(t, ids, 1)
		accepted := 0
		for s := range created {
			if s == http.StatusAccepted {
				accepted++
			}
		}
		require.Equal(t, 1, accepted)
		var msgs int
		require.NoError(t, e.store.DB().QueryRow(fmt.Sprintf("SELECT count(*) FROM messages WHERE event_id IN (SELECT id FROM events WHERE idempotency_key = 'evt-race' AND project_id = '%s')", e.a.project.ID)).Scan(&msgs))
		require.Equal(t, 3, msgs)
	})
}

// TestPublishIsAtomic: when storing one of an event's messages fails, the
// event and every other message are rolled back with it.
func TestPublishIsAtomic(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, e *env) {
		e.createEndpoint(e.a, "https://93.184.216.34/atomic/0")
		doomed := e.createEndpoint(e.a, "https://93.184.216.34/atomic/1")
		e.createEndpoint(e.a, "https://93.184.216.34/atomic/2")
		// A trigger that refuses the doomed endpoint's message.
		stmts := []string{`CREATE TRIGGER refuse_doomed BEFORE INSERT ON messages
			WHEN NEW.endpoint_id = '` + doomed.Id + `' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`}
		if e.dialect == "postgres" {
			stmts = []string{
				`CREATE FUNCTION refuse_doomed() RETURNS trigger LANGUAGE plpgsql AS $$
				BEGIN IF NEW.endpoint_id = '` + doomed.Id + `' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$`,
				`CREATE TRIGGER refuse_doomed BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION refuse_doomed()`,
			}
		}
		for _, s := range stmts {
			_, err := e.store.DB().Exec(s)
			require.NoError(t, err)
		}
		before := e.snapshot()
		status, _, env := e.publish(e.a.key, `{"event_type":"order.created","payload":{"n":1},"idempotency_key":"atomic"}`)
		require.Equal(t, http.StatusInternalServerError, status)
		require.Equal(t, "INTERNAL_ERROR", env.Error.Code)
		require.Equal(t, before, e.snapshot(), "nothing of the event is left")
		var events int
		require.NoError(t, e.store.DB().QueryRow("SELECT count(*) FROM events").Scan(&events))
		require.Zero(t, events)
	})
}
