package metrics_test

import (
	"testing"
	"time"

	"github.com/hookd/hookd/delivery"
	"github.com/hookd/hookd/metrics"
)

// BenchmarkObserveAttempt is the metrics cost of one delivery attempt.
func BenchmarkObserveAttempt(b *testing.B) {
	m, err := metrics.New(metrics.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	a := delivery.AttemptObservation{Class: delivery.Retryable, Status: 503, Duration: 20 * time.Millisecond, RetryType: "slow"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveAttempt(a)
		}
	})
}

// BenchmarkObserveHTTP is the metrics cost of one API request.
func BenchmarkObserveHTTP(b *testing.B) {
	m, err := metrics.New(metrics.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveHTTP("/v1/webhooks/send", "POST", 202, 3*time.Millisecond)
		}
	})
}
