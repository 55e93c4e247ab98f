//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// lockSQLite makes `hookd serve` the only server of the SQLite database
// file dbPath: it takes an exclusive flock on dbPath+".lock", beside the
// database, and holds it until release is called or the process ends (the
// kernel drops the lock on any exit, a crash included, so a stale lock file
// never blocks a restart; the file itself stays). While another process
// holds it, lockSQLite fails at once with an error naming the database, its
// directory and the holder's process id. Only serve takes the lock: the
// other commands (migrate, project, apikey, masterkey) are short writers,
// which SQLite serialises on its own, and may run beside a server.
func lockSQLite(dbPath string) (release func(), err error) {
	if dbPath == ":memory:" || strings.HasPrefix(dbPath, "file::memory:") {
		return func() {}, nil // private to this process
	}
	dir := filepath.Dir(dbPath)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the directory for %s: %w", dbPath, err)
	}
	lockPath := dbPath + ".lock"
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open the lock file of the SQLite database: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(lockPath); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				holder = fmt.Sprintf(" (process %d)", pid)
			}
		}
		_ = f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("another hookd serve%s is already serving the SQLite database %s in directory %s (it holds the lock %s); "+
				"only one process may serve a SQLite database: stop that one, or give this one its own --data-dir", holder, dbPath, dir, lockPath)
		}
		return nil, fmt.Errorf("lock the SQLite database with %s: %w", lockPath, err)
	}
	// For the message above, when another process tries.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	// The closure keeps f reachable: were f collected, its finalizer would
	// close it and drop the lock.
	return func() { _ = f.Close() }, nil
}
