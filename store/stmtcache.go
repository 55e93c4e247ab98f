package store

import (
	"container/list"
	"context"
	"database/sql"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"

	"gorm.io/gorm"
)

// stmtCacheSize bounds the statements the SQLite store keeps compiled. The
// hot paths use a dozen; statements whose text varies (an IN list of a new
// length) take the least recently used places.
const stmtCacheSize = 128

// stmtCache is the SQLite store's connection pool for GORM: it keeps the
// statements it runs often compiled. SQLite compiles a statement's text on
// every run unless the statement is prepared once and kept, and compiling
// was a fifth of hookd's CPU on the send → deliver path.
//
// A statement is kept from its second run on (text that varies with the
// data would otherwise cost a compile twice and push the hot statements
// out). Preparing needs the store's one connection, which a running
// transaction holds, so no caller ever waits for a preparation: a text
// seen twice is handed to a goroutine of the cache's own, which prepares it
// when the connection is free, and runs unprepared until then.
// Transactions run kept statements through Tx.StmtContext, which reuses
// what is compiled on the connection the transaction holds.
type stmtCache struct {
	db *sql.DB

	mu    sync.Mutex
	order *list.List               // of *cachedStmt, most recently used first
	stmts map[string]*list.Element // by query text
	texts map[string]textState     // texts not kept (yet): how far they got (bounded)

	pending chan string // texts to prepare
	stop    context.CancelFunc
	done    chan struct{}

	hits atomic.Int64 // runs through a kept statement (for tests)
}

type textState uint8

const (
	seenOnce     textState = iota + 1 // run once
	queued                            // handed to the preparer
	unpreparable                      // the preparer failed: it runs unprepared
)

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
	ctx, stop := context.WithCancel(context.Background())
	c := &stmtCache{db: db, order: list.New(), stmts: map[string]*list.Element{}, texts: map[string]textState{},
		pending: make(chan string, stmtCacheSize), stop: stop, done: make(chan struct{})}
	go c.prepareLoop(ctx)
	return c
}

// cacheable reports whether query is worth keeping compiled: a single data
// statement, not a schema change, a pragma or a script.
func cacheable(query string) bool {
	q := strings.TrimSpace(query)
	if strings.Contains(strings.TrimRight(q, "; \t\r\n"), ";") {
		return false
	}
	verb := q
	if i := strings.IndexFunc(q, unicode.IsSpace); i >= 0 {
		verb = q[:i]
	}
	switch strings.ToUpper(verb) {
	case "SELECT", "INSERT", "UPDATE", "DELETE", "WITH":
		return true
	}
	return false
}

// take returns query's kept statement, held for the caller until release,
// or nil; a text seen for the second time is queued to be prepared.
func (c *stmtCache) take(query string) *cachedStmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.stmts[query]; ok {
		c.order.MoveToFront(el)
		cs := el.Value.(*cachedStmt)
		cs.users++
		c.hits.Add(1)
		return cs
	}
	if !cacheable(query) {
		return nil
	}
	switch c.texts[query] {
	case 0:
		if len(c.texts) >= 4*stmtCacheSize {
			clear(c.texts) // a crowd of one-off texts: start again
		}
		c.texts[query] = seenOnce
	case seenOnce:
		select {
		case c.pending <- query:
			c.texts[query] = queued
		default: // the preparer is behind: a later run asks again
		}
	}
	return nil
}

// release lets go of a statement take returned.
func (c *stmtCache) release(cs *cachedStmt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs.users--
	if cs.evicted && cs.users == 0 {
		_ = cs.stmt.Close()
	}
}

// prepareLoop prepares the queued texts, each when the connection is free,
// until ctx ends.
func (c *stmtCache) prepareLoop(ctx context.Context) {
	defer close(c.done)
	for {
		select {
		case <-ctx.Done():
			return
		case q := <-c.pending:
			c.prepare(ctx, q)
		}
	}
}

// prepare compiles query and keeps it, evicting the least recently used
// statement beyond stmtCacheSize.
func (c *stmtCache) prepare(ctx context.Context, query string) {
	c.mu.Lock()
	_, kept := c.stmts[query]
	c.mu.Unlock()
	if kept {
		return
	}
	stmt, err := c.db.PrepareContext(ctx, query)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			// It runs unprepared, and its error, if any, comes from that
			// run; it is not queued again.
			c.texts[query] = unpreparable
		}
		return
	}
	if _, kept := c.stmts[query]; kept || ctx.Err() != nil { // kept meanwhile, or the cache is closing
		_ = stmt.Close() //nolint:sqlclosecheck // not kept
		return
	}
	delete(c.texts, query)
	c.stmts[query] = c.order.PushFront(&cachedStmt{query: query, stmt: stmt})
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
}

// close stops the preparer and closes every kept statement; any in use
// close as they are let go.
func (c *stmtCache) close() {
	c.stop()
	<-c.done
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
	if cs := c.take(query); cs != nil {
		defer c.release(cs)
		return cs.stmt.ExecContext(ctx, args...)
	}
	return c.db.ExecContext(ctx, query, args...)
}

func (c *stmtCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if cs := c.take(query); cs != nil {
		defer c.release(cs)
		return cs.stmt.QueryContext(ctx, args...) //nolint:sqlclosecheck // the caller (GORM) closes the rows
	}
	return c.db.QueryContext(ctx, query, args...) //nolint:sqlclosecheck // the caller (GORM) closes the rows
}

func (c *stmtCache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if cs := c.take(query); cs != nil {
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

// stmtCacheTx runs a transaction's statements through the cache.
//
// Inside the transaction every run of a text shares one compiled
// statement, so a text must not run again while rows of an earlier run of
// it are open (SQLite would refuse to bind it, or reset the open rows):
// the transaction remembers the rows each text last returned and runs the
// text unprepared while they are open. QueryRowContext, whose rows it
// cannot see, always runs unprepared.
type stmtCacheTx struct {
	*sql.Tx
	cache *stmtCache
	rows  map[string]*sql.Rows // the last rows of each text run through the cache
}

func (t *stmtCacheTx) GetDBConn() (*sql.DB, error) { return t.cache.db, nil }

// stmt returns query's kept statement bound to the transaction, or nil:
// not kept yet, or rows of an earlier run are still open.
func (t *stmtCacheTx) stmt(ctx context.Context, query string) *sql.Stmt {
	if r, ok := t.rows[query]; ok {
		if _, err := r.Columns(); err == nil {
			return nil // still open (Columns fails once they are closed)
		}
		delete(t.rows, query)
	}
	cs := t.cache.take(query)
	if cs == nil {
		return nil
	}
	defer t.cache.release(cs)
	return t.StmtContext(ctx, cs.stmt)
}

func (t *stmtCacheTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := t.stmt(ctx, query); s != nil { //nolint:sqlclosecheck // closed by database/sql when the transaction ends
		return s.ExecContext(ctx, args...)
	}
	return t.Tx.ExecContext(ctx, query, args...)
}

func (t *stmtCacheTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s := t.stmt(ctx, query) //nolint:sqlclosecheck // closed by database/sql when the transaction ends
	if s == nil {
		return t.Tx.QueryContext(ctx, query, args...) //nolint:sqlclosecheck // the caller (GORM) closes the rows
	}
	rows, err := s.QueryContext(ctx, args...)
	if err == nil {
		if t.rows == nil {
			t.rows = map[string]*sql.Rows{}
		}
		t.rows[query] = rows
	}
	return rows, err
}
