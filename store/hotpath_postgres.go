package store

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"
)

// postgresPath is the hot path on PostgreSQL (hotpath.go). Authenticating
// a request, claiming due messages and recording an attempt (and inserting
// messages, sendbatch.go; publishing, publish_pg.go) go straight to the
// pgx pool: one prepared statement each, no GORM statement building (which
// was a visible share of hookd's CPU per message in profiles). Sends and
// attempt records are group-committed (sendbatch.go, recordbatch.go).
// Leases are judged by the database's clock, and other processes are woken
// with NOTIFY.
type postgresPath struct{ *Store }

// recordAttemptPostgres is the single attempt record: one statement, one
// round trip, the attempt numbered by the update.
var recordAttemptPostgres = strings.NewReplacer(
	"@now", "CAST(@now AS timestamptz)", "@started", "CAST(@started AS timestamptz)", "@next", "CAST(@next AS timestamptz)",
	"@status", "CAST(@status AS text)", "@tok", "CAST(@tok AS text)", "@lasterr", "CAST(@lasterr AS text)",
	"@budget", "CAST(@budget AS integer)", "@fast", "CAST(@fast AS integer)", "@slow", "CAST(@slow AS integer)",
	"@rstatus", "CAST(@rstatus AS integer)", "@latency", "CAST(@latency AS integer)",
).Replace(`WITH m AS (UPDATE messages SET ` + recordSet + ` WHERE id = @id RETURNING attempt_count)
INSERT INTO attempts (id, project_id, message_id, attempt_no, started_at, outcome, response_status, duration_ms, dns_ms,
    connect_ms, tls_ms, ttfb_ms, transfer_ms, resolved_ip, conn_reused, request_headers, response_headers, response_body,
    response_body_truncated, error_text, retry_type, retry_after_seconds)
SELECT @aid, @project, @id, m.attempt_count, @started, @outcome, CAST(@arstatus AS integer), CAST(@dur AS double precision),
    CAST(@dns AS double precision), CAST(@conn AS double precision), CAST(@tls AS double precision), CAST(@ttfb AS double precision),
    CAST(@xfer AS double precision), CAST(@ip AS text), CAST(@reused AS boolean), @reqh, @resph, CAST(@body AS text),
    CAST(@trunc AS boolean), CAST(@aerr AS text), CAST(@rtype AS text), CAST(@rafter AS integer)
FROM m RETURNING attempt_no`)

// named is a statement written with @names, turned into $n placeholders
// once, so the SQL stays readable and the argument order stays right.
type named struct {
	sql   string
	order []string
}

var namedRE = regexp.MustCompile(`@([a-z_]+)`)

func newNamed(sql string) named {
	var n named
	index := map[string]int{}
	n.sql = namedRE.ReplaceAllStringFunc(sql, func(m string) string {
		name := m[1:]
		i, ok := index[name]
		if !ok {
			n.order = append(n.order, name)
			i = len(n.order)
			index[name] = i
		}
		return "$" + strconv.Itoa(i)
	})
	return n
}

func (n named) args(values map[string]any) []any {
	out := make([]any, len(n.order))
	for i, name := range n.order {
		v, ok := values[name]
		if !ok {
			panic("store: no value for @" + name)
		}
		out[i] = v
	}
	return out
}

