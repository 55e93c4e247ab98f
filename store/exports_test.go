package store_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/store"
)

// idAt returns a UUIDv7 whose timestamp is t, as hookd mints message ids
// together with created_at.
func idAt(t time.Time) string {
	var u uuid.UUID
	_, _ = rand.Read(u[:])
	var ms [8]byte
	binary.BigEndian.PutUint64(ms[:], uint64(t.UnixMilli())) //nolint:gosec // test times are after 1970
	copy(u[:6], ms[2:])
	u[6] = 0x70 | u[6]&0x0f
	u[8] = 0x80 | u[8]&0x3f
	return u.String()
}

// seedMessage stores a message of the endpoint created at the given time
// and returns its id.
func seedMessage(t *testing.T, s *store.Store, projectID, endpointID string, created time.Time) string {
	t.Helper()
	created = created.UTC().Truncate(time.Microsecond)
	m := store.Message{ID: idAt(created), ProjectID: projectID, EndpointID: endpointID, Status: store.StatusQueued,
		Payload: []byte(`{}`), PayloadSHA256: "x", Headers: store.Headers{}, NextAttemptAt: &created, CreatedAt: created, UpdatedAt: created}
	_, created2, err := s.InsertMessage(context.Background(), m)
	require.NoError(t, err)
	require.True(t, created2)
	return m.ID
}

func readAllRows(t *testing.T, s *store.Store, x store.Export, page int) []store.ExportRow {
	t.Helper()
	var out []store.ExportRow
	after := ""
	for {
		rows, next, err := s.ExportRows(context.Background(), x, after, page)
		require.NoError(t, err)
		require.LessOrEqual(t, len(rows), page)
		out = append(out, rows...)
		if next == "" {
			return out
		}
		after = next
	}
}

func rowIDs(rows []store.ExportRow) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r.ID
	}
	return out
}

// TestExportSelectsFilteredMessages checks the time window (start
// inclusive, end exclusive, capped at the export's creation), the status
// and endpoint filters, deleted messages and other projects, paging in id
// order and the row count taken at creation.
func TestExportSelectsFilteredMessages(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		s, pid := f.s, f.project.ID
		e1, k1 := newEndpoint(pid, "https://one.example.com/h")
		e2, k2 := newEndpoint(pid, "https://two.example.com/h")
		require.NoError(t, s.CreateEndpoint(ctx, e1, k1))
		require.NoError(t, s.CreateEndpoint(ctx, e2, k2))
		other := store.Project{ID: ids.NewUUID(), Name: "other-" + ids.RandomAlnum(6), CreatedAt: store.Now()}
		require.NoError(t, s.CreateProject(ctx, other))
		eo, ko := newEndpoint(other.ID, "https://one.example.com/h")
		require.NoError(t, s.CreateEndpoint(ctx, eo, ko))

		now := store.Now()
		start := now.Add(-3 * time.Hour)
		end := now.Add(-time.Hour)
		seedMessage(t, s, pid, e1.ID, start.Add(-time.Microsecond)) // just before the window
		atStart := seedMessage(t, s, pid, e1.ID, start)
		mid2 := seedMessage(t, s, pid, e2.ID, start.Add(30*time.Minute))
		mid1 := seedMessage(t, s, pid, e1.ID, start.Add(time.Hour))
		deleted := seedMessage(t, s, pid, e1.ID, start.Add(61*time.Minute))
		lastIn := seedMessage(t, s, pid, e1.ID, end.Add(-time.Microsecond))
		seedMessage(t, s, pid, e1.ID, end) // the end is exclusive
		seedMessage(t, s, other.ID, eo.ID, start.Add(time.Hour))
		_, err := s.DeleteMessage(ctx, pid, deleted)
		require.NoError(t, err)
		_, err = s.DB().Exec("UPDATE messages SET status = 'succeeded' WHERE id = '" + mid1 + "'")
		require.NoError(t, err)

		mk := func(from, to time.Time, status, endpoint *string) store.Export {
			x, err := s.CreateExport(ctx, store.Export{ID: ids.NewUUID(), ProjectID: pid, Status: store.ExportCompleted,
				FilterStartTime: from, FilterEndTime: to, FilterStatus: status, FilterEndpointID: endpoint,
				FilterDirection: store.ExportDirectionOutbound, CreatedAt: now, ExpiresAt: now.Add(time.Hour)})
			require.NoError(t, err)
			return x
		}

		all := mk(start, end, nil, nil)
		require.Equal(t, int64(4), all.RowCount)
		rows := readAllRows(t, s, all, 2)
		require.Equal(t, []string{atStart, mid2, mid1, lastIn}, rowIDs(rows), "window [start, end), deleted and foreign left out, id order")
		require.Equal(t, "https://two.example.com/h", rows[1].EndpointURL)
		require.Equal(t, e2.ID, rows[1].EndpointID)
		require.Equal(t, store.StatusSucceeded, rows[2].Status)
		require.Equal(t, start, rows[0].CreatedAt)

		succeeded := store.StatusSucceeded
		x := mk(start, end, &succeeded, nil)
		require.Equal(t, int64(1), x.RowCount)
		require.Equal(t, []string{mid1}, rowIDs(readAllRows(t, s, x, 2)))

		x = mk(start, end, nil, &e2.ID)
		require.Equal(t, int64(1), x.RowCount)
		require.Equal(t, []string{mid2}, rowIDs(readAllRows(t, s, x, 2)))

		// A window reaching into the future stops at the export's creation:
		// a message sent afterwards is not part of it.
		future := mk(start, now.Add(time.Hour), nil, nil)
		require.Equal(t, int64(5), future.RowCount)
		seedMessage(t, s, pid, e1.ID, now.Add(time.Millisecond))
		require.Len(t, readAllRows(t, s, future, 100), 5)
	})
}

