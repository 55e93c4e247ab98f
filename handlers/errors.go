package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/labstack/echo/v4"

	"github.com/hookd/hookd/customheaders"
	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/netguard"
	"github.com/hookd/hookd/ratelimit"
	"github.com/hookd/hookd/store"
)

// Error is an API error: an HTTP status, a stable code, a message safe for
// the client and optional details. RetryAfter, when positive, is sent as
// the Retry-After header (whole seconds, rounded up).
type Error struct {
	Status     int
	Code       string
	Message    string
	Details    map[string]any
	RetryAfter time.Duration
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// invalid is a 400 INVALID_REQUEST naming the field and the rule it broke.
func invalid(field, rule, message string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "INVALID_REQUEST", Message: message,
		Details: map[string]any{"field": field, "rule": rule}}
}

var (
	errNotFound     = &Error{Status: http.StatusNotFound, Code: "NOT_FOUND", Message: "resource not found"}
	errUnauthorized = &Error{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED", Message: "a valid API key is required: Authorization: Bearer hk_live_..."}
	errInternal     = &Error{Status: http.StatusInternalServerError, Code: "INTERNAL_ERROR", Message: "internal error; the request id finds it in hookd's log"}
	errUnavailable  = &Error{Status: http.StatusServiceUnavailable, Code: "SERVICE_UNAVAILABLE", Message: "the database is unavailable; retry shortly"}
	errTooLarge     = &Error{Status: http.StatusBadRequest, Code: "PAYLOAD_TOO_LARGE", Message: "the request body is too large"}
	// errClientGone: the client went away mid-request; nobody reads the answer.
	errClientGone = &Error{Status: 499, Code: "CLIENT_CLOSED_REQUEST", Message: "the client closed the request"}
)

// toAPIError maps any error a handler, the validator or Echo produced to the
// API error the client sees. It is the only place that decides statuses and
// codes.
func toAPIError(err error) *Error {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr
	}
	var authErr *customheaders.AuthError
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errNotFound
	case errors.Is(err, store.ErrEndpointNotFound):
		return &Error{Status: http.StatusNotFound, Code: "ENDPOINT_NOT_FOUND", Message: "no such endpoint in this project", Details: map[string]any{"field": "/endpoint_id"}}
	case errors.Is(err, store.ErrInvalidStatus):
		return &Error{Status: http.StatusConflict, Code: "INVALID_STATUS", Message: err.Error()}
	case errors.Is(err, store.ErrDeliveryInProgress):
		return &Error{Status: http.StatusConflict, Code: "DELIVERY_IN_PROGRESS", Message: err.Error()}
	case errors.Is(err, store.ErrRetryInProgress):
		return &Error{Status: http.StatusConflict, Code: "RETRY_IN_PROGRESS", Message: err.Error()}
	case errors.Is(err, store.ErrReplayLimit):
		return &Error{Status: http.StatusTooManyRequests, Code: "REPLAY_LIMIT_EXCEEDED", Message: err.Error()}
	case errors.Is(err, store.ErrRetentionExpired):
		return &Error{Status: http.StatusGone, Code: "RETENTION_EXPIRED", Message: err.Error()}
	case errors.Is(err, store.ErrIdempotencyMismatch):
		return &Error{Status: http.StatusConflict, Code: "IDEMPOTENCY_MISMATCH", Message: "this idempotency key was used with a different payload", Details: map[string]any{"field": "/idempotency_key"}}
	case errors.Is(err, store.ErrUnavailable):
		return errUnavailable
	case errors.Is(err, store.ErrDuplicateURL):
		return &Error{Status: http.StatusConflict, Code: "DUPLICATE_URL", Message: "another endpoint of this project has this URL"}
	case errors.Is(err, store.ErrMaxSigningKeys):
		return &Error{Status: http.StatusConflict, Code: "MAX_SIGNING_KEYS_REACHED", Message: fmt.Sprintf("an endpoint has at most %d active signing keys; delete one first", store.MaxActiveSigningKeys)}
	case errors.Is(err, store.ErrLastSigningKey):
		return &Error{Status: http.StatusConflict, Code: "CANNOT_DELETE_LAST_SIGNING_KEY", Message: "an endpoint always keeps one signing key; create a new key before deleting this one"}
	case errors.Is(err, netguard.ErrInvalidURL):
		return &Error{Status: http.StatusBadRequest, Code: "INVALID_ENDPOINT", Message: err.Error(), Details: map[string]any{"field": "/url"}}
	case errors.Is(err, netguard.ErrBlocked):
		return &Error{Status: http.StatusBadRequest, Code: "ENDPOINT_BLOCKED", Message: err.Error(), Details: map[string]any{"field": "/url"}}
	case errors.Is(err, netguard.ErrUnreachable):
		return &Error{Status: http.StatusBadRequest, Code: "ENDPOINT_UNREACHABLE", Message: err.Error(), Details: map[string]any{"field": "/url"}}
	case errors.Is(err, store.ErrDuplicateEventType):
		return &Error{Status: http.StatusConflict, Code: "DUPLICATE_EVENT_TYPE", Message: "the project has an event type of that name", Details: map[string]any{"field": "/name"}}
	case errors.Is(err, store.ErrEventIdempotencyMismatch):
		return &Error{Status: http.StatusConflict, Code: "IDEMPOTENCY_MISMATCH", Message: "the idempotency key was used for an event with another type, owner or payload", Details: map[string]any{"field": "/idempotency_key"}}
	case errors.As(err, &authErr):
		return &Error{Status: http.StatusBadRequest, Code: "INVALID_REQUEST", Message: authErr.Error(), Details: map[string]any{"field": authErr.Field}}
	case errors.Is(err, customheaders.ErrInvalid):
		return &Error{Status: http.StatusBadRequest, Code: "INVALID_HEADERS", Message: err.Error(), Details: map[string]any{"field": "/headers"}}
	case errors.Is(err, echo.ErrStatusRequestEntityTooLarge):
		return errTooLarge
	case errors.Is(err, context.Canceled):
		return errClientGone
	}
	var reqErr *openapi3filter.RequestError
	if errors.As(err, &reqErr) {
		return fromRequestError(reqErr)
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return fromHTTPError(he)
	}
	return errInternal
}

