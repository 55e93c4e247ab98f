package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/handlers"
	"github.com/hookd/hookd/internal/poll"
	"github.com/hookd/hookd/internal/testdb"
	"github.com/hookd/hookd/tracing"
)

// spansNamed returns the ended spans of rec with the name.
func spansNamed(rec *tracetest.SpanRecorder, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func attr(s sdktrace.ReadOnlySpan, key string) attribute.Value {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// TestTracing: with a tracer provider, a send continues the caller's trace
// (its traceparent header), the commit is a span of the request, and every
// attempt, the first and a retry claimed later, is a child span of the
// request's span carrying the message and endpoint ids and the outcome;
// the receiver gets each attempt's traceparent. A publish's attempts join
// the publish request's trace the same way.
func TestTracing(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			rec := tracetest.NewSpanRecorder()
			tp := tracing.NewProvider(sdktrace.WithSpanProcessor(rec))
			cfg := testEngineConfig()
			cfg.TracerProvider, cfg.TraceHeader = tp, true
			e := setupWith(t, d, options{receivers: true, engine: cfg, server: func(s *handlers.Server) { s.TracerProvider = tp }})
			rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
				if n == 0 {
					w.WriteHeader(http.StatusInternalServerError) // the first attempt fails: a retry follows
				}
			})
			ep := e.createEndpoint(e.a, rc.url("/traced"))

			callerTrace, callerSpan := "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
			r, err := e.a.client.SendWebhookWithResponse(context.Background(), gen.SendRequest{EndpointId: ep.Id, Payload: []byte(`{"n":1}`)},
				func(_ context.Context, req *http.Request) error {
					req.Header.Set("traceparent", "00-"+callerTrace+"-"+callerSpan+"-01")
					return nil
				})
			require.NoError(t, err)
			require.Equal(t, http.StatusAccepted, r.StatusCode(), string(r.Body))
			id := r.JSON202.Data.MessageId
			e.waitStatus(id, gen.MessageStatusSucceeded, patience)
			poll.Until(t, patience, func() bool { return len(spansNamed(rec, "hookd.attempt")) == 2 }, "two attempt spans")

			servers := spansNamed(rec, "POST /v1/webhooks/send")
			require.Len(t, servers, 1)
			server := servers[0]
			require.Equal(t, callerTrace, server.SpanContext().TraceID().String(), "the caller's trace goes on")
			require.Equal(t, callerSpan, server.Parent().SpanID().String())
			require.Equal(t, trace.SpanKindServer, server.SpanKind())
			require.Equal(t, int64(http.StatusAccepted), attr(server, "http.response.status_code").AsInt64())

			commits := spansNamed(rec, "hookd.commit")
			require.Len(t, commits, 1)
			require.Equal(t, server.SpanContext().SpanID(), commits[0].Parent().SpanID())
			require.Equal(t, id.String(), attr(commits[0], "hookd.message_id").AsString())

			attempts := spansNamed(rec, "hookd.attempt")
			got := rc.requests()
			require.Len(t, got, 2)
			for i, a := range attempts {
				require.Equal(t, callerTrace, a.SpanContext().TraceID().String())
				require.Equal(t, server.SpanContext().SpanID(), a.Parent().SpanID(), "an attempt is a child of the send request")
				require.Equal(t, trace.SpanKindClient, a.SpanKind())
				require.Equal(t, id.String(), attr(a, "hookd.message_id").AsString())
				require.Equal(t, ep.Id, attr(a, "hookd.endpoint_id").AsString())
				require.Equal(t, int64(i+1), attr(a, "hookd.attempt").AsInt64())
				require.Equal(t, fmt.Sprintf("00-%s-%s-01", callerTrace, a.SpanContext().SpanID()), got[i].header.Get("Traceparent"),
					"the receiver gets the attempt's traceparent")
			}
			require.Equal(t, int64(http.StatusInternalServerError), attr(attempts[0], "http.response.status_code").AsInt64())
			require.Equal(t, codes.Error, attempts[0].Status().Code)
			require.Equal(t, int64(http.StatusOK), attr(attempts[1], "http.response.status_code").AsInt64())
			require.Equal(t, codes.Unset, attempts[1].Status().Code)

			// A replay, much later and claimed from the queue, stays in the
			// send's trace.
			rp, err := e.a.client.ReplayMessageWithResponse(context.Background(), id)
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, rp.StatusCode(), string(rp.Body))
			poll.Until(t, patience, func() bool { return len(spansNamed(rec, "hookd.attempt")) == 3 }, "the replay's attempt span")
			replayed := spansNamed(rec, "hookd.attempt")[2]
			require.Equal(t, callerTrace, replayed.SpanContext().TraceID().String())
			require.Equal(t, server.SpanContext().SpanID(), replayed.Parent().SpanID())
			require.Equal(t, int64(3), attr(replayed, "hookd.attempt").AsInt64())

			// A publish without a traceparent starts a trace; its two
			// messages' attempts are children of its request span.
			rc2 := newReceiver(t, nil)
			e.createEndpoint(e.a, rc2.url("/one"))
			e.createEndpoint(e.a, rc2.url("/two"))
			status, ev, _ := e.publish(e.a.key, `{"event_type":"order.created","payload":{"n":2}}`)
			require.Equal(t, http.StatusAccepted, status)
			require.Equal(t, 3, ev.EndpointCount) // the traced endpoint too
			poll.Until(t, patience, func() bool { return len(spansNamed(rec, "hookd.attempt")) == 6 }, "the publish's three attempt spans")
			publishes := spansNamed(rec, "POST /v1/events")
			require.Len(t, publishes, 1)
			require.False(t, publishes[0].Parent().IsValid(), "a new trace")
			var mine int
			for _, a := range spansNamed(rec, "hookd.attempt") {
				if a.Parent().SpanID() == publishes[0].SpanContext().SpanID() {
					mine++
					require.Equal(t, publishes[0].SpanContext().TraceID(), a.SpanContext().TraceID())
					require.Equal(t, "order.created", attr(a, "hookd.event_type").AsString())
				}
			}
			require.Equal(t, 3, mine)
			require.Len(t, ev.MessageIds, 3)
		})
	}
}

// TestNoTracingByDefault: without a tracer provider nothing is traced: no
// traceparent reaches the receiver (not even the caller's) and messages
// keep no trace context.
func TestNoTracingByDefault(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, options{receivers: true, engine: testEngineConfig()}, func(t *testing.T, e *env) {
		rc := newReceiver(t, nil)
		ep := e.createEndpoint(e.a, rc.url("/plain"))
		r, err := e.a.client.SendWebhookWithResponse(context.Background(), gen.SendRequest{EndpointId: ep.Id, Payload: []byte(`{}`)},
			func(_ context.Context, req *http.Request) error {
				req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
				return nil
			})
		require.NoError(t, err)
		require.Equal(t, http.StatusAccepted, r.StatusCode())
		got := rc.waitFor(t, 1, patience)
		require.Empty(t, got[0].header.Get("Traceparent"))
		var stored *string
		require.NoError(t, e.store.DB().QueryRow(`SELECT trace_parent FROM messages WHERE id = `+placeholder(e.dialect), r.JSON202.Data.MessageId.String()).Scan(&stored))
		require.Nil(t, stored)
	})
}

func placeholder(dialect string) string {
	if strings.HasPrefix(dialect, "postgres") {
		return "$1"
	}
	return "?"
}
