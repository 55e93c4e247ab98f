package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Leases are judged against the clock (the database's on PostgreSQL, the
// process's on SQLite); neither can be set by a test. Instead of sleeping
// until a short lease runs out, which ties the test's checks to how fast the
// machine is, tests take long leases and move the time stamps back, which is
// what the passing of time does to them.

// ageLeases moves the lease end of each message back by d, as if d had
// passed: a lease that had less than d left has now ended.
func (f fixture) ageLeases(t *testing.T, d time.Duration, ids ...string) {
	t.Helper()
	ctx := context.Background()
	for _, id := range ids {
		m, err := f.s.GetMessage(ctx, f.project.ID, id)
		require.NoError(t, err)
		require.NotNil(t, m.LeaseUntil, "message %s is not leased", id)
		_, err = f.s.DB().ExecContext(ctx, rebindFor(f.s, `UPDATE messages SET lease_until = $1 WHERE id = $2`), m.LeaseUntil.Add(-d), id)
		require.NoError(t, err)
	}
}