var (
	pgRecord = newNamed(recordAttemptPostgres)
	// Leases use the database's clock (now()), so processes on hosts whose
	// clocks differ still agree on when a lease has expired.
	// The claim also returns each message's endpoint and signing keys (one
	// round trip instead of three per claim), read in the claim's snapshot.
	// Messages of FIFO endpoints are left to pgClaimFIFO.
	pgClaim = newNamed(`WITH c AS (
UPDATE messages SET status = 'delivering', lease_until = now() + make_interval(secs => CAST(@lease AS double precision)),
    lease_token = CAST(@tok AS text), updated_at = CAST(@now AS timestamptz)
WHERE id IN (SELECT id FROM messages
  WHERE status IN ('queued', 'pending_retry') AND next_attempt_at <= CAST(@now AS timestamptz) AND deleted_at IS NULL
    AND endpoint_id <> ALL (CAST(@skip AS text[])) AND fifo_key IS NULL
    -- A message handed to a worker at send (handoff.go) stays queued but
    -- leased: it is due again only once its lease ends.
    AND ` + leaseEnded + `
  ORDER BY next_attempt_at LIMIT CAST(@lim AS integer) FOR UPDATE SKIP LOCKED)
RETURNING ` + claimedColumns + `),
` + pgTargets("SELECT endpoint_id FROM c") + `
SELECT ` + claimedSelect + `
FROM c LEFT JOIN t ON t.id = c.endpoint_id`)
	// pgClaimFIFO claims due messages of FIFO endpoints, run only while
	// the database has such endpoints (a FIFO condition in pgClaim made
	// PostgreSQL choose plans that cost several times its CPU per
	// message). heads walks the index of waiting FIFO messages one
	// ordering key at a time (a loose index scan: one probe per key, not
	// per message), giving the oldest waiting message of each key; those
	// that are due are claimed.
	pgClaimFIFO = newNamed(`WITH RECURSIVE heads (fifo_key, id) AS (
  (SELECT fifo_key, id FROM messages WHERE ` + fifoWaiting + ` ORDER BY fifo_key, id LIMIT 1)
  UNION ALL
  SELECT x.fifo_key, x.id FROM heads h CROSS JOIN LATERAL (
    SELECT fifo_key, id FROM messages WHERE fifo_key > h.fifo_key AND ` + fifoWaiting + ` ORDER BY fifo_key, id LIMIT 1) x),
c AS (
UPDATE messages SET status = 'delivering', lease_until = now() + make_interval(secs => CAST(@lease AS double precision)),
    lease_token = CAST(@tok AS text), updated_at = CAST(@now AS timestamptz)
WHERE id IN (SELECT id FROM messages
  WHERE id IN (SELECT id FROM heads) AND status IN ('queued', 'pending_retry') AND next_attempt_at <= CAST(@now AS timestamptz)
    AND endpoint_id <> ALL (CAST(@skip AS text[]))
  ORDER BY next_attempt_at LIMIT CAST(@lim AS integer) FOR UPDATE SKIP LOCKED)
RETURNING ` + claimedColumns + `),
` + pgTargets("SELECT endpoint_id FROM c") + `
SELECT ` + claimedSelect + `
FROM c LEFT JOIN t ON t.id = c.endpoint_id`)
)

const (
	claimedColumns = "id, project_id, endpoint_id, payload, headers, attempt_count, budget_used, fast_streak, slow_retries, fifo_key, trace_parent, next_attempt_at, event_type"
	claimedSelect  = `c.id, c.project_id, c.endpoint_id, c.payload, c.headers, c.attempt_count, c.budget_used, c.fast_streak, c.slow_retries, c.fifo_key, c.trace_parent,
  c.next_attempt_at, c.event_type,
  ` + pgTargetColumns
)

func (s postgresPath) pgRecordAttempt(ctx context.Context, values map[string]any) (int, error) {
	var no int
	err := s.pool.QueryRow(ctx, pgRecord.sql, pgRecord.args(values)...).Scan(&no)
	return no, err
}

func (s postgresPath) claim(ctx context.Context, token string, lease time.Duration, limit int, skip []string) ([]Message, map[string]DeliveryTarget, error) {
	now := Now()
	if skip == nil {
		skip = []string{}
	}
	values := map[string]any{"lease": lease.Seconds(), "tok": token, "now": now, "skip": skip, "lim": limit}
	var out []Message
	targets := map[string]DeliveryTarget{}
	if s.fifoInUse(ctx) {
		var err error
		if out, err = s.pgScanClaim(ctx, pgClaimFIFO, values, out, targets); err != nil {
			return out, nil, err
		}
		values["lim"] = limit - len(out)
		if limit-len(out) == 0 {
			return out, targets, nil
		}
	}
	out, err := s.pgScanClaim(ctx, pgClaim, values, out, targets)
	if err != nil {
		return out, nil, err
	}
	return out, targets, nil
}

