package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/store"
)

// TestEveryTableCarriesProjectID: project_id is the sharding key, so every
// table of project data has it, NOT NULL. The exceptions hold no project
// data: the projects themselves and hookd's own bookkeeping.
func TestEveryTableCarriesProjectID(t *testing.T) {
	t.Parallel()
	exempt := map[string]bool{"projects": true, "hookd_schema_migrations": true, "leader_leases": true}
	forEachDialect(t, func(t *testing.T, f fixture) {
		db := f.s.DB()
		var tablesQuery, columnQuery string
		if f.s.Dialect() == store.Postgres {
			tablesQuery = `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`
			columnQuery = `SELECT count(*) FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 AND column_name = 'project_id' AND is_nullable = 'NO'`
		} else {
			tablesQuery = `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
			columnQuery = `SELECT count(*) FROM pragma_table_info(?) WHERE name = 'project_id' AND "notnull" = 1`
		}
		rows, err := db.QueryContext(context.Background(), tablesQuery)
		require.NoError(t, err)
		var tables []string
		for rows.Next() {
			var name string
			require.NoError(t, rows.Scan(&name))
			tables = append(tables, name)
		}
		require.NoError(t, rows.Err())
		require.NoError(t, rows.Close())
		require.Contains(t, tables, "endpoint_rate_buckets")
		checked := 0
		for _, table := range tables {
			if exempt[table] {
				continue
			}
			var n int
			require.NoError(t, db.QueryRowContext(context.Background(), columnQuery, table).Scan(&n))
			require.Equal(t, 1, n, "table %s has no NOT NULL project_id", table)
			checked++
		}
		require.Greater(t, checked, 5)
	})
}

// TestRateBucketsCarryProjectID: buckets are written with their endpoint's
// project; on PostgreSQL a bucket inserted without one (by a process of the
// previous release during a rolling upgrade) gets it from the endpoint.
func TestRateBucketsCarryProjectID(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		e, _ := f.endpoint(t, "https://a.example/rate")
		wait, err := f.s.TakeToken(ctx, f.project.ID, e.ID, 5, 5)
		require.NoError(t, err)
		require.Zero(t, wait)
		q := `SELECT project_id FROM endpoint_rate_buckets WHERE endpoint_id = ?`
		if f.s.Dialect() == store.Postgres {
			q = `SELECT project_id FROM endpoint_rate_buckets WHERE endpoint_id = $1`
		}
		var got string
		require.NoError(t, f.s.DB().QueryRowContext(ctx, q, e.ID).Scan(&got))
		require.Equal(t, f.project.ID, got)

		if f.s.Dialect() == store.Postgres {
			old, _ := f.endpoint(t, "https://a.example/old-release")
			_, err := f.s.DB().ExecContext(ctx, `INSERT INTO endpoint_rate_buckets (endpoint_id, tokens, refilled_at) VALUES ($1, 1, now())`, old.ID)
			require.NoError(t, err)
			require.NoError(t, f.s.DB().QueryRowContext(ctx, q, old.ID).Scan(&got))
			require.Equal(t, f.project.ID, got)
		}
	})
}
