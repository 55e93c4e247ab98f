package store

import (
	"container/list"
	"context"
	"database/sql"
	"slices"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"
)

// stmtCacheSize bounds the statements the SQLite store keeps compiled. The
// hot paths use a dozen; statements whose text varies (an IN list of a new
// length) take the least recently used places.
const stmtCacheSize = 128

// stmtCache is the SQLite store's connection pool for GORM: it keeps the
// statements it runs compiled. SQLite compiles a statement for every run
// unless the statement is prepared once and kept, and compiling was a fifth
// of hookd's CPU on the send → deliver path. Preparing needs the
// connection, and the store has only one, which a running transaction
// holds; so a statement first seen inside a transaction runs unprepared
// and is prepared once that transaction has ended, and transactions run
// prepared statements through Tx.StmtContext, which reuses the compiled
// statement of the connection the transaction holds.
type stmtCache struct {
	db *sql.DB

	mu    sync.Mutex
	order *list.List               // of *cachedStmt, most recently used first
	stmts map[string]*list.Element // by query text
}

type cachedStmt struct {
	query string
	stmt  *sql.Stmt
	// users counts the callers between taking the statement and handing
	// it to database/sql (which then keeps it alive itself); an evicted
	// statement is closed when the last of them lets go.
	users   int
	evicted bool
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, order: list.New(), stmts: map[string]*list.Element{}}
}

// cacheable reports whether query is worth keeping compiled: a single data
// statement, not a schema change, a pragma or a script.
func cacheable(query string) bool {
	q := strings.TrimSpace(query)
	if strings.Contains(strings.TrimRight(q, "; \t\n"), ";") {
		return false
	}
	verb, _, _ := strings.Cut(q, " ")
	switch strings.ToUpper(strings.TrimSpace(verb)) {
	case "SELECT", "INSERT", "UPDATE", "DELETE", "WITH":
		return true
	}
	return false
}

// take returns query's kept statement, held for the caller until release,
// or nil.
func (c *stmtCache) take(query string) *cachedStmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.stmts[query]; ok {
		c.order.MoveToFront(el)
		cs := el.Value.(*cachedStmt)
		cs.users++
		return cs
	}
	return nil
}

// release lets go of a statement take or prepare returned.
func (c *stmtCache) release(cs *cachedStmt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs.users--
	if cs.evicted && cs.users == 0 {
		_ = cs.stmt.Close()
	}
}

// prepare returns query's kept statement, compiling and keeping it first if
// need be, held for the caller until release; it evicts the least recently
// used statement beyond stmtCacheSize. Compiling waits for the connection,
// so it must not be called while the caller holds it (inside a
// transaction). It returns nil if the statement is not to be kept or
// cannot be prepared; the caller then runs it unprepared, and its error,
// if any, comes from that run.
func (c *stmtCache) prepare(ctx context.Context, query string) *cachedStmt {
	if cs := c.take(query); cs != nil || !cacheable(query) {
		return cs
	}
	stmt, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.stmts[query]; ok { // prepared meanwhile by another caller
		_ = stmt.Close() //nolint:sqlclosecheck // the other caller's statement is kept instead
		c.order.MoveToFront(el)
		cs := el.Value.(*cachedStmt)
		cs.users++
		return cs
	}
	cs := &cachedStmt{query: query, stmt: stmt, users: 1}
	c.stmts[query] = c.order.PushFront(cs)
	for c.order.Len() > stmtCacheSize {
		old := c.order.Remove(c.order.Back()).(*cachedStmt)
		delete(c.stmts, old.query)
		old.evicted = true
		if old.users == 0 {
			// A transaction's statement made from it, and rows still
			// open on it, keep it alive until they end (database/sql
			// tracks them).
			_ = old.stmt.Close()
		}
	}
	return cs
}

// close closes every kept statement; any in use close as they are let go.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.order.Front(); el != nil; el = el.Next() {
		cs := el.Value.(*cachedStmt)
		cs.evicted = true
		if cs.users == 0 {
			_ = cs.stmt.Close()
		}
	}
	c.order.Init()
	clear(c.stmts)
}

func (c *stmtCache) GetDBConn() (*sql.DB, error) { return c.db, nil }

func (c *stmtCache) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return c.db.PrepareContext(ctx, query)
}

func (c *stmtCache) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if cs := c.prepare(ctx, query); cs != nil {
		defer c.release(cs)
		return cs.stmt.ExecContext(ctx, args...)
	}
	return c.db.ExecContext(ctx, query, args...)
}

func (c *stmtCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if cs := c.prepare(ctx, query); cs != nil {
		defer c.release(cs)
		return cs.stmt.QueryContext(ctx, args...) //nolint:sqlclosecheck // the caller (GORM) closes the rows
	}
	return c.db.QueryContext(ctx, query, args...) //nolint:sqlclosecheck // the caller (GORM) closes the rows
}

func (c *stmtCache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if cs := c.prepare(ctx, query); cs != nil {
		defer c.release(cs)
		return cs.stmt.QueryRowContext(ctx, args...)
	}
	return c.db.QueryRowContext(ctx, query, args...)
}

func (c *stmtCache) BeginTx(ctx context.Context, opts *sql.TxOptions) (gorm.ConnPool, error) {
	tx, err := c.db.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &stmtCacheTx{Tx: tx, cache: c}, nil
}

// stmtCacheTx runs a transaction's statements through the cache, and
// notes the ones to prepare once it has ended.
type stmtCacheTx struct {
	*sql.Tx
	cache  *stmtCache
	unseen []string
}

func (t *stmtCacheTx) GetDBConn() (*sql.DB, error) { return t.cache.db, nil }

// stmt returns query's statement bound to the transaction, or nil if query
// is not prepared yet, noting it for later.
func (t *stmtCacheTx) stmt(ctx context.Context, query string) *sql.Stmt {
	if cs := t.cache.take(query); cs != nil {
		defer t.cache.release(cs)
		return t.StmtContext(ctx, cs.stmt)
	}
	if cacheable(query) && len(t.unseen) < stmtCacheSize && !slices.Contains(t.unseen, query) {
		t.unseen = append(t.unseen, query)
	}
	return nil
}

func (t *stmtCacheTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := t.stmt(ctx, query); s != nil { //nolint:sqlclosecheck // closed by database/sql when the transaction ends
		return s.ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, query, args...)
}

func (t *stmtCacheTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := t.stmt(ctx, query); s != nil { //nolint:sqlclosecheck // closed by database/sql when the transaction ends
		return s.QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, query, args...)
}

func (t *stmtCacheTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if s := t.stmt(ctx, query); s != nil { //nolint:sqlclosecheck // closed by database/sql when the transaction ends
		return s.QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, query, args...)
}

func (t *stmtCacheTx) Commit() error {
	err := t.Tx.Commit()
	t.prepareUnseen()
	return err
}

func (t *stmtCacheTx) Rollback() error {
	err := t.Tx.Rollback()
	t.prepareUnseen()
	return err
}

// prepareUnseen prepares, now that the connection is free, the statements
// the transaction ran unprepared.
func (t *stmtCacheTx) prepareUnseen() {
	// Bounded: the connection may be busy with the next transaction.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, q := range t.unseen {
		if cs := t.cache.prepare(ctx, q); cs != nil {
			t.cache.release(cs)
		}
	}
	t.unseen = nil
}