// pgScanClaim runs a claim statement and adds what it leased to out and
// targets.
func (s postgresPath) pgScanClaim(ctx context.Context, q named, values map[string]any, out []Message, targets map[string]DeliveryTarget) ([]Message, error) {
	token := values["tok"].(string)
	rows, err := s.pool.Query(ctx, q.sql, q.args(values)...)
	if err != nil {
		return out, err
	}
	defer rows.Close()
	for rows.Next() {
		m := Message{Status: StatusDelivering, LeaseToken: &token}
		var headers string
		var tc targetColumns
		if err := rows.Scan(append([]any{&m.ID, &m.ProjectID, &m.EndpointID, &m.Payload, &headers, &m.AttemptCount,
			&m.BudgetUsed, &m.FastStreak, &m.SlowRetries, &m.FIFOKey, &m.TraceParent, &m.NextAttemptAt, &m.EventType}, tc.dest()...)...); err != nil {
			// The claim committed: the caller releases what was read, and
			// the rest comes back when its lease ends.
			return out, err
		}
		if err := m.Headers.Scan(headers); err != nil {
			return append(out, m), err
		}
		out = append(out, m)
		if err := tc.addTo(targets); err != nil {
			return out, err
		}
	}
	return out, rows.Err()
}

// fifoRecheck is how long fifoInUse trusts its last answer.
const fifoRecheck = 2 * time.Second

// fifoInUse reports whether the database has FIFO endpoints (deleted ones
// included: their waiting messages still end), asking at most every
// fifoRecheck; a process that sets an endpoint to FIFO knows at once.
func (s postgresPath) fifoInUse(ctx context.Context) bool {
	now := time.Now()
	if last, _ := s.fifoCheckedAt.Load().(time.Time); now.Sub(last) < fifoRecheck {
		return s.fifoSeen.Load()
	}
	var yes bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM endpoints WHERE ordering = 'fifo')`).Scan(&yes); err != nil {
		return true // unsure: claim them too
	}
	s.fifoSeen.Store(yes)
	s.fifoCheckedAt.Store(now)
	return yes
}

// targetColumns receives pgTargetColumns; all are NULL when the row has no
// target (no such endpoint, or an insert without a lease).
type targetColumns struct {
	id, project, url, headers *string
	headersSealed             []byte
	headersKeyID, scheme      *string
	authHeader                *string
	hmac, paused              *bool
	rps, burst, failures      *int
	deletedAt                 *time.Time
	keyIDs, masterKeyIDs      []string
	sealed                    [][]byte
}

func (c *targetColumns) dest() []any {
	return []any{&c.id, &c.project, &c.url, &c.headers, &c.headersSealed, &c.headersKeyID, &c.hmac, &c.scheme, &c.authHeader, &c.paused, &c.rps, &c.burst, &c.failures, &c.deletedAt,
		&c.keyIDs, &c.masterKeyIDs, &c.sealed}
}

// addTo adds the target to targets, unless the row had none or it is there.
func (c *targetColumns) addTo(targets map[string]DeliveryTarget) error {
	if c.id == nil {
		return nil
	}
	if _, ok := targets[*c.id]; ok {
		return nil
	}
	e := Endpoint{ID: *c.id, ProjectID: *c.project, URL: *c.url, HMACEnabled: *c.hmac, SignatureScheme: *c.scheme, AuthHeader: c.authHeader, Paused: *c.paused,
		RateLimitRPS: *c.rps, Burst: *c.burst, ConsecutiveFailures: *c.failures, DeletedAt: c.deletedAt,
		HeadersSealed: c.headersSealed, HeadersKeyID: c.headersKeyID}
	if err := e.Headers.Scan(*c.headers); err != nil {
		return err
	}
	t := DeliveryTarget{Endpoint: e}
	for i, id := range c.keyIDs {
		t.Keys = append(t.Keys, SigningKey{ID: id, ProjectID: e.ProjectID, EndpointID: e.ID, MasterKeyID: c.masterKeyIDs[i], SecretSealed: c.sealed[i]})
	}
	targets[e.ID] = t
	return nil
}

const pgAuthenticate = `SELECT k.id, k.project_id, k.label, k.mode, k.prefix, k.key_hash, k.created_at, k.last_used_at,
  p.rate_limit_per_minute, p.send_rate_limit_per_minute
