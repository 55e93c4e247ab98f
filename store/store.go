// Package store persists hookd's data with GORM, on PostgreSQL in production
// or an embedded SQLite file by default. It is the only package that imports
// GORM or a database driver. Every query that reads or changes a tenant's rows
// filters on its project id, so another project's rows are indistinguishable
// from missing ones.
package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/libtnb/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Dialects.
const (
	Postgres = "postgres"
	SQLite   = "sqlite"
)

// DefaultMaxConns is the PostgreSQL pool size when Options.MaxConns is zero.
const DefaultMaxConns = 25

// Options says which database to open.
type Options struct {
	// DatabaseURL is "postgres://…" (or "postgresql://…") for PostgreSQL, or
	// "sqlite:PATH" for a SQLite file. Empty means SQLite at
	// DataDir/hookd.db.
	DatabaseURL string
	// DataDir holds the default SQLite file; it is created (mode 0700) if
	// missing. Empty means "./data".
	DataDir string
	// MaxConns caps the PostgreSQL pool; zero means DefaultMaxConns. SQLite
	// always uses one connection (writers are serialised anyway).
	MaxConns int
	// ApplicationName names this process's PostgreSQL sessions
	// (pg_stat_activity.application_name), unless the URL sets
	// application_name itself. Empty leaves it unset. Ignored by SQLite.
	ApplicationName string
	// Log receives what the store does on its own, outside any call
	// (taking messages handed over by other processes, remote.go); nil
	// means slog.Default().
	Log *slog.Logger
}

// Store is an open database. It is safe for concurrent use; Close releases it.
type Store struct {
	db      *gorm.DB
	sqlDB   *sql.DB
	pool    *pgxpool.Pool // nil on SQLite
	stmts   *stmtCache    // SQLite's compiled statements (stmtcache.go); nil on PostgreSQL
	dialect string
	hot     hotPath       // the dialect's hot-path code, chosen once (hotpath.go)
	where   string        // what was opened, without credentials, for logs
	due     chan struct{} // see Due
	// instance tells this store's own due notifications from other
	// processes' (their payload), see ListenDue.
	instance string
	// handoff, if set, takes new messages straight to workers (handoff.go).
	handoff atomic.Pointer[handoff]
	// remote, while set, is the worker processes this api process hands
	// messages to (remote.go).
	remote  atomic.Pointer[remoteWorkers]
	log     *slog.Logger  // see Options.Log
	waiting waitingHanded // handed messages waiting for a worker (remote.go)
	// takeListening is whether this process listens on its take channel
	// (it announces itself only then, remote.go).
	takeListening atomic.Bool
	// announceNow makes a worker process announce itself at once (it gave
	// back handed messages, and may have stopped accepting them).
	announceNow chan struct{}
	// Whether FIFO endpoints exist, and when that was last read
	// (fifoInUse, PostgreSQL).
	fifoSeen      atomic.Bool
	fifoCheckedAt atomic.Value // time.Time

	// group commit of sends (PostgreSQL), see sendbatch.go
	sends        chan sendRequest
	records      chan recordRequest
	stopBatchers chan struct{}
	batchersDone sync.WaitGroup
	closeOnce    sync.Once

	stats  statsBuffer // delivery statistics not yet written, see stats.go
	ingest ingestCache // inbound endpoints the ingest route read recently, see inbound.go
}

