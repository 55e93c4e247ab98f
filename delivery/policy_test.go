package delivery

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/store"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]Class{200: Success, 204: Success, 299: Success, 301: Permanent, 302: Permanent,
		400: Permanent, 401: Permanent, 404: Permanent, 408: Retryable, 410: Permanent, 429: Retryable, 500: Retryable, 503: Retryable} {
		require.Equal(t, want, Classify(Result{Status: status}), "%d", status)
	}
	require.Equal(t, Retryable, Classify(Result{Err: errors.New("connection refused")}))
	require.Equal(t, Permanent, Classify(Result{Err: errBlocked, Blocked: true}))
}

func TestDecideFollowsTheSchedule(t *testing.T) {
	t.Parallel()
	s := DefaultSchedule()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := store.Message{}
	// Seven 500s walk the slow track; the eighth attempt ends the message.
	for i, want := range s.Slow {
		d := s.Decide(m, Result{Status: 500}, now)
		require.Equal(t, store.StatusPendingRetry, d.Outcome.Status, "attempt %d", i+1)
		require.Equal(t, "slow", d.RetryType)
		require.Equal(t, want, d.RetryAfter)
		require.Equal(t, now.Add(want), *d.Outcome.NextAttemptAt)
		m.BudgetUsed, m.FastStreak, m.SlowRetries = d.Outcome.BudgetUsed, d.Outcome.FastStreak, d.Outcome.SlowRetries
	}
	d := s.Decide(m, Result{Status: 500}, now)
	require.Equal(t, store.StatusFailedPermanent, d.Outcome.Status, "8 attempts in all")
	require.Equal(t, 8, d.Outcome.BudgetUsed)
	require.Equal(t, "HTTP 500", *d.Outcome.LastError)
}

func TestDecideFastTrackThenSlow(t *testing.T) {
	t.Parallel()
	s := DefaultSchedule()
	s.MaxAttempts = 20
	now := time.Now()
	m := store.Message{}
	for i, want := range s.Fast {
		d := s.Decide(m, Result{Status: 429}, now)
		require.Equal(t, "fast", d.RetryType, "429 #%d", i+1)
		require.Equal(t, want, d.RetryAfter)
		m.BudgetUsed, m.FastStreak, m.SlowRetries = d.Outcome.BudgetUsed, d.Outcome.FastStreak, d.Outcome.SlowRetries
	}
	d := s.Decide(m, Result{Status: 429}, now)
	require.Equal(t, "slow", d.RetryType, "after five consecutive 429s the slow track takes over")
	require.Equal(t, s.Slow[0], d.RetryAfter)
	// A non-429 failure ends the 429 streak.
	m.BudgetUsed, m.FastStreak, m.SlowRetries = d.Outcome.BudgetUsed, d.Outcome.FastStreak, d.Outcome.SlowRetries
	d = s.Decide(m, Result{Status: 503}, now)
	require.Zero(t, d.Outcome.FastStreak)
}

func TestDecideRetryAfterIsALowerBoundWithACap(t *testing.T) {
	t.Parallel()
	s := DefaultSchedule()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := http.Header{}
	h.Set("Retry-After", "3600")
	d := s.Decide(store.Message{}, Result{Status: 429, Header: h}, now)
	require.Equal(t, time.Hour, d.RetryAfter, "longer than the fast track's 30s")
	h.Set("Retry-After", "5")
	d = s.Decide(store.Message{}, Result{Status: 503, Header: h}, now)
	require.Equal(t, 30*time.Minute, d.RetryAfter, "shorter than the schedule: the schedule wins")
	h.Set("Retry-After", "999999")
	d = s.Decide(store.Message{}, Result{Status: 503, Header: h}, now)
	require.Equal(t, 24*time.Hour, d.RetryAfter, "capped")
	h.Set("Retry-After", now.Add(3*time.Hour).Format(http.TimeFormat))
	d = s.Decide(store.Message{}, Result{Status: 503, Header: h}, now)
	require.Equal(t, 3*time.Hour, d.RetryAfter, "an HTTP date works too")
	h.Set("Retry-After", "soon")
	d = s.Decide(store.Message{}, Result{Status: 503, Header: h}, now)
	require.Equal(t, 30*time.Minute, d.RetryAfter, "unreadable values are ignored")
}

func TestDecideSuccessAndPermanent(t *testing.T) {
	t.Parallel()
	s := DefaultSchedule()
	d := s.Decide(store.Message{BudgetUsed: 2, FastStreak: 1}, Result{Status: 204, Duration: 12 * time.Millisecond}, time.Now())
	require.Equal(t, store.StatusSucceeded, d.Outcome.Status)
	require.Nil(t, d.Outcome.LastError)
	require.Equal(t, 12, *d.Outcome.LatencyMs)
	d = s.Decide(store.Message{}, Result{Status: 301}, time.Now())
	require.Equal(t, store.StatusFailedPermanent, d.Outcome.Status)
	require.Contains(t, *d.Outcome.LastError, "redirects are not followed")
}

func TestScheduleValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, DefaultSchedule().Validate())
	bad := DefaultSchedule()
	bad.Slow = nil
	require.Error(t, bad.Validate())
	bad = DefaultSchedule()
	bad.MaxAttempts = 0
	require.Error(t, bad.Validate())
	bad = DefaultSchedule()
	bad.Fast = []time.Duration{-time.Second}
	require.Error(t, bad.Validate())
	require.Error(t, Config{AttemptTimeout: time.Minute, Lease: time.Second}.Validate(), "lease shorter than an attempt")
}
