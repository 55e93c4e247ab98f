package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

// Sentinel errors. Methods document which they return; callers compare with
// errors.Is. Anything else is an unexpected failure.
var (
	// ErrNotFound: no such row in the caller's project (or it is deleted).
	ErrNotFound = errors.New("not found")
	// ErrDuplicateURL: another live endpoint of the project has the same
	// normalised URL.
	ErrDuplicateURL = errors.New("duplicate endpoint URL")
	// ErrDuplicateName: a project with that name exists.
	ErrDuplicateName = errors.New("duplicate name")
	// ErrMaxSigningKeys: the endpoint already has MaxActiveSigningKeys keys.
	ErrMaxSigningKeys = errors.New("maximum number of signing keys reached")
	// ErrLastSigningKey: the key is the endpoint's only one.
	ErrLastSigningKey = errors.New("cannot delete the last signing key")
	// ErrUnavailable: the database cannot be reached right now.
	ErrUnavailable = errors.New("database unavailable")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store closed")
)

// translate turns GORM and driver errors into the sentinels above. what names
// the operation for the wrapped error text.
func translate(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gorm.ErrRecordNotFound):
		return ErrNotFound
	case isUnavailable(err):
		return fmt.Errorf("%s: %w: %w", what, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// isUnavailable reports whether err means the database could not be reached
// (as opposed to the query being wrong).
func isUnavailable(err error) bool {
	var opErr *net.OpError
	var connErr *pgconn.ConnectError
	switch {
	case errors.Is(err, driver.ErrBadConn),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, pgconn.ErrConnClosed),
		errors.As(err, &opErr),
		errors.As(err, &connErr):
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception; 57P01-03: admin shutdown, crash
		// shutdown, cannot connect now; 40001/40P01: serialization failure
		// and deadlock, which a retry resolves.
		return len(pgErr.Code) == 5 && (pgErr.Code[:2] == "08" || pgErr.Code == "57P01" || pgErr.Code == "57P02" ||
			pgErr.Code == "57P03" || pgErr.Code == "40001" || pgErr.Code == "40P01")
	}
	return false
}
