package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/hookd/hookd/internal/poll"
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

func (c *stmtCache) seen(query string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.texts[query] == seenOnce
}

func (c *stmtCache) state(query string) textState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.texts[query]
}

func (c *stmtCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

// waitKept waits for the cache's preparer to have kept query.
func waitKept(t *testing.T, s *Store, query string) {
	t.Helper()
	poll.Until(t, time.Minute, func() bool { return s.stmts.kept(query) }, "kept: "+query)
}

// TestStmtCacheKeepsStatements: the SQLite store keeps the statements it
// runs twice compiled, whether they run alone or inside a transaction, and
// runs them through the kept statement afterwards, inside transactions
// too, with the results, commits and rollbacks they have without it.
func TestStmtCacheKeepsStatements(t *testing.T) {
	t.Parallel()
	s := openSQLite(t)
	require.NotNil(t, s.stmts)
	ctx := context.Background()
	scan := func(db *gorm.DB, q string, arg int) int {
		t.Helper()
		var n int
		require.NoError(t, db.Raw(q, arg).Scan(&n).Error)
		return n
	}

	const alone = "SELECT ? + 1"
	require.Equal(t, 42, scan(s.db.WithContext(ctx), alone, 41))
	require.True(t, s.stmts.seen(alone), "a text seen once is noted")
	require.False(t, s.stmts.kept(alone), "and not kept")
	require.Equal(t, 43, scan(s.db.WithContext(ctx), alone, 42))
	waitKept(t, s, alone)
	hits := s.stmts.hits.Load()
	require.Equal(t, 44, scan(s.db.WithContext(ctx), alone, 43))
	require.Equal(t, hits+1, s.stmts.hits.Load(), "run through the kept statement")

	const inTx = "SELECT ? * 2"
	require.NoError(t, s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		require.Equal(t, 42, scan(tx, inTx, 21))
		require.Equal(t, 44, scan(tx, inTx, 22))
		return nil
	}))
	waitKept(t, s, inTx)
	hits = s.stmts.hits.Load()
	require.NoError(t, s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		require.Equal(t, 46, scan(tx, inTx, 23))
		return nil
	}))
	require.Equal(t, hits+1, s.stmts.hits.Load(), "a transaction runs the kept statement")

	const rolledBack = "SELECT ? - 1"
	require.Error(t, s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		scan(tx, rolledBack, 43)
		scan(tx, rolledBack, 44)
		return errors.New("roll back")
	}))
	waitKept(t, s, rolledBack)

	// Writes through a kept statement inside transactions: committed and
	// rolled back as without the cache.
	p := Project{ID: "p-stmt", Name: "stmt", CreatedAt: Now()}
	require.NoError(t, s.CreateProject(ctx, p))
	const update = "UPDATE projects SET name = ? WHERE id = ?"
	rename := func(name string, fail bool) error {
		return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec(update, name, p.ID).Error; err != nil {
				return err
			}
			if fail {
				return errors.New("roll back")
			}
			return nil
		})
	}
	require.NoError(t, rename("first", false))
	require.NoError(t, rename("second", false))
	waitKept(t, s, update)
	hits = s.stmts.hits.Load()
	require.NoError(t, rename("third", false))
	require.Error(t, rename("fourth", true))
	require.Equal(t, hits+2, s.stmts.hits.Load())
	var name string
	require.NoError(t, s.db.WithContext(ctx).Raw("SELECT name FROM projects WHERE id = ?", p.ID).Scan(&name).Error)
	require.Equal(t, "third", name)

	// A text that cannot be prepared runs (and fails) unprepared, and is
	// not handed to the preparer again.
	const bad = "SELECT x FROM stmt_no_such_table"
	for range 2 {
		require.Error(t, s.db.WithContext(ctx).Raw(bad).Scan(&name).Error)
	}
	poll.Until(t, time.Minute, func() bool { return s.stmts.state(bad) == unpreparable })
	require.Error(t, s.db.WithContext(ctx).Raw(bad).Scan(&name).Error)
	require.Equal(t, unpreparable, s.stmts.state(bad))

	// Schema statements and scripts are never candidates.
	const ddl = "CREATE TABLE IF NOT EXISTS stmt_probe (x INTEGER)"
	for range 2 {
		require.NoError(t, s.db.WithContext(ctx).Exec(ddl).Error)
	}
	require.False(t, s.stmts.kept(ddl))
	require.False(t, s.stmts.seen(ddl))
}

// TestStmtCacheSameTextWithRowsOpen: inside a transaction, a kept text
// run again while rows of its earlier run are open gives both runs their
// own rows (one compiled statement cannot serve two result sets).
func TestStmtCacheSameTextWithRowsOpen(t *testing.T) {
	t.Parallel()
	s := openSQLite(t)
	ctx := context.Background()
	require.NoError(t, s.db.WithContext(ctx).Exec("CREATE TABLE stmt_rows (x INTEGER)").Error)
	require.NoError(t, s.db.WithContext(ctx).Exec("INSERT INTO stmt_rows VALUES (1), (2), (3)").Error)
	const q = "SELECT x FROM stmt_rows WHERE x >= ? ORDER BY x"
	read := func(rows interface {
		Next() bool
		Scan(...any) error
	}, most int) []int {
		var got []int
		for len(got) < most && rows.Next() {
			var x int
			require.NoError(t, rows.Scan(&x))
			got = append(got, x)
		}
		return got
	}
	for range 2 {
		var xs []int
		require.NoError(t, s.db.WithContext(ctx).Raw(q, 1).Scan(&xs).Error)
	}
	waitKept(t, s, q)

	require.NoError(t, s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		first, err := tx.Raw(q, 1).Rows()
		require.NoError(t, err)
		defer first.Close()
		require.Equal(t, []int{1}, read(first, 1))

		second, err := tx.Raw(q, 2).Rows() // the same text, the first rows open
		require.NoError(t, err)
		defer second.Close()
		require.Equal(t, []int{2, 3}, read(second, 10))
		require.NoError(t, second.Err())
		require.NoError(t, tx.Exec("UPDATE stmt_rows SET x = x WHERE x >= ?", 3).Error)

		require.Equal(t, []int{2, 3}, read(first, 10), "the first rows go on where they were")
		require.NoError(t, first.Err())

		hits := s.stmts.hits.Load()
		third, err := tx.Raw(q, 3).Rows() // all read to the end, so closed: the kept statement again
		require.NoError(t, err)
		defer third.Close()
		require.Equal(t, []int{3}, read(third, 10))
		require.NoError(t, third.Err())
		require.Equal(t, hits+1, s.stmts.hits.Load())
		return nil
	}))
}