// Open connects to the database Options name. It does not migrate; call
// Migrate. The error says what to fix.
func Open(ctx context.Context, opts Options) (*Store, error) {
	gcfg := &gorm.Config{
		TranslateError:         true,
		Logger:                 logger.Discard,
		SkipDefaultTransaction: true,
		NowFunc:                Now,
	}
	switch {
	case strings.HasPrefix(opts.DatabaseURL, "postgres://"), strings.HasPrefix(opts.DatabaseURL, "postgresql://"):
		pcfg, err := pgxpool.ParseConfig(opts.DatabaseURL)
		if err != nil {
			return nil, fmt.Errorf("database URL: %w", err)
		}
		pcfg.MaxConns = int32(DefaultMaxConns)
		if opts.MaxConns > 0 {
			pcfg.MaxConns = int32(opts.MaxConns) //nolint:gosec // bounded by config validation
		}
		if _, set := pcfg.ConnConfig.RuntimeParams["application_name"]; !set && opts.ApplicationName != "" {
			pcfg.ConnConfig.RuntimeParams["application_name"] = opts.ApplicationName
		}
		// The queue's claim must walk its index in order: a plain index scan
		// marks the dead entries left by every status change as dead, so
		// later claims skip them; a bitmap scan never does and rereads them
		// all until vacuum runs (measured: ~1,200 dead entries read per
		// claim after a few seconds of load). hookd's other queries are
		// single-index lookups that do not need bitmap scans.
		if _, set := pcfg.ConnConfig.RuntimeParams["enable_bitmapscan"]; !set {
			pcfg.ConnConfig.RuntimeParams["enable_bitmapscan"] = "off"
		}
		pcfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error {
			// Read timestamps back in UTC, as they were written.
			c.TypeMap().RegisterType(&pgtype.Type{Name: "timestamptz", OID: pgtype.TimestamptzOID, Codec: &pgtype.TimestamptzCodec{ScanLocation: time.UTC}})
			return nil
		}
		pool, err := pgxpool.NewWithConfig(ctx, pcfg)
		if err != nil {
			return nil, translate(err, "open PostgreSQL at "+redact(opts.DatabaseURL))
		}
		sqlDB := stdlib.OpenDBFromPool(pool)
		db, err := gorm.Open(postgres.New(postgres.Config{Conn: sqlDB}), gcfg)
		if err != nil {
			pool.Close()
			return nil, translate(err, "open PostgreSQL at "+redact(opts.DatabaseURL))
		}
		st := &Store{db: db, sqlDB: sqlDB, pool: pool, dialect: Postgres, where: redact(opts.DatabaseURL), due: make(chan struct{}, 1),
			instance: rand.Text(), stopBatchers: make(chan struct{}), announceNow: make(chan struct{}, 1), log: opts.Log,
			waiting: waitingHanded{wake: make(chan struct{}, 1)}}
		if st.log == nil {
			st.log = slog.Default()
		}
		pg := postgresPath{st}
		st.hot = pg
		pg.startSendBatchers()
		pg.startRecordBatchers()
		st.startStatsFlusher()
		return st, nil
	case opts.DatabaseURL == "" || strings.HasPrefix(opts.DatabaseURL, "sqlite:"):
		path, _ := SQLitePath(opts)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create the directory for %s: %w", path, err)
		}
		// WAL lets readers run beside the writer; synchronous=FULL makes every
		// commit durable before it returns; _txlock=immediate takes the write
		// lock at BEGIN so read-then-write transactions cannot interleave.
		dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_txlock=immediate&_time_format=sqlite&_timezone=UTC"
		sqlDB, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("open SQLite %s: %w", path, err)
		}
		sqlDB.SetMaxOpenConns(1)
		sqlDB.SetConnMaxIdleTime(0)
		if err := sqlDB.PingContext(ctx); err != nil {
			_ = sqlDB.Close()
			return nil, fmt.Errorf("open SQLite %s: %w", path, err)
		}
		stmts := newStmtCache(sqlDB)
		db, err := gorm.Open(sqlite.Dialector{Conn: stmts}, gcfg)
		if err != nil {
			stmts.close()
			_ = sqlDB.Close()
			return nil, fmt.Errorf("open SQLite %s: %w", path, err)
		}
		st := &Store{db: db, sqlDB: sqlDB, stmts: stmts, dialect: SQLite, where: "sqlite:" + path, due: make(chan struct{}, 1),
			stopBatchers: make(chan struct{})}
		sq := sqlitePath{st}
		st.hot = sq
		sq.startBatchers()
		st.startStatsFlusher()
		return st, nil
	default:
		return nil, errors.New(`database URL must start with "postgres://", "postgresql://" or "sqlite:"`)
	}
}

// SQLitePath returns the file of the SQLite database opts name: the path
// of a "sqlite:PATH" URL, or DataDir/hookd.db ("data/hookd.db" without a
// DataDir) when DatabaseURL is empty. ok is false when opts name another
// database.
func SQLitePath(opts Options) (path string, ok bool) {
	if opts.DatabaseURL != "" && !strings.HasPrefix(opts.DatabaseURL, "sqlite:") {
		return "", false
	}
	path = strings.TrimPrefix(strings.TrimPrefix(opts.DatabaseURL, "sqlite:"), "//")
	if path == "" {
		dir := opts.DataDir
		if dir == "" {
			dir = "data"
		}
		path = filepath.Join(dir, "hookd.db")
	}
	return path, true
}

func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "postgres://…"
	}
	u.User = nil
	u.RawQuery = ""
	return u.String()
}

// Where describes the open database without credentials, for logs.
func (s *Store) Where() string { return s.where }

// Dialect is the database the store runs on: Postgres or SQLite.
func (s *Store) Dialect() string { return s.dialect }

// DB is the underlying *sql.DB, for the queue and for tests that inspect rows.
func (s *Store) DB() *sql.DB { return s.sqlDB }

// Ping checks that the database answers; it returns ErrUnavailable if not.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// Close releases the connections.
func (s *Store) Close() error {
	if s.stopBatchers != nil {
		s.closeOnce.Do(func() { close(s.stopBatchers) })
		s.batchersDone.Wait()
		// The batchers' last records counted after the flusher's last write.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.FlushStats(ctx)
		cancel()
	}
	if s.stmts != nil {
		s.stmts.close()
	}
	err := s.sqlDB.Close()
	if s.pool != nil {
		s.pool.Close()
	}
	return err
}

// Now is the store's clock: UTC, truncated to microseconds (PostgreSQL's
// precision), so values read back equal values written on both dialects.
func Now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