// fromRequestError explains a failed schema rule: which field, which rule.
func fromRequestError(e *openapi3filter.RequestError) *Error {
	if p := e.Parameter; p != nil {
		if p.In == openapi3.ParameterInPath {
			// A malformed id names nothing: 404, as HookBridge's SDK expects.
			return errNotFound
		}
		rule, reason := "invalid", e.Reason
		var se *openapi3.SchemaError
		if errors.As(e.Err, &se) {
			rule, reason = se.SchemaField, se.Reason
		} else if e.Err != nil && reason == "" {
			reason = e.Err.Error()
		}
		return invalid(p.Name, rule, fmt.Sprintf("%s parameter %q: %s", p.In, p.Name, reason))
	}
	var se *openapi3.SchemaError
	if errors.As(e.Err, &se) {
		field := "/" + strings.Join(se.JSONPointer(), "/")
		return invalid(field, se.SchemaField, fmt.Sprintf("request body %s: %s", field, se.Reason))
	}
	var pe *openapi3filter.ParseError
	if errors.As(e.Err, &pe) {
		root := pe.RootCause()
		var ls *loneSurrogateError
		switch {
		case errors.As(root, &ls):
			return invalid("body", "unicode", ls.Error()+": send the character itself, or both halves of its pair")
		case errors.Is(root, errNotUTF8):
			return invalid("body", "utf8", errNotUTF8.Error()+": JSON must be sent as UTF-8")
		}
		return invalid("body", "json", "the request body is not valid JSON")
	}
	if e.RequestBody != nil && errors.Is(e.Err, openapi3filter.ErrInvalidRequired) {
		return invalid("body", "required", "a JSON request body is required")
	}
	if e.RequestBody != nil && strings.HasPrefix(e.Reason, "header Content-Type has unexpected value") {
		return wrongContentType(e)
	}
	msg := e.Reason
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	return invalid("body", "invalid", "invalid request: "+msg)
}

// wrongContentType says what to send when a body came with a Content-Type
// other than JSON, or none. curl -d without -H sends
// application/x-www-form-urlencoded, so that case says so.
func wrongContentType(e *openapi3filter.RequestError) *Error {
	got := ""
	if e.Input != nil && e.Input.Request != nil {
		got = e.Input.Request.Header.Get("Content-Type")
	}
	msg := "the request body must be sent with the header Content-Type: application/json"
	switch {
	case got == "":
		msg += "; this request has no Content-Type"
	case strings.HasPrefix(got, "application/x-www-form-urlencoded"):
		msg += fmt.Sprintf("; this request's is %q, which curl -d sends unless given -H 'Content-Type: application/json'", got)
	default:
		msg += fmt.Sprintf("; this request's is %q", got)
	}
	return invalid("Content-Type", "content_type", msg)
}

