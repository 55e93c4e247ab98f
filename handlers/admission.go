package handlers

import (
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

// DefaultMaxInFlight is how many API requests one process works on at once
// unless Server.MaxInFlight says otherwise.
const DefaultMaxInFlight = 512

// admitWait is how long a request waits for a free slot before it is
// refused: long enough to ride out a burst, short enough that a refused
// client retries soon.
const admitWait = 100 * time.Millisecond

// errOverloaded answers a request refused by the in-flight limit.
var errOverloaded = &Error{Status: http.StatusServiceUnavailable, Code: "OVERLOADED",
	Message: "hookd is at capacity; retry after the Retry-After interval (a send that got this answer was not stored)", RetryAfter: time.Second}

// admission bounds the API requests (paths under /v1/) this process works
// on at once to max (DefaultMaxInFlight when 0; no bound when negative).
// A request over it waits up to admitWait for a slot, before its body is
// read; then it is refused with 503 OVERLOADED and Retry-After. Offered
// more than the database can commit, the process so keeps its memory
// bounded and answers the requests it took within their usual time, and
// the clients' retries find the capacity as it frees, rather than every
// request waiting longer with its body held in memory. Health, readiness,
// the spec, the docs and the console are never refused. (Echo builds the
// middleware chain per request: the slots are made here, once.)
func admission(max int) echo.MiddlewareFunc {
	if max == 0 {
		max = DefaultMaxInFlight
	}
	if max < 0 {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	slots := make(chan struct{}, max)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !strings.HasPrefix(c.Request().URL.Path, "/v1/") {
				return next(c)
			}
			select {
			case slots <- struct{}{}:
			default:
				t := time.NewTimer(admitWait)
				select {
				case slots <- struct{}{}:
					t.Stop()
				case <-t.C:
					return errOverloaded
				case <-c.Request().Context().Done():
					t.Stop()
					return errClientGone
				}
			}
			defer func() { <-slots }()
			return next(c)
		}
	}
}
