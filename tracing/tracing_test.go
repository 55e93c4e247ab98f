package tracing_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookd/hookd/tracing"
)

// TestParentRoundTrip: a sampled span's traceparent, stored and read back,
// makes the next span its child in the same trace; an unsampled or absent
// span stores nothing, and a malformed value is ignored.
func TestParentRoundTrip(t *testing.T) {
	tp := tracing.NewProvider()
	tr := tracing.Tracer(tp)
	ctx, span := tr.Start(context.Background(), "send")
	stored := tracing.Parent(ctx)
	span.End()
	require.NotNil(t, stored)
	require.Regexp(t, `^00-`+span.SpanContext().TraceID().String()+`-`+span.SpanContext().SpanID().String()+`-01$`, *stored)

	_, attempt := tr.Start(tracing.WithParent(context.Background(), stored), "attempt")
	defer attempt.End()
	ro := attempt.(sdktrace.ReadOnlySpan)
	require.Equal(t, span.SpanContext().TraceID(), ro.SpanContext().TraceID())
	require.Equal(t, span.SpanContext().SpanID(), ro.Parent().SpanID())

	require.Nil(t, tracing.Parent(context.Background()), "no span: nothing to store")
	off := tracing.NewProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	unsampled, s := tracing.Tracer(off).Start(context.Background(), "send")
	s.End()
	notRecorded := tracing.Parent(unsampled)
	require.NotNil(t, notRecorded, "an unrecorded request's decision is stored too")
	require.Regexp(t, `-00$`, *notRecorded)
	_, later := tr.Start(tracing.WithParent(context.Background(), notRecorded), "attempt")
	require.False(t, later.IsRecording(), "its attempts follow it: not recorded")
	later.End()

	bad := "00-not-a-trace-01"
	require.False(t, trace.SpanContextFromContext(tracing.WithParent(context.Background(), &bad)).IsValid())
	require.Equal(t, context.Background(), tracing.WithParent(context.Background(), nil))
}

// TestSamplerRedrawsCallers: at ratio 0 a caller's sampled traceparent is
// not obeyed (nothing recorded, the trace id kept), while a message's own
// stored parent is followed; at ratio 1 the caller's trace is recorded.
func TestSamplerRedrawsCallers(t *testing.T) {
	caller := propagation.MapCarrier{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	never := tracing.Tracer(tracing.NewProvider(sdktrace.WithSampler(tracing.NewSampler(0))))
	ctx, span := never.Start(tracing.FromCaller(context.Background(), caller), "request")
	require.False(t, span.IsRecording(), "a caller cannot force recording")
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", span.SpanContext().TraceID().String(), "its trace id goes on")
	require.Regexp(t, `-00$`, *tracing.Parent(ctx))
	span.End()

	stored := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	_, attempt := never.Start(tracing.WithParent(context.Background(), &stored), "attempt")
	require.True(t, attempt.IsRecording(), "hookd's own recorded parent is followed")
	attempt.End()

	always := tracing.Tracer(tracing.NewProvider(sdktrace.WithSampler(tracing.NewSampler(1))))
	_, span = always.Start(tracing.FromCaller(context.Background(), caller), "request")
	require.True(t, span.IsRecording())
	span.End()
	notSampled := propagation.MapCarrier{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"}
	_, span = always.Start(tracing.FromCaller(context.Background(), notSampled), "request")
	require.False(t, span.IsRecording(), "a caller's 'not sampled' is obeyed")
	span.End()
}

// TestSetup: no endpoint is tracing off (spans are not recorded); a ratio
// outside 0-1 is refused; an endpoint gives a recording provider that
// shuts down cleanly.
func TestSetup(t *testing.T) {
	ctx := context.Background()
	tp, stop, err := tracing.Setup(ctx, tracing.Options{})
	require.NoError(t, err)
	_, span := tracing.Tracer(tp).Start(ctx, "x")
	require.False(t, span.IsRecording())
	require.NoError(t, stop(ctx))

	_, _, err = tracing.Setup(ctx, tracing.Options{Endpoint: "http://127.0.0.1:1/v1/traces", SampleRatio: 2})
	require.ErrorContains(t, err, "sample ratio")

	tp, stop, err = tracing.Setup(ctx, tracing.Options{Endpoint: "http://127.0.0.1:1/v1/traces", SampleRatio: 1, Role: "all"})
	require.NoError(t, err)
	_, span = tracing.Tracer(tp).Start(ctx, "x")
	require.True(t, span.IsRecording())
	span.End()
	shutdownCtx, cancel := context.WithCancel(ctx)
	cancel() // nothing listens on port 1: do not wait for the export
	_ = stop(shutdownCtx)
}
