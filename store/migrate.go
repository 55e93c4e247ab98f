package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"gorm.io/gorm"
)

// migrations holds one directory per dialect; each file is
// NNNN_description.sql and is applied once, in order, inside one transaction
// with the rest of a Migrate call.
//
//go:embed migrations
var migrations embed.FS

// migrationLockID is the PostgreSQL advisory lock that serialises migrations
// of several hookd processes starting together.
const migrationLockID = 0x686f6f6b64 // "hookd"

// Migration is one versioned schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations lists the dialect's migrations in order.
func (s *Store) Migrations() ([]Migration, error) {
	dir := path.Join("migrations", s.dialect)
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration file %s is not named NNNN_name.sql", e.Name())
		}
		b, err := fs.ReadFile(migrations, path.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// Migrate applies every migration the database has not seen, in one
// transaction, and returns the versions it applied. Several processes may
// call it at once: on PostgreSQL an advisory lock serialises them, on SQLite
// the write lock does.
func (s *Store) Migrate(ctx context.Context) (applied []int, err error) {
	all, err := s.Migrations()
	if err != nil {
		return nil, err
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if s.dialect == Postgres {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", migrationLockID).Error; err != nil {
				return err
			}
		}
		if err := tx.Exec(`CREATE TABLE IF NOT EXISTS hookd_schema_migrations (
			version integer PRIMARY KEY,
			name text NOT NULL,
			applied_at timestamp NOT NULL
		)`).Error; err != nil {
			return err
		}
		var done []int
		if err := tx.Raw("SELECT version FROM hookd_schema_migrations").Scan(&done).Error; err != nil {
			return err
		}
		seen := map[int]bool{}
		for _, v := range done {
			seen[v] = true
		}
		for _, m := range all {
			if seen[m.Version] {
				continue
			}
			if err := tx.Exec(m.SQL).Error; err != nil {
				return fmt.Errorf("migration %04d_%s: %w", m.Version, m.Name, err)
			}
			if err := tx.Exec("INSERT INTO hookd_schema_migrations (version, name, applied_at) VALUES (?, ?, ?)", m.Version, m.Name, Now()).Error; err != nil {
				return err
			}
			applied = append(applied, m.Version)
		}
		return nil
	})
	if err != nil {
		return nil, translate(err, "migrate")
	}
	return applied, nil
}
