// Package testdb gives tests their own real databases: a fresh PostgreSQL
// database per call (dropped when the test ends) or a SQLite file in the
// test's temporary directory. PostgreSQL is never mocked and never skipped:
// when it cannot be reached the test fails and says how to start it.
package testdb

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/ids"
)

// DefaultAdminURL is the server tests use unless HOOKD_TEST_DATABASE_URL says
// otherwise: the local PostgreSQL with trust auth.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// AdminURL is the PostgreSQL URL tests create their databases through.
func AdminURL() string {
	if u := os.Getenv("HOOKD_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return DefaultAdminURL
}

// Dialects lists the databases a conformance test runs on.
var Dialects = []string{"postgres", "sqlite"}

// New returns the URL of a fresh, empty database of the dialect.
func New(t testing.TB, dialect string) string {
	t.Helper()
	switch dialect {
	case "postgres":
		return NewPostgres(t)
	case "sqlite":
		return NewSQLite(t)
	}
	t.Fatalf("unknown dialect %q", dialect)
	return ""
}

// NewSQLite returns "sqlite:PATH" for a file in a new temporary directory.
func NewSQLite(t testing.TB) string {
	t.Helper()
	return "sqlite:" + filepath.Join(t.TempDir(), "hookd.db")
}

// NewPostgres creates an empty database on the test server and returns its
// URL. The database is dropped when the test ends.
func NewPostgres(t testing.TB) string {
	t.Helper()
	admin := AdminURL()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("PostgreSQL is required for this test and is not reachable at %s: %v\n"+
			"start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n"+
			"or point HOOKD_TEST_DATABASE_URL at another server", admin, err)
	}
	defer conn.Close(ctx)
	name := "hookd_t_" + strings.ToLower(ids.RandomAlnum(12))
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse %s: %v", admin, err)
	}
	u.Path = "/" + name
	return u.String()
}

// DatabaseName is the database part of a PostgreSQL URL.
func DatabaseName(t testing.TB, pgURL string) string {
	t.Helper()
	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}
