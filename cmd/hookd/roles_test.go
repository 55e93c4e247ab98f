package main

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/internal/poll"
	"github.com/hookd/hookd/internal/syncbuf"
	"github.com/hookd/hookd/internal/testdb"
	"github.com/hookd/hookd/secrets"
)

// TestRolesSplitTheWork runs an api and a worker process (in-process) on
// one PostgreSQL database: the api accepts a send, the worker delivers it;
// the worker's --addr answers only the probes; on stop the worker's
// /readyz turns 503 during the drain delay while /healthz still answers.
func TestRolesSplitTheWork(t *testing.T) {
	t.Parallel()
	dbURL := testdb.NewPostgres(t)
	inspection(t, dbURL)
	key := secrets.GenerateMasterKey("roles")
	rc := newCaptureReceiver(t)
	common := []string{"--addr", "127.0.0.1:0", "--database-url", dbURL, "--master-key", key.String(), "--data-dir", t.TempDir(),
		"--dev-allow-http", "--dev-allow-cidrs", "127.0.0.1/32", "--poll-interval", "50ms"}

	stdout := &syncbuf.Buffer{}
	apiAddr, stopAPI := startServe(t, append(common, "--role", "api"), env(nil), stdout)
	apiKey := keyRE.FindString(stdout.String())
	require.NotEmpty(t, apiKey, "the api process bootstraps an empty database")
	workerOut := &syncbuf.Buffer{}
	workerAddr, stopWorker := startServe(t, append(common, "--drain-delay", drainDelay.String()), env(map[string]string{"HOOKD_ROLE": "worker"}), workerOut)
	require.Empty(t, workerOut.String(), "a worker prints no key")

	var ep struct{ ID string }
	require.Equal(t, http.StatusCreated, api(t, http.MethodPost, "http://"+apiAddr+"/v1/endpoints", apiKey, `{"url":"`+rc.srv.URL+`/roles"}`, &ep))
	var sent struct {
		MessageID string `json:"message_id"`
	}
	require.Equal(t, http.StatusAccepted, api(t, http.MethodPost, "http://"+apiAddr+"/v1/webhooks/send", apiKey, `{"endpoint_id":"`+ep.ID+`","payload":{"a":1}}`, &sent))
	rc.await(t, sent.MessageID)

	// The worker serves the probes and nothing of the API.
	w := "http://" + workerAddr
	require.Equal(t, http.StatusOK, get(t, w+"/healthz", ""))
	require.Equal(t, http.StatusOK, get(t, w+"/readyz", ""))
	require.Equal(t, http.StatusNotFound, get(t, w+"/v1/endpoints", apiKey))
	require.Equal(t, http.StatusNotFound, get(t, w+"/v1/messages/"+sent.MessageID, apiKey))
	require.Equal(t, http.StatusNotFound, api(t, http.MethodPost, w+"/v1/webhooks/send", apiKey, `{"endpoint_id":"`+ep.ID+`","payload":{"a":2}}`, nil))

	// Stopping: not ready during the drain delay, still alive.
	stopped := make(chan error, 1)
	go func() { stopped <- stopWorker() }()
	poll.Until(t, drainDelay, func() bool { return get(t, w+"/readyz", "") == http.StatusServiceUnavailable }, "/readyz during the drain")
	require.Equal(t, http.StatusOK, get(t, w+"/healthz", ""))
	require.NoError(t, <-stopped)
	require.NoError(t, stopAPI())
	require.Equal(t, 1, countStatus(t, dbURL, "status = 'succeeded'"))
}
