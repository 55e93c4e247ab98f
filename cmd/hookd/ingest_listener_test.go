package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/internal/syncbuf"
)

// TestIngestListener: with --ingest-addr, ingest URLs are served on a
// listener of their own that serves nothing of the API, and --ingest-url
// names the URLs hookd hands out.
func TestIngestListener(t *testing.T) {
	t.Parallel()
	logs, stdout := &syncbuf.Buffer{}, &syncbuf.Buffer{}
	addr, stop := startServeLogging(t, []string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--log-format", "json",
		"--ingest-addr", "127.0.0.1:0", "--ingest-url", "https://hooks.example.com/"}, env(nil), stdout, logs)
	defer func() { require.NoError(t, stop()) }()
	ingestAddr := loggedAddr(t, logs.String(), "serving ingest")
	apiKey := keyRE.FindString(stdout.String())
	require.NotEmpty(t, apiKey)

	var ie struct {
		ID          string `json:"id"`
		IngestURL   string `json:"ingest_url"`
		SecretToken string `json:"secret_token"`
	}
	require.Equal(t, http.StatusCreated, api(t, http.MethodPost, "http://"+addr+"/v1/inbound-endpoints", apiKey, `{"mode":"cli","name":"edge"}`, &ie))
	path := "/v1/webhooks/receive/" + ie.ID + "/" + ie.SecretToken
	require.Equal(t, "https://hooks.example.com"+path, ie.IngestURL, "the URL handed out uses --ingest-url")

	post := func(base string) int {
		resp, err := http.Post("http://"+base+path, "application/json", strings.NewReader(`{"n":1}`))
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, http.StatusOK, post(ingestAddr), "ingest on its own listener")
	require.Equal(t, http.StatusOK, post(addr), "and on the API listener")
	require.Equal(t, http.StatusOK, get(t, "http://"+ingestAddr+"/healthz", ""))
	require.Equal(t, http.StatusNotFound, get(t, "http://"+ingestAddr+"/v1/inbound-endpoints", apiKey), "no API on the ingest listener")
	require.Equal(t, http.StatusNotFound, get(t, "http://"+ingestAddr+"/openapi.yaml", ""))
}
