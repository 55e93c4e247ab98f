package main

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/internal/syncbuf"

	"github.com/hookd/hookd/signature"
)

func TestListenPrintsDeliveriesAndChecksSignatures(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	out := &syncbuf.Buffer{}
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- listen(ctx, []string{"--addr", "127.0.0.1:0", "--secrets", secret, "--status", "202"}, env(nil), out, &syncbuf.Buffer{}, ready)
	}()
	addr := <-ready

	post := func(sig string) int {
		body := `{"event":"ping"}`
		req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/hook", strings.NewReader(body))
		require.NoError(t, err)
		ts := time.Now().Unix()
		req.Header.Set(signature.HeaderID, "01935abc-def0-7123-4567-890abcdef012")
		req.Header.Set(signature.HeaderTimestamp, strconv.FormatInt(ts, 10))
		if sig == "" {
			sig = signature.Header(ts, []byte(body), secret)
		}
		req.Header.Set(signature.HeaderSignature, sig)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, 202, post(""))
	require.Equal(t, 202, post("sha256=00"))
	cancel()
	require.NoError(t, <-done)

	text := out.String()
	require.Contains(t, text, "signature: valid")
	require.Contains(t, text, "signature: INVALID")
	require.Contains(t, text, `{"event":"ping"}`)
	require.Contains(t, text, "01935abc-def0-7123-4567-890abcdef012")
	require.Equal(t, 2, strings.Count(text, "answered 202"))
}
