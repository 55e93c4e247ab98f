package store

import (
	"context"
	"errors"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// The hot paths on PostgreSQL — authenticating a request, claiming due
// messages, recording an attempt (and inserting messages, sendbatch.go) — go
// straight to the pgx pool: one prepared statement each, no GORM statement building (which
// was a visible share of hookd's CPU per message in profiles). SQLite keeps
// the GORM versions; the SQL and the tests are shared.

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

func (s *Store) pgRecordAttempt(ctx context.Context, values map[string]any) (int, error) {
	var no int
	err := s.pool.QueryRow(ctx, pgRecord.sql, pgRecord.args(values)...).Scan(&no)
	return no, err
}

func (s *Store) pgClaimDue(ctx context.Context, token string, lease time.Duration, limit int, skip []string) ([]Message, map[string]DeliveryTarget, error) {
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
func (s *Store) pgScanClaim(ctx context.Context, q named, values map[string]any, out []Message, targets map[string]DeliveryTarget) ([]Message, error) {
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
func (s *Store) fifoInUse(ctx context.Context) bool {
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

func (s *Store) pgFindAPIKey(ctx context.Context, keyHash string) (APIKey, ProjectLimits, error) {
	var k APIKey
	var lim ProjectLimits
	err := s.pool.QueryRow(ctx, pgAuthenticate, keyHash).Scan(&k.ID, &k.ProjectID, &k.Label, &k.Mode, &k.Prefix, &k.KeyHash, &k.CreatedAt, &k.LastUsedAt,
		&lim.RateLimitPerMinute, &lim.SendRateLimitPerMinute)
	if errors.Is(err, pgx.ErrNoRows) {
		return APIKey{}, ProjectLimits{}, ErrNotFound
	}
	return k, lim, err
}
