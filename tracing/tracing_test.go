package tracing_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
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

	require.Nil(t, tracing.Parent(context.Background()))
	off := tracing.NewProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	unsampled, s := tracing.Tracer(off).Start(context.Background(), "send")
	s.End()
	require.Nil(t, tracing.Parent(unsampled), "nothing links to an unrecorded span")

	bad := "00-not-a-trace-01"
	require.False(t, trace.SpanContextFromContext(tracing.WithParent(context.Background(), &bad)).IsValid())
	require.Equal(t, context.Background(), tracing.WithParent(context.Background(), nil))
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