FROM api_keys k JOIN projects p ON p.id = k.project_id
WHERE k.key_hash = $1 AND k.deleted_at IS NULL`

func (s postgresPath) authenticate(ctx context.Context, keyHash string) (APIKey, ProjectLimits, error) {
	var k APIKey
	var lim ProjectLimits
	err := s.pool.QueryRow(ctx, pgAuthenticate, keyHash).Scan(&k.ID, &k.ProjectID, &k.Label, &k.Mode, &k.Prefix, &k.KeyHash, &k.CreatedAt, &k.LastUsedAt,
		&lim.RateLimitPerMinute, &lim.SendRateLimitPerMinute)
	if errors.Is(err, pgx.ErrNoRows) {
		return APIKey{}, ProjectLimits{}, ErrNotFound
	}
	return k, lim, err
}

// notifyDue wakes every other listening process when tx commits. The
// payload names this store, so its own listener ignores it.
func (s postgresPath) notifyDue(tx *gorm.DB) error {
	return tx.Exec("SELECT pg_notify(?, ?)", dueChannel, s.instance).Error
}

// rescue makes claimed messages whose lease ended due again: in id
// order, skipping rows another rescuer holds (no deadlock), expiry judged
// by the database's clock like the lease.
func (s postgresPath) rescue(ctx context.Context) (int64, error) {
	now := Now()
	res := s.db.WithContext(ctx).Model(&Message{}).Where(`id IN (SELECT id FROM messages
  WHERE status = ? AND lease_until < now() ORDER BY id FOR UPDATE SKIP LOCKED)`, StatusDelivering).
		Updates(map[string]any{"status": StatusPendingRetry, "next_attempt_at": now, "lease_until": nil, "lease_token": nil, "updated_at": now})
	return res.RowsAffected, res.Error
}

// extendLeases renews leases on the database's clock, the rows locked in
// id order, as attempt records lock them: no deadlock.
func (s postgresPath) extendLeases(ctx context.Context, ids, tokens []string, lease time.Duration) error {
	return s.db.WithContext(ctx).Exec(`UPDATE messages SET lease_until = now() + make_interval(secs => ?) WHERE id IN (
  SELECT id FROM messages WHERE id IN ? AND lease_token IN ? AND status IN ? ORDER BY id FOR UPDATE)`,
		lease.Seconds(), ids, tokens, leasedStatuses).Error
}

// recordOne records one attempt by itself (a batch of one, a message twice
// in a batch, or a batch that failed as a whole).
func (s postgresPath) recordOne(ctx context.Context, token string, a Attempt, o Outcome) (int, error) {
	args := recordArgs(token, a, o)
	// One statement, one round trip: update the message and insert the
	// attempt with the number the update assigned.
	reqH, err := a.RequestHeaders.Value()
	if err != nil {
		return 0, err
	}
	respH, err := a.ResponseHeaders.Value()
	if err != nil {
		return 0, err
	}
	for k, v := range map[string]any{"aid": a.ID, "project": a.ProjectID, "outcome": a.Outcome, "arstatus": a.ResponseStatus,
		"dur": a.DurationMs, "dns": a.DNSMs, "conn": a.ConnectMs, "tls": a.TLSMs, "ttfb": a.TTFBMs, "xfer": a.TransferMs,
		"ip": a.ResolvedIP, "reused": a.ConnReused, "reqh": reqH, "resph": respH, "body": a.ResponseBody,
		"trunc": a.ResponseBodyTruncated, "aerr": a.ErrorText, "rtype": a.RetryType, "rafter": a.RetryAfterSeconds} {
		args[k] = v
	}
	no, err := s.pgRecordAttempt(ctx, args)
	if isUniqueViolation(err) {
		// A retry of a write whose commit we did not hear about: it is
		// recorded already (the statement is atomic, so nothing was
		// applied twice).
		return s.attemptNo(ctx, a.ID)
	}
	return no, err
}

// inboundOriginal finds the message of an idempotency key: one prepared
// statement through the pool.
func (s postgresPath) inboundOriginal(ctx context.Context, endpointID, key string) (Message, bool, error) {
	m := Message{EndpointID: endpointID}
	err := s.pool.QueryRow(ctx, `SELECT id, status, project_id, created_at FROM messages WHERE endpoint_id = $1 AND idempotency_key = $2`,
		endpointID, key).Scan(&m.ID, &m.Status, &m.ProjectID, &m.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Message{}, false, nil
	}
	return m, err == nil, err
}

func (postgresPath) handsOff() bool { return true }

// notInFlight keeps the queued messages no worker holds (leaseEnded).
func (postgresPath) notInFlight(db *gorm.DB) *gorm.DB { return db.Where(leaseEnded) }