func fromHTTPError(he *echo.HTTPError) *Error {
	if he.Internal != nil {
		if inner := toAPIError(he.Internal); inner != errInternal {
			return inner
		}
	}
	msg, _ := he.Message.(string)
	switch he.Code {
	case http.StatusNotFound:
		// echo-middleware turns every routing failure into a 404 whose
		// message is the router's reason.
		if msg == routers.ErrMethodNotAllowed.Error() {
			return &Error{Status: http.StatusMethodNotAllowed, Code: "METHOD_NOT_ALLOWED", Message: "this path does not accept that method"}
		}
		return &Error{Status: http.StatusNotFound, Code: "NOT_FOUND", Message: "no such path"}
	case http.StatusMethodNotAllowed:
		return &Error{Status: http.StatusMethodNotAllowed, Code: "METHOD_NOT_ALLOWED", Message: "this path does not accept that method"}
	case http.StatusUnauthorized, http.StatusForbidden:
		return errUnauthorized
	case http.StatusRequestEntityTooLarge:
		return errTooLarge
	case http.StatusServiceUnavailable:
		return errUnavailable
	case http.StatusBadRequest:
		if msg == "" {
			msg = "invalid request"
		}
		return invalid("request", "invalid", msg)
	}
	if he.Code >= 400 && he.Code < 500 {
		return &Error{Status: he.Code, Code: "INVALID_REQUEST", Message: http.StatusText(he.Code)}
	}
	return errInternal
}

// errorHandler is Echo's HTTPErrorHandler: it renders every error in the
// envelope and logs 5xx with their detail.
func errorHandler(log *slog.Logger, spec *openapi3.T) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		apiErr := toAPIError(err)
		ctx := c.Request().Context()
		if apiErr.Status >= 500 {
			// 503 is a state, not a fault: the database is unreachable
			// (the metrics and readiness show it) or the process is
			// draining. Warn, so ERROR lines stay worth an alert.
			level := slog.LevelError
			if apiErr.Status == http.StatusServiceUnavailable {
				level = slog.LevelWarn
			}
			log.Log(ctx, level, "request failed", "request_id", RequestID(ctx), "method", c.Request().Method,
				"route", c.Path(), "status", apiErr.Status, "error", err.Error())
		}
		body := gen.ErrorEnvelope{
			Error: gen.Error{Code: apiErr.Code, Message: apiErr.Message},
			Meta:  meta(ctx),
		}
		if apiErr.Details != nil {
			d := apiErr.Details
			body.Error.Details = &d
		}
		if apiErr.RetryAfter > 0 {
			c.Response().Header().Set("Retry-After", strconv.Itoa(ratelimit.RetryAfterSeconds(apiErr.RetryAfter)))
		}
		if apiErr.Status == http.StatusMethodNotAllowed {
			c.Response().Header().Set("Allow", allowHeader(spec, c.Request().URL.Path))
		}
		var werr error
		if c.Request().Method == http.MethodHead {
			werr = c.NoContent(apiErr.Status)
		} else {
			werr = c.JSON(apiErr.Status, body)
		}
		if werr != nil {
			log.DebugContext(ctx, "writing the error response failed", "request_id", RequestID(ctx), "error", werr.Error())
		}
	}
}

// allowHeader lists the methods the spec allows on the request's path.
func allowHeader(spec *openapi3.T, reqPath string) string {
	for path, item := range spec.Paths.Map() {
		if pathMatches(path, reqPath) {
			var ms []string
			for m := range item.Operations() {
				ms = append(ms, m)
			}
			sort.Strings(ms)
			return strings.Join(ms, ", ")
		}
	}
	return ""
}

// pathMatches compares a spec path template with a request path segment by
// segment ("{x}" matches any one segment).
func pathMatches(tmpl, path string) bool {
	ts, ps := strings.Split(tmpl, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		return false
	}
	for i := range ts {
		if strings.HasPrefix(ts[i], "{") || ts[i] == ps[i] {
			continue
		}
		return false
	}
	return true
}
