package handlers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hookd/hookd/ratelimit"
)

// The API rate limits (README, "Rate limits"): every project
// has a token bucket per class of request — management routes and sends —
// holding its limit and refilling it over a minute; a client address has
// one for failed authentications. They are counted in this process's
// memory: with N processes behind a load balancer a project can make up to
// N times its limit. /healthz, /readyz, /openapi.* and /docs need no API
// key and are never limited.

// limitRequests refuses, with 429 BURST_LIMIT_EXCEEDED and Retry-After, an
// authenticated request over its project's limit: sends count against the
// project's send limit (none by default), every other route against its
// management limit (the server default unless the project sets one). The
// limits come with the cached authentication; no database query is made.
func (s *Server) limitRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, ok := c.Get(authKey).(principal)
		if !ok {
			return next(c) // an unsecured route
		}
		now := s.limitNow()
		switch c.Request().URL.Path {
		case sendPath, publishPath: // a publish counts as one send
			limit := p.limits.SendRateLimitPerMinute // 0: unlimited
			if ok, wait := s.sendLimits.Allow(p.key.ProjectID, limit, now); !ok {
				return errBurstLimit("send", limit, wait)
			}
			return next(c)
		case sendBatchPath:
			// One send per item, which only the handler knows: it takes
			// them through the request context.
			limit := p.limits.SendRateLimitPerMinute
			take := func(n int) error {
				if limit > 0 && n > limit {
					// It could never pass: not a 429 to retry.
					return &Error{Status: http.StatusBadRequest, Code: "INVALID_REQUEST",
						Message: fmt.Sprintf("a batch of %d sends exceeds the project's send limit of %d per minute: send smaller batches", n, limit),
						Details: map[string]any{"field": "/messages", "rule": "send-limit", "limit_per_minute": limit}}
				}
				if ok, wait := s.sendLimits.AllowN(p.key.ProjectID, limit, n, s.limitNow()); !ok {
					return errBurstLimit("send", limit, wait)
				}
				return nil
			}
			c.SetRequest(c.Request().WithContext(context.WithValue(c.Request().Context(), sendTakerKey, take)))
			return next(c)
		}
		limit := p.limits.RateLimitPerMinute
		if limit == 0 {
			limit = s.rateLimitDefault()
		}
		if ok, wait := s.mgmtLimits.Allow(p.key.ProjectID, limit, now); !ok {
			return errBurstLimit("management", limit, wait)
		}
		return next(c)
	}
}

func (s *Server) rateLimitDefault() int {
	if s.RateLimitDefault > 0 {
		return s.RateLimitDefault
	}
	return DefaultRateLimitPerMinute
}

// authFailureLimit is the failed authentications allowed per minute per
// client address; 0 means no limit (ratelimit treats it as unlimited).
func (s *Server) authFailureLimit() int {
	switch {
	case s.AuthFailureLimit < 0:
		return 0
	case s.AuthFailureLimit == 0:
		return DefaultAuthFailureLimit
	}
	return s.AuthFailureLimit
}

func errBurstLimit(scope string, limit int, wait time.Duration) *Error {
	what := "management API requests"
	if scope == "send" {
		what = "sends"
	}
	secs := ratelimit.RetryAfterSeconds(wait)
	return &Error{
		Status:     http.StatusTooManyRequests,
		Code:       "BURST_LIMIT_EXCEEDED",
		Message:    fmt.Sprintf("this project's limit of %d %s per minute is used up; retry after %d s", limit, what, secs),
		Details:    map[string]any{"scope": scope, "limit_per_minute": limit, "retry_after_seconds": secs},
		RetryAfter: wait,
	}
}

func errAuthRateLimited(wait time.Duration) *Error {
	secs := ratelimit.RetryAfterSeconds(wait)
	return &Error{
		Status:     http.StatusTooManyRequests,
		Code:       "RATE_LIMITED",
		Message:    fmt.Sprintf("too many failed authentication attempts from this address; retry after %d s", secs),
		Details:    map[string]any{"retry_after_seconds": secs},
		RetryAfter: wait,
	}
}

// clientIPExtractor is how Echo's RealIP finds the client: the TCP peer,
// or, when the peer is one of the trusted proxies, the nearest address in
// X-Forwarded-For that is not a trusted proxy. Echo's own defaults (which
// trust every private and loopback address) are switched off.
func clientIPExtractor(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// clientKey is the client address that failed authentications are counted
// against: an IPv4 address, or the /64 of an IPv6 address (one host
// usually has a whole /64 to pick from).
func (s *Server) clientKey(c echo.Context) string {
	ip := c.RealIP()
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip // not expected from a TCP peer; counted as it is
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// sendTakerKey holds, for a batch send, the function that takes its sends
// from the project's send limit (or returns the 429).
type sendTakerCtxKey struct{}

var sendTakerKey sendTakerCtxKey

// takeSends takes n sends from the caller's send limit.
func takeSends(ctx context.Context, n int) error {
	if take, ok := ctx.Value(sendTakerKey).(func(int) error); ok {
		return take(n)
	}
	return errors.New("takeSends: the send limit was not attached to the request") // fail closed
}