// TestStmtCacheIsBounded: statements whose text varies take the least
// recently used places, and an evicted statement still runs.
func TestStmtCacheIsBounded(t *testing.T) {
	t.Parallel()
	s := openSQLite(t)
	ctx := context.Background()
	const hot = "SELECT ? + 1000"
	s.stmts.prepare(ctx, hot)
	for i := range 2 * stmtCacheSize {
		s.stmts.prepare(ctx, fmt.Sprintf("SELECT ? + %d", i))
		if i%8 == 0 {
			cs := s.stmts.take(hot) // used recently, so kept
			require.NotNil(t, cs)
			s.stmts.release(cs)
		}
	}
	require.Equal(t, stmtCacheSize, s.stmts.len())
	require.True(t, s.stmts.kept(hot), "the recently used statement stays")
	require.False(t, s.stmts.kept("SELECT ? + 0"), "the least recently used went")
	var n int
	require.NoError(t, s.db.WithContext(ctx).Raw("SELECT ? + 0", 1).Scan(&n).Error)
	require.Equal(t, 1, n, "and runs again")
}

// TestStmtCacheEvictsNothingInUse: a statement evicted between a caller
// taking it and running it stays open until that caller lets go.
func TestStmtCacheEvictsNothingInUse(t *testing.T) {
	t.Parallel()
	s := openSQLite(t)
	ctx := context.Background()
	const q = "SELECT ? + 2000"
	s.stmts.prepare(ctx, q)
	held := s.stmts.take(q)
	require.NotNil(t, held)
	for i := range stmtCacheSize {
		s.stmts.prepare(ctx, fmt.Sprintf("SELECT ? + %d", i))
	}
	require.False(t, s.stmts.kept(q), "evicted")
	var n int
	require.NoError(t, held.stmt.QueryRowContext(ctx, 1).Scan(&n), "but not closed while held")
	require.Equal(t, 2001, n)
	s.stmts.release(held)
	require.Error(t, held.stmt.QueryRowContext(ctx, 1).Scan(&n), "closed once let go")
}

// TestStmtCacheClosesWhileTheConnectionIsHeld: closing the cache while a
// transaction holds the one connection and a text waits to be prepared
// returns, and keeps nothing.
func TestStmtCacheClosesWhileTheConnectionIsHeld(t *testing.T) {
	t.Parallel()
	s := openSQLite(t)
	ctx := context.Background()
	c := newStmtCache(s.sqlDB)
	tx, err := s.sqlDB.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback() }()
	const q = "SELECT ? + 3000"
	require.Nil(t, c.take(q))
	require.Nil(t, c.take(q)) // queued; the preparer waits for the connection
	// A close that waited for the connection would hang here (until the
	// test binary's timeout).
	c.close()
	require.NoError(t, tx.Rollback())
	require.False(t, c.kept(q))
	require.Zero(t, c.len())
}

// TestStmtCacheUnderChurn: callers running statements alone and in
// transactions at once, with more texts than the cache holds, all get
// their own right answers (run it with -race).
func TestStmtCacheUnderChurn(t *testing.T) {
	t.Parallel()
	s := openSQLite(t)
	ctx := context.Background()
	const callers, runs = 4, 150
	var wg sync.WaitGroup
	errs := make(chan error, callers*runs)
	for c := range callers {
		wg.Go(func() {
			for i := range runs {
				k := (i*7 + c*31) % (stmtCacheSize + stmtCacheSize/2)
				q := fmt.Sprintf("SELECT ? + %d", k)
				var n int
				var err error
				if i%3 == 0 {
					err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
						if err := tx.Raw(q, c).Scan(&n).Error; err != nil {
							return err
						}
						return tx.Raw(q, c).Scan(&n).Error
					})
				} else {
					err = s.db.WithContext(ctx).Raw(q, c).Scan(&n).Error
				}
				if err == nil && n != c+k {
					err = fmt.Errorf("%s with %d: got %d", q, c, n)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Positive(t, s.stmts.hits.Load(), "kept statements ran")
	require.LessOrEqual(t, s.stmts.len(), stmtCacheSize)
}

func TestCacheable(t *testing.T) {
	t.Parallel()
	for q, want := range map[string]bool{
		"SELECT 1":                             true,
		"  select * from messages":             true,
		"SELECT\n  count(*)\nFROM messages":    true,
		"INSERT INTO t VALUES (?)":             true,
		"UPDATE\tt SET x = 1":                  true,
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
