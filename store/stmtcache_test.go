package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
)

func openSQLite(t *testing.T) *Store {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, Options{DatabaseURL: "sqlite:" + filepath.Join(t.TempDir(), "hookd.db")})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	_, err = s.Migrate(ctx)
	require.NoError(t, err)
	return s
}

func (c *stmtCache) kept(query string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.stmts[query]
	return ok
}

func (c *stmtCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// TestStmtCacheKeepsStatements: the SQLite store keeps the statements it
// runs compiled, whether they first run alone or inside a transaction
// (prepared once that transaction has ended, committed or not), and
// transactions run the kept ones with the same results.
func TestStmtCacheKeepsStatements(t *testing.T) {
	t.Parallel()
	s := openSQLite(t)
	require.NotNil(t, s.stmts)
	ctx := context.Background()

	const alone = "SELECT ? + 1"
	var n int
	require.NoError(t, s.db.WithContext(ctx).Raw(alone, 41).Scan(&n).Error)
	require.Equal(t, 42, n)
	require.True(t, s.stmts.kept(alone), "a statement run alone is kept")

	const inTx = "SELECT ? * 2"
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		require.NoError(t, tx.Raw(inTx, 21).Scan(&n).Error)
		require.Equal(t, 42, n)
		require.False(t, s.stmts.kept(inTx), "the one connection is the transaction's: nothing can be prepared yet")
		return nil
	})
	require.NoError(t, err)
	require.True(t, s.stmts.kept(inTx), "prepared once the transaction committed")

	const rolledBack = "SELECT ? - 1"
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		require.NoError(t, tx.Raw(rolledBack, 43).Scan(&n).Error)
		return errors.New("roll back")
	})
	require.Error(t, err)
	require.True(t, s.stmts.kept(rolledBack), "prepared once the transaction rolled back")

	// Kept statements inside a transaction, with writes, commit and
	// rollback seen as they would be without the cache.
	p := Project{ID: "p-stmt", Name: "stmt", CreatedAt: Now()}
	require.NoError(t, s.CreateProject(ctx, p))
	rename := func(name string, fail bool) error {
		return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec("UPDATE projects SET name = ? WHERE id = ?", name, p.ID).Error; err != nil {
				return err
			}
			if fail {
				return errors.New("roll back")
			}
			return nil
		})
	}
	require.NoError(t, rename("first", false))
	require.True(t, s.stmts.kept("UPDATE projects SET name = ? WHERE id = ?"))
	require.NoError(t, rename("second", false)) // through the kept statement
	require.Error(t, rename("third", true))
	var name string
	require.NoError(t, s.db.WithContext(ctx).Raw("SELECT name FROM projects WHERE id = ?", p.ID).Scan(&name).Error)
	require.Equal(t, "second", name)

	// Schema statements and scripts are not kept.
	require.NoError(t, s.db.WithContext(ctx).Exec("CREATE TABLE IF NOT EXISTS stmt_probe (x INTEGER)").Error)
	require.False(t, s.stmts.kept("CREATE TABLE IF NOT EXISTS stmt_probe (x INTEGER)"))
}

// TestStmtCacheIsBounded: statements whose text varies take the least
// recently used places, and an evicted statement still runs.
func TestStmtCacheIsBounded(t *testing.T) {
	t.Parallel()
	s := openSQLite(t)
	ctx := context.Background()
	hot := "SELECT ? + 1000"
	run := func(q string, arg int) int {
		var n int
		require.NoError(t, s.db.WithContext(ctx).Raw(q, arg).Scan(&n).Error)
		return n
	}
	require.Equal(t, 1001, run(hot, 1))
	for i := range 2 * stmtCacheSize {
		require.Equal(t, i+1, run(fmt.Sprintf("SELECT ? + %d", i), 1))
		if i%8 == 0 {
			require.Equal(t, 1002, run(hot, 2)) // kept in use, so kept
		}
	}
	require.Equal(t, stmtCacheSize, s.stmts.len())
	require.True(t, s.stmts.kept(hot), "the statement in use stays")
	require.False(t, s.stmts.kept("SELECT ? + 0"), "the least recently used went")
	require.Equal(t, 1, run("SELECT ? + 0", 1), "and runs again")
}

// TestStmtCacheEvictsNothingInUse: a statement evicted between a caller
// taking it and running it stays open until that caller lets go.
func TestStmtCacheEvictsNothingInUse(t *testing.T) {
	t.Parallel()
	s := openSQLite(t)
	ctx := context.Background()
	held := s.stmts.prepare(ctx, "SELECT ? + 2000")
	require.NotNil(t, held)
	for i := range stmtCacheSize {
		s.stmts.release(s.stmts.prepare(ctx, fmt.Sprintf("SELECT ? + %d", i)))
	}
	require.False(t, s.stmts.kept("SELECT ? + 2000"), "evicted")
	var n int
	require.NoError(t, held.stmt.QueryRowContext(ctx, 1).Scan(&n), "but not closed while held")
	require.Equal(t, 2001, n)
	s.stmts.release(held)
	require.Error(t, held.stmt.QueryRowContext(ctx, 1).Scan(&n), "closed once let go")
}

func TestCacheable(t *testing.T) {
	t.Parallel()
	for q, want := range map[string]bool{
		"SELECT 1":                             true,
		"  select * from messages":             true,
		"INSERT INTO t VALUES (?)":             true,
		"UPDATE t SET x = 1":                   true,
		"DELETE FROM t":                        true,
		"WITH a AS (SELECT 1) SELECT * FROM a": true,
		"SELECT 1;":                            true,
		"SELECT 1; SELECT 2":                   false,
		"CREATE TABLE t (x)":                   false,
		"PRAGMA journal_mode":                  false,
		"BEGIN":                                false,
		"":                                     false,
	} {
		require.Equal(t, want, cacheable(q), q)
	}
}
