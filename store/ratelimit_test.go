package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestTakeTokenWaitsAtMostOneInterval: an endpoint's bucket gives its burst
// at once, then says to come back when the next token is there, which is
// never more than one interval (1/rps) away; asking again sooner takes
// nothing. (The delivery tests can only bound the engine's waits from
// below: a loaded machine stretches them.)
func TestTakeTokenWaitsAtMostOneInterval(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, f fixture) {
		ctx := context.Background()
		e, _ := f.endpoint(t, "https://rl.example.com/")
		const rps, burst = 1, 2
		for i := range burst {
			wait, err := f.s.TakeToken(ctx, f.project.ID, e.ID, rps, burst)
			require.NoError(t, err)
			require.Zero(t, wait, "token %d of the burst", i+1)
		}
		held := 0
		for range 20 {
			wait, err := f.s.TakeToken(ctx, f.project.ID, e.ID, rps, burst)
			require.NoError(t, err)
			require.LessOrEqual(t, wait, time.Second/rps)
			if wait > 0 {
				held++
			}
		}
		// A token comes once a second: at most the few whole seconds
		// these calls took were answered with one.
		require.Positive(t, held, "an empty bucket held the caller back")
	})
}
