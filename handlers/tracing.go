package handlers

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/hookd/hookd/metrics"
	"github.com/hookd/hookd/tracing"
)

// traceRequests gives every API request a server span named by its route
// template, continuing the caller's trace when the request carries a
// traceparent header. Probes and metric scrapes, which come every few
// seconds and say nothing about a message, are not traced.
func traceRequests(t trace.Tracer, routes map[string]bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			route := c.Path()
			if untraced[route] {
				return next(c)
			}
			if !routes[route] {
				route = metrics.UnmatchedRoute
			}
			ctx := tracing.FromCaller(r.Context(), propagation.HeaderCarrier(r.Header))
			ctx, span := t.Start(ctx, r.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(semconv.HTTPRequestMethodKey.String(r.Method), semconv.HTTPRoute(route),
					attribute.String("hookd.request_id", RequestID(ctx))))
			defer span.End()
			c.SetRequest(r.WithContext(ctx))
			if err := next(c); err != nil {
				c.Error(err) // render now so the status below is the one sent
			}
			status := c.Response().Status
			span.SetAttributes(semconv.HTTPResponseStatusCode(status))
			if status >= http.StatusInternalServerError {
				span.SetStatus(codes.Error, http.StatusText(status))
			}
			return nil
		}
	}
}

var untraced = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// startCommit starts the span of storing what a request accepted (the
// commit a send waits for), with the project and attrs.
func (s *Server) startCommit(ctx context.Context, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if s.tracer == nil {
		return ctx, trace.SpanFromContext(ctx) // tracing off: a no-op span
	}
	attrs = append(attrs, attribute.String("hookd.project_id", projectID(ctx)))
	return s.tracer.Start(ctx, "hookd.commit", trace.WithAttributes(attrs...))
}

// endSpan ends span, marking it failed when err is not nil.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
