package handlers

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/store"
)

// TestCSVStreamBreaksConnectionOnFailure: when the database fails after
// the 200 has started, the stream aborts the connection
// (http.ErrAbortHandler, which net/http turns into a cut connection)
// instead of ending the file early as if it were complete, and logs why.
func TestCSVStreamBreaksConnectionOnFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{DatabaseURL: "sqlite:" + filepath.Join(t.TempDir(), "h.db")})
	require.NoError(t, err)
	require.NoError(t, st.Close()) // every read from now on fails
	var logs bytes.Buffer
	s := &Server{Store: st, Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
	now := time.Now().UTC()
	c := &csvStream{ctx: ctx, s: s, export: store.Export{ID: "x1", ProjectID: "p"}, page: 1, next: "m1",
		first: []store.ExportRow{{ID: "m1", EndpointID: "ep_1", Status: store.StatusQueued, CreatedAt: now}}}

	rec := httptest.NewRecorder()
	require.PanicsWithValue(t, http.ErrAbortHandler, func() { _ = c.VisitGetExportFileResponse(rec) })
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, rec.Body.String(), "m1,ep_1,,queued,0,", "the first page went out before the failure")
	require.Contains(t, logs.String(), "export download failed part-way")
}
