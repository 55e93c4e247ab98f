package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/handlers"
	"github.com/hookd/hookd/internal/poll"
)

// TestAdmission: with every in-flight slot taken (one slot, held by a
// listen long poll), an API request waits briefly and is refused with 503
// OVERLOADED, the error envelope and Retry-After, while /healthz still
// answers; when the slot frees, requests are served again. (The limit is
// the process's, not a database's: one dialect is enough.)
func TestAdmission(t *testing.T) {
	t.Parallel()
	e := setupWith(t, "sqlite", options{server: func(s *handlers.Server) {
		s.MaxInFlight = 1
		s.ListenWait = time.Minute
	}})
	status, _, raw := e.do(http.MethodPost, "/v1/inbound-endpoints", e.a.key, "application/json", []byte(`{"mode":"cli","name":"laptop"}`))
	require.Equal(t, http.StatusCreated, status, string(raw))
	var created struct{ Data struct{ ID string } }
	require.NoError(t, json.Unmarshal(raw, &created))
	status, _, raw = e.do(http.MethodGet, "/v1/inbound-endpoints/"+created.Data.ID+"/listen?wait=0", e.a.key, "", nil)
	require.Equal(t, http.StatusOK, status, string(raw))
	var start struct {
		Meta struct {
			NextCursor string `json:"next_cursor"`
		}
	}
	require.NoError(t, json.Unmarshal(raw, &start))

	// The long poll takes the only slot until the test lets it go.
	ctx, cancel := context.WithCancel(context.Background())
	held := make(chan struct{})
	go func() {
		defer close(held)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/v1/inbound-endpoints/"+created.Data.ID+"/listen?wait=25&after="+start.Meta.NextCursor, nil)
		req.Header.Set("Authorization", "Bearer "+e.a.key)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
		}
	}()
	t.Cleanup(func() { cancel(); <-held })

	var refused *http.Response
	poll.Until(t, time.Minute, func() bool {
		req, _ := http.NewRequest(http.MethodGet, e.url+"/v1/endpoints", nil)
		req.Header.Set("Authorization", "Bearer "+e.a.key)
		resp, err := (&http.Client{Transport: &contractCheck{t: t, next: http.DefaultTransport}}).Do(req)
		require.NoError(t, err)
		if resp.StatusCode == http.StatusOK {
			_ = resp.Body.Close()
			return false // the long poll has not reached the server yet
		}
		refused = resp
		return true
	}, "a request is refused while the long poll holds the only slot")
	defer refused.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, refused.StatusCode)
	require.Equal(t, "1", refused.Header.Get("Retry-After"))
	var envl struct {
		Error struct{ Code, Message string }
		Meta  struct {
			RequestID string `json:"request_id"`
		}
	}
	require.NoError(t, json.NewDecoder(refused.Body).Decode(&envl))
	require.Equal(t, "OVERLOADED", envl.Error.Code)
	require.Contains(t, envl.Error.Message, "retry")
	require.NotEmpty(t, envl.Meta.RequestID)

	resp, err := http.Get(e.url + "/healthz")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "probes are never refused")

	cancel() // the long poll ends: its slot frees
	<-held
	poll.Until(t, time.Minute, func() bool {
		status, _, _ := e.do(http.MethodGet, "/v1/endpoints", e.a.key, "", nil)
		return status == http.StatusOK
	}, "requests are served again once the slot is free")
}
