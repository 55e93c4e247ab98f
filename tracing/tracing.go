// Package tracing sets up OpenTelemetry tracing for hookd: spans for API
// requests, the commit of a send and every delivery attempt, exported over
// OTLP/HTTP when an endpoint is configured and not recorded at all
// otherwise. A message keeps the trace context of the request that sent
// it (W3C traceparent), so its attempts, however much later and in
// whichever process, are children of that request's span.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Name is the instrumentation scope of hookd's spans.
const Name = "github.com/hookd/hookd"

// Options configures Setup.
type Options struct {
	// Endpoint is the OTLP/HTTP traces URL, e.g.
	// "http://collector:4318/v1/traces"; empty turns tracing off.
	Endpoint string
	// SampleRatio is the share of requests recorded (0-1), those that
	// arrive with a caller's traceparent included (NewSampler).
	SampleRatio float64
	// Version is reported as service.version.
	Version string
	// Role is reported as hookd.role (all, api, worker).
	Role string
}

// Setup returns the tracer provider Options describe and the function that
// flushes and stops it. With no Endpoint it returns a provider that records
// nothing and costs next to nothing.
func Setup(ctx context.Context, o Options) (trace.TracerProvider, func(context.Context) error, error) {
	if o.Endpoint == "" {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	if o.SampleRatio < 0 || o.SampleRatio > 1 {
		return nil, nil, fmt.Errorf("trace sample ratio must be 0 to 1, got %v", o.SampleRatio)
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(o.Endpoint))
	if err != nil {
		return nil, nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName("hookd"), semconv.ServiceVersion(o.Version), attribute.String("hookd.role", o.Role)))
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("trace resource: %w", err), exp.Shutdown(ctx))
	}
	tp := NewProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithSampler(NewSampler(o.SampleRatio)))
	return tp, tp.Shutdown, nil
}

// NewProvider is an SDK tracer provider with opts (tests pass an
// in-memory exporter or span recorder).
func NewProvider(opts ...sdktrace.TracerProviderOption) *sdktrace.TracerProvider {
	return sdktrace.NewTracerProvider(opts...)
}

// Tracer is hookd's tracer of tp; a nil tp records nothing.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return tp.Tracer(Name)
}

var propagator = propagation.TraceContext{}

// callerKey marks a context whose remote span context came from an API
// caller, not from hookd's own records.
type callerKey struct{}

// FromCaller returns ctx with the span context of a caller's traceparent
// header (carrier), if any, marked as the caller's: its trace goes on, but
// whether it is recorded is the sampler's decision, not the caller's (see
// NewSampler).
func FromCaller(ctx context.Context, carrier propagation.TextMapCarrier) context.Context {
	ctx = propagator.Extract(ctx, carrier)
	if trace.SpanContextFromContext(ctx).IsRemote() {
		ctx = context.WithValue(ctx, callerKey{}, true)
	}
	return ctx
}

// NewSampler records ratio of new traces, and follows the parent's
// decision otherwise (a message's attempts follow its send request) --
// except for a caller's sampled traceparent (FromCaller), which is
// recorded at ratio too, drawn at random: anyone can send a traceparent,
// and no caller may make hookd record every request it sends.
func NewSampler(ratio float64) sdktrace.Sampler {
	return callerSampler{ratio: ratio, base: sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))}
}

type callerSampler struct {
	ratio float64
	base  sdktrace.Sampler
}

func (s callerSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	psc := trace.SpanContextFromContext(p.ParentContext)
	if psc.IsRemote() && psc.IsSampled() && p.ParentContext.Value(callerKey{}) != nil && s.ratio < 1 &&
		rand.Float64() >= s.ratio { //nolint:gosec // a sampling draw, not a secret
		return sdktrace.SamplingResult{Decision: sdktrace.Drop, Tracestate: psc.TraceState()}
	}
	return s.base.ShouldSample(p)
}

func (s callerSampler) Description() string {
	return fmt.Sprintf("hookd{ratio=%v, callers' traceparent re-drawn}", s.ratio)
}

// Inject writes ctx's span context into carrier as traceparent (and
// tracestate), if ctx has a valid one.
func Inject(ctx context.Context, carrier propagation.TextMapCarrier) {
	propagator.Inject(ctx, carrier)
}

// Parent is the traceparent of ctx's span (recorded or not: the message's
// attempts follow its decision), or nil when ctx has none (tracing off).
func Parent(ctx context.Context) *string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return nil
	}
	c := propagation.MapCarrier{}
	propagator.Inject(ctx, c)
	tp := c.Get("traceparent")
	if tp == "" {
		return nil
	}
	return &tp
}

// WithParent returns ctx with the remote span context of a stored
// traceparent (nil or malformed: ctx unchanged).
func WithParent(ctx context.Context, traceparent *string) context.Context {
	if traceparent == nil {
		return ctx
	}
	return propagator.Extract(ctx, propagation.MapCarrier{"traceparent": *traceparent})
}
