//go:build !unix

package main

// lockSQLite does nothing where flock is not available: there, nothing stops
// a second `hookd serve` on one SQLite database, and running one is the
// operator's job.
func lockSQLite(string) (release func(), err error) { return func() {}, nil }