func TestExportRecords(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		s, pid := f.s, f.project.ID
		now := store.Now()
		var made []string
		for range 3 {
			x, err := s.CreateExport(ctx, store.Export{ID: ids.NewUUID(), ProjectID: pid, Status: store.ExportCompleted,
				FilterStartTime: now.Add(-time.Hour), FilterEndTime: now, FilterDirection: store.ExportDirectionOutbound,
				CreatedAt: now, StartedAt: &now, CompletedAt: &now, ExpiresAt: now.Add(time.Hour)})
			require.NoError(t, err)
			made = append(made, x.ID)
		}
		got, err := s.GetExport(ctx, pid, made[0])
		require.NoError(t, err)
		require.Equal(t, now, got.CreatedAt)
		require.Equal(t, now, *got.CompletedAt)
		require.Nil(t, got.FilterStatus)
		require.Nil(t, got.FileSizeBytes)

		page, err := s.ListExports(ctx, pid, "", 2)
		require.NoError(t, err)
		require.Equal(t, []string{made[2], made[1]}, []string{page[0].ID, page[1].ID}, "newest first")
		page, err = s.ListExports(ctx, pid, made[1], 2)
		require.NoError(t, err)
		require.Len(t, page, 1)
		require.Equal(t, made[0], page[0].ID)

		_, err = s.GetExport(ctx, ids.NewUUID(), made[0])
		require.ErrorIs(t, err, store.ErrNotFound, "another project's export is not found")
		require.ErrorIs(t, s.DeleteExport(ctx, ids.NewUUID(), made[0]), store.ErrNotFound)

		require.NoError(t, s.DeleteExport(ctx, pid, made[0]))
		require.ErrorIs(t, s.DeleteExport(ctx, pid, made[0]), store.ErrNotFound, "deleting twice")
		_, err = s.GetExport(ctx, pid, made[0])
		require.ErrorIs(t, err, store.ErrNotFound)
		_, err = s.GetExportByID(ctx, made[0])
		require.ErrorIs(t, err, store.ErrNotFound, "a deleted export's links stop working")
		byID, err := s.GetExportByID(ctx, made[1])
		require.NoError(t, err)
		require.Equal(t, pid, byID.ProjectID)
		page, err = s.ListExports(ctx, pid, "", 10)
		require.NoError(t, err)
		require.Len(t, page, 2)
	})
}

func TestPurgeExpiredExports(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		s, pid := f.s, f.project.ID
		now := store.Now()
		mk := func(expires time.Time) string {
			x, err := s.CreateExport(ctx, store.Export{ID: ids.NewUUID(), ProjectID: pid, Status: store.ExportCompleted,
				FilterStartTime: now.Add(-time.Hour), FilterEndTime: now, FilterDirection: store.ExportDirectionOutbound,
				CreatedAt: now, ExpiresAt: expires})
			require.NoError(t, err)
			return x.ID
		}
		long := now.Add(-store.ExportRetention - time.Hour)
		var old []string
		for range 3 {
			old = append(old, mk(long))
		}
		require.NoError(t, s.DeleteExport(ctx, pid, old[0]), "deleted rows are purged too")
		recent := mk(now.Add(-store.ExportRetention + time.Hour)) // expired, but kept a while longer
		live := mk(now.Add(time.Hour))

		n, err := s.PurgeExpiredExports(ctx, now, 2)
		require.NoError(t, err)
		require.Equal(t, int64(2), n, "a bounded batch")
		n, err = s.PurgeExpiredExports(ctx, now, 2)
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
		n, err = s.PurgeExpiredExports(ctx, now, 2)
		require.NoError(t, err)
		require.Zero(t, n)
		var left []string
		rows, err := s.DB().Query("SELECT id FROM exports ORDER BY id")
		require.NoError(t, err)
		defer rows.Close()
		for rows.Next() {
			var id string
			require.NoError(t, rows.Scan(&id))
			left = append(left, id)
		}
		require.NoError(t, rows.Err())
		require.Equal(t, []string{recent, live}, left)

		_, err = s.PurgeExpiredExports(ctx, now, 0)
		require.Error(t, err)
	})
}
