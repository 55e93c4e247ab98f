// Package poll waits, in tests, for a condition to hold. It checks the
// condition on the calling (test) goroutine, so the condition may use
// require: testify's Eventually runs it on a goroutine of its own, where
// require's FailNow must not be called.
package poll

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Interval is how often Until checks its condition.
const Interval = 10 * time.Millisecond

// Until checks cond every Interval until it holds, and fails the test if it
// still does not after timeout, with msgAndArgs as require's message (a lone
// func() string is called then, for a message that shows the last state). The timeout bounds only how long a failing
// test takes: a passing one returns as soon as cond holds. Make it generous
// (a loaded machine must not fail a correct program); it is not a claim
// about how fast anything is.
func Until(t testing.TB, timeout time.Duration, cond func() bool, msgAndArgs ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(Interval)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			if len(msgAndArgs) == 1 {
				if f, ok := msgAndArgs[0].(func() string); ok {
					msgAndArgs = []any{f()}
				}
			}
			require.Fail(t, fmt.Sprintf("still not so after %s", timeout), msgAndArgs...)
		}
		<-tick.C
	}
}
