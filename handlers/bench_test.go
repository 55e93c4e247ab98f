package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/handlers"
	"github.com/hookd/hookd/internal/testdb"
	"github.com/hookd/hookd/store"
)

// BenchmarkAPI measures whole requests over HTTP through the generated client
// (without the test-time contract check): authentication, rate limit,
// validation, handler and database, on both databases, with parallel
// clients. The project limit is raised to its maximum so the benchmark is
// not cut off at 1,000 requests.
func BenchmarkAPI(b *testing.B) {
	for _, d := range testdb.Dialects {
		e := setupWith(b, d, options{server: func(s *handlers.Server) { s.RateLimitDefault = store.MaxRateLimitPerMinute }})
		ep := e.createEndpoint(e.a, "https://hooks.example.com/bench")
		c, err := gen.NewClientWithResponses(e.url, gen.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
			r.Header.Set("Authorization", "Bearer "+e.a.key)
			return nil
		}))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(d+"/GetEndpoint", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r, err := c.GetEndpointWithResponse(context.Background(), ep.Id)
					if err != nil || r.StatusCode() != http.StatusOK {
						b.Errorf("get: %v %d", err, r.StatusCode())
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
		var n atomic.Int64 // outside: the benchmark function runs several times
		b.Run(d+"/CreateEndpoint", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					url := fmt.Sprintf("https://hooks.example.com/b/%d", n.Add(1))
					r, err := c.CreateEndpointWithResponse(context.Background(), gen.CreateEndpointRequest{Url: url})
					if err != nil || r.StatusCode() != http.StatusCreated {
						b.Errorf("create: %v %d", err, r.StatusCode())
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
		// Accepting sends, one message a request and 100 a request (no
		// engine runs: the messages stay queued).
		b.Run(d+"/Send", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r, err := c.SendWebhookWithResponse(context.Background(), gen.SendRequest{EndpointId: ep.Id, Payload: []byte(`{"event":"bench","n":1}`)})
					if err != nil || r.StatusCode() != http.StatusAccepted {
						b.Errorf("send: %v %d", err, r.StatusCode())
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
		b.Run(d+"/SendBatch100", func(b *testing.B) {
			items := make([]gen.SendRequest, 100)
			for i := range items {
				items[i] = gen.SendRequest{EndpointId: ep.Id, Payload: []byte(fmt.Sprintf(`{"event":"bench","n":%d}`, i))}
			}
			b.SetParallelism(4) // 8 batches in flight on 2 cores: each waits for its commit
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r, err := c.SendWebhookBatchWithResponse(context.Background(), gen.SendBatchRequest{Messages: items})
					if err != nil || r.StatusCode() != http.StatusOK || r.JSON200.Data.AcceptedCount != len(items) {
						b.Errorf("send batch: %v %d", err, r.StatusCode())
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "msg/s")
		})
		// Publishing an event to 100 subscribed endpoints (project b's),
		// one publish at a time: the time per op is the answer's latency.
		cb, err := gen.NewClientWithResponses(e.url, gen.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
			r.Header.Set("Authorization", "Bearer "+e.b.key)
			return nil
		}))
		if err != nil {
			b.Fatal(err)
		}
		for i := range 100 {
			e.createEndpoint(e.b, fmt.Sprintf("https://hooks.example.com/fan/%d", i))
		}
		b.Run(d+"/Publish100", func(b *testing.B) {
			for b.Loop() {
				r, err := cb.PublishEventWithResponse(context.Background(), gen.PublishEventRequest{EventType: "order.created", Payload: []byte(`{"event":"bench"}`)})
				if err != nil || r.StatusCode() != http.StatusAccepted || r.JSON202.Data.EndpointCount != 100 {
					b.Fatalf("publish: %v %d", err, r.StatusCode())
				}
			}
			b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}
