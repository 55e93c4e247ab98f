package store

import (
	"context"
	"crypto/rand"
	"errors"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/queue"
)

// Group commit of sends on PostgreSQL. Concurrent InsertMessage calls are
// gathered by the collector (batcher.go) into one statement (arrays
// unnested into rows) and one commit; each caller gets its answer after
// that commit. A lone send pays no extra latency and a busy server shares
// commits among many sends.

const (
	sendBatchDeadline = 10 * time.Second
)

type sendRequest struct {
	ctx  context.Context // the caller's: a request it gave up on is not inserted
	m    Message
	done chan sendResult
}

type sendResult struct {
	status string // "" when not inserted (endpoint gone or idempotency key used)
	err    error
}

// The insert statement, for one row ($n scalars) or many (arrays unnested
// into rows). A message whose endpoint is live is stored queued (paused if
// the endpoint is); with a handoff token ($11) it is stored leased to this
// process's workers, which get it at once (handoff.go), and its endpoint
// and signing keys come back with it. Other processes are notified of the
// rest.
var (
	pgInsertValuesOne = `SELECT $1::text AS id, $2::text AS project_id, $3::text AS endpoint_id, $4::bytea AS payload,
    $5::text AS sha, $6::integer AS size, $7::text AS headers, $8::text AS key, $9::integer AS retention,
    $10::timestamptz AS now, $11::text AS tok, $14::text AS okey, $15::text AS tp, $16::boolean AS inbound, $17::text AS event_type`
	pgInsertValuesMany = `SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::integer[], $7::text[],
    $8::text[], $9::integer[], $10::timestamptz[], $11::text[], $14::text[], $15::text[], $16::boolean[], $17::text[])
    AS v(id, project_id, endpoint_id, payload, sha, size, headers, key, retention, now, tok, okey, tp, inbound, event_type)`
	pgInsertRest = `),
ins AS (
  INSERT INTO messages (id, project_id, endpoint_id, status, payload, payload_sha256, size_bytes, headers,
    idempotency_key, retention_hours, next_attempt_at, created_at, updated_at, lease_token, lease_until, fifo_key, trace_parent, inbound, event_type)
  SELECT v.id, v.project_id, e.id, CASE WHEN e.paused THEN 'paused' ELSE 'queued' END, v.payload, v.sha, v.size, v.headers,
    v.key, v.retention, CASE WHEN e.paused THEN NULL ELSE v.now END, v.now, v.now,
    -- A FIFO endpoint's messages are never handed over: the claim decides
    -- which one is next.
    CASE WHEN e.paused OR e.ordering = 'fifo' THEN NULL ELSE v.tok END,
    CASE WHEN e.paused OR e.ordering = 'fifo' OR v.tok IS NULL THEN NULL ELSE now() + make_interval(secs => $12::double precision) END,
    CASE WHEN e.ordering = 'fifo' THEN e.id || '/' || coalesce(v.okey, '') END, v.tp, v.inbound, v.event_type
  FROM v JOIN endpoints e ON e.id = v.endpoint_id AND e.project_id = v.project_id AND e.deleted_at IS NULL
  -- A used idempotency key is left out before the endpoint is locked: a
  -- statement of repeats only reads (the lock would be a write).
  WHERE v.key IS NULL OR NOT EXISTS (SELECT 1 FROM messages x WHERE x.endpoint_id = v.endpoint_id AND x.idempotency_key = v.key)
  FOR SHARE OF e
  ON CONFLICT DO NOTHING
  RETURNING id, status, endpoint_id, lease_token),
-- Leased to another process's workers ($18, its take channel: remote.go):
-- that process is told the token and the ids at commit, and reads the
-- endpoints itself.
handed AS (SELECT pg_notify($18::text, min(lease_token) || ' ' || string_agg(id, ' '))
  FROM ins WHERE lease_token IS NOT NULL AND $18::text IS NOT NULL HAVING count(*) > 0),
` + pgTargets("SELECT endpoint_id FROM ins WHERE lease_token IS NOT NULL AND $18::text IS NULL") + `
SELECT ins.id, ins.status, ins.lease_token IS NOT NULL,
  CASE WHEN ins.status = 'queued' AND ins.lease_token IS NULL THEN pg_notify('` + dueChannel + `', $13::text) END,
  ` + pgTargetColumns + `
FROM ins LEFT JOIN t ON t.id = ins.endpoint_id AND ins.lease_token IS NOT NULL LEFT JOIN handed ON true`
	pgInsertOne   = `WITH v AS (` + pgInsertValuesOne + pgInsertRest
	pgInsertBatch = `WITH v AS (` + pgInsertValuesMany + pgInsertRest
)

// pgTargetsOf is the CTE t: the endpoints (and their signing keys, newest
// first) named by the rows of the CTE ins with a lease, once per endpoint.
var pgTargetsOf = pgTargets("SELECT endpoint_id FROM ins WHERE lease_token IS NOT NULL")

// pgTargets is the CTE t over the endpoints that query names (the claim
// shares it, fastpath.go).
func pgTargets(endpointIDs string) string {
	return `t AS MATERIALIZED (
  SELECT e.id, e.project_id, e.url, e.headers, e.headers_sealed, e.headers_key_id, e.hmac_enabled, e.signature_scheme, e.auth_header, e.paused, e.rate_limit_rps, e.burst,
    e.consecutive_failures, e.deleted_at,
    k.ids, k.master_key_ids, k.sealed
  FROM endpoints e LEFT JOIN LATERAL (
    SELECT array_agg(sk.id ORDER BY sk.id DESC) AS ids, array_agg(sk.master_key_id ORDER BY sk.id DESC) AS master_key_ids,
      array_agg(sk.secret_sealed ORDER BY sk.id DESC) AS sealed
    FROM signing_keys sk WHERE sk.endpoint_id = e.id) k ON true
  WHERE e.id IN (` + endpointIDs + `))`
}

const pgTargetColumns = `t.id, t.project_id, t.url, t.headers, t.headers_sealed, t.headers_key_id, t.hmac_enabled, t.signature_scheme, t.auth_header, t.paused,
  t.rate_limit_rps, t.burst, t.consecutive_failures, t.deleted_at, t.ids, t.master_key_ids, t.sealed`

// startSendBatchers runs the send batchers until the store closes.
func (s postgresPath) startSendBatchers() {
	s.sends = make(chan sendRequest, queue.Backlog)
	runBatchers(s.Store, s.sends, s.insertBatch, func(r sendRequest) { r.done <- sendResult{err: ErrClosed} })
}

func (s postgresPath) insertBatch(batch []sendRequest) {
	batch = liveSorted(batch)
	if len(batch) == 0 {
		return
	}
	n := len(batch)
	// Reserve a worker of this process for each message, where one is
	// free for its endpoint: those messages are stored leased and handed
	// over after the commit, without a claim.
	// An api process has no workers: it hands the messages to a worker
	// process, if it knows one (remote.go); that process is told at
	// commit and finds its own free workers.
	h := s.handoff.Load()
	var token string
	var remote *string // the worker process's take channel
	lease := s.handoffLease(h)
	toks := make([]*string, n)
	if h != nil {
		token = rand.Text()
		for i, r := range batch {
			if h.Reserve(r.m.EndpointID) {
				toks[i] = &token
			}
		}
	} else if w, ok := s.pickWorker(); ok {
		token, remote, lease = rand.Text(), &w.channel, w.lease
		for i := range min(n, maxHandedPerNotify) {
			toks[i] = &token
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), sendBatchDeadline)
	defer cancel()
	q, args := s.insertStatement(batch, toks, lease, remote)
	rows, err := s.pool.Query(ctx, q, args...)
	got, targets, decodeErr, err := scanInserted(rows, err)
	if h != nil && (err != nil || decodeErr != nil) {
		// Nothing is handed over.
		for i, r := range batch {
			if toks[i] != nil {
				h.Unreserve(r.m.EndpointID)
			}
		}
	}
	if decodeErr != nil { // (set only when the statement itself succeeded)
		// Not expected (hookd wrote the schema), and not retried: the rows
		// are stored, so the senders get an error and a retry with their
		// idempotency key finds the message; a leased one is claimed once
		// its lease ends.
		s.poke() // some may be queued and not handed over
		for _, r := range batch {
			r.done <- sendResult{err: decodeErr}
		}
		return
	}
	if err != nil && n > 1 {
		// One statement for many senders failed (a deadlock or
		// serialization failure is possible under contention): try each
		// alone, so one bad item cannot fail unrelated sends.
		for _, r := range batch {
			r.done <- s.insertOne(r)
		}
		return
	}
	wake := false
	results := make([]sendResult, len(batch))
	for i, r := range batch {
		row := got[r.m.ID]
		if h != nil && toks[i] != nil && err == nil {
			if t, ok := targets[r.m.EndpointID]; ok && row.leased {
				m := r.m
				m.Status, m.LeaseToken = row.status, &token
				h.Start(m, t, token)
			} else {
				h.Unreserve(r.m.EndpointID) // paused, or not inserted
				row.leased = false
			}
		}
		wake = wake || (row.status == StatusQueued && !row.leased)
		results[i] = sendResult{status: row.status, err: err}
	}
	// This process's claimer is woken before any sender hears back, so a
	// send that returns has already woken it (other processes got the
	// notification at commit).
	if wake {
		s.poke()
	}
	for i, r := range batch {
		r.done <- results[i]
	}
}

// live answers the requests whose callers gave up (they are not inserted)
// and returns the rest.
func live(batch []sendRequest) []sendRequest {
	out := batch[:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- sendResult{err: err}
			continue
		}
		out = append(out, r)
	}
	return out
}

// liveSorted is live, sorted by endpoint and idempotency key, so that two
// PostgreSQL batches waiting on each other's uncommitted keys cannot
// deadlock.
func liveSorted(batch []sendRequest) []sendRequest {
	out := live(batch)
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].m, out[j].m
		if a.EndpointID != b.EndpointID {
			return a.EndpointID < b.EndpointID
		}
		return deref(a.IdempotencyKey) < deref(b.IdempotencyKey)
	})
	return out
}

// insertStatement is the statement that inserts batch (sorted), the
// messages with a token in toks leased for lease: the one-row form for a
// batch of one, the array form otherwise.
func (s postgresPath) insertStatement(batch []sendRequest, toks []*string, lease time.Duration, remote *string) (string, []any) {
	n := len(batch)
	ids, projects, endpoints, shas, headers := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	payloads := make([][]byte, n)
	sizes := make([]int32, n)
	keys := make([]*string, n)
	retention := make([]*int32, n)
	nows := make([]time.Time, n)
	okeys, tps := make([]*string, n), make([]*string, n)
	inbound, eventTypes := make([]bool, n), make([]*string, n)
	for i, r := range batch {
		m := r.m
		okeys[i], tps[i], inbound[i] = m.OrderingKey, m.TraceParent, m.Inbound
		if m.Inbound {
			eventTypes[i] = m.EventType // (a send's event type is set by publish, never here)
		}
		ids[i], projects[i], endpoints[i], shas[i], payloads[i] = m.ID, m.ProjectID, m.EndpointID, m.PayloadSHA256, m.Payload
		sizes[i], keys[i], nows[i] = int32(m.SizeBytes), m.IdempotencyKey, m.CreatedAt //nolint:gosec // payloads are at most 1 MiB
		h, _ := m.Headers.Value()                                                      // a JSON map of strings always marshals
		headers[i] = h.(string)
		if m.RetentionHours != nil {
			v := int32(*m.RetentionHours) //nolint:gosec // validated 0-2160
			retention[i] = &v
		}
	}
	var args []any
	q := pgInsertBatch
	if n == 1 {
		q = pgInsertOne
		args = []any{ids[0], projects[0], endpoints[0], payloads[0], shas[0], sizes[0], headers[0], keys[0], retention[0], nows[0], toks[0]}
	} else {
		args = []any{ids, projects, endpoints, payloads, shas, sizes, headers, keys, retention, nows, toks}
	}
	args = append(args, lease.Seconds(), s.instance)
	if n == 1 {
		args = append(args, okeys[0], tps[0], inbound[0], eventTypes[0])
	} else {
		args = append(args, okeys, tps, inbound, eventTypes)
	}
	return q, append(args, remote)
}

type insertedRow struct {
	status string
	leased bool
}

// scanInserted reads the answer of the insert statement (rows and err as
// Query returned them): the rows inserted by id, and the targets of the
// leased ones by endpoint id. decodeErr is set when the statement ran but
// its answer did not decode; err when the statement failed.
func scanInserted(rows pgx.Rows, err error) (got map[string]insertedRow, targets map[string]DeliveryTarget, decodeErr, _ error) {
	got, targets = map[string]insertedRow{}, map[string]DeliveryTarget{}
	if err != nil {
		return got, targets, nil, err
	}
	for rows.Next() {
		var row insertedRow
		var id string
		var notified any
		var tc targetColumns
		if decodeErr = rows.Scan(append([]any{&id, &row.status, &row.leased, &notified}, tc.dest()...)...); decodeErr != nil {
			break
		}
		if decodeErr = tc.addTo(targets); decodeErr != nil {
			break
		}
		got[id] = row
	}
	rows.Close()
	if decodeErr == nil {
		err = rows.Err() // (a Scan error is recorded there too)
	}
	return got, targets, decodeErr, err
}

// insertOne inserts one message by itself, without a handoff.
func (s postgresPath) insertOne(r sendRequest) sendResult {
	ctx, cancel := context.WithTimeout(context.Background(), sendBatchDeadline)
	defer cancel()
	m := r.m
	h, _ := m.Headers.Value()
	var retention *int32
	if m.RetentionHours != nil {
		v := int32(*m.RetentionHours) //nolint:gosec // validated 0-2160
		retention = &v
	}
	var id, status string
	var leased bool
	var notified any
	var tc targetColumns
	err := s.pool.QueryRow(ctx, pgInsertOne, m.ID, m.ProjectID, m.EndpointID, m.Payload, m.PayloadSHA256,
		int32(m.SizeBytes), h, m.IdempotencyKey, retention, m.CreatedAt, nil, 0.0, s.instance, m.OrderingKey, m.TraceParent, m.Inbound, inboundEventType(m), nil, //nolint:gosec // ≤ 1 MiB
	).Scan(append([]any{&id, &status, &leased, &notified}, tc.dest()...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return sendResult{}
	}
	if err == nil && status == StatusQueued {
		s.poke()
	}
	return sendResult{status: status, err: err}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// insert queues m for the next batch and waits for its commit.
func (s postgresPath) insert(ctx context.Context, m Message) (sendResult, error) {
	return s.queueSend(ctx, s.sends, m)
}

// queueSend hands m to the send batchers that read ch and waits for its
// commit.
func (s *Store) queueSend(ctx context.Context, ch chan sendRequest, m Message) (sendResult, error) {
	r := sendRequest{ctx: ctx, m: m, done: make(chan sendResult, 1)}
	if err := enqueue(ctx, s, ch, r); err != nil {
		return sendResult{}, err
	}
	select {
	case res := <-r.done:
		return res, res.err
	case <-ctx.Done():
		// The batch may still commit (and hand the message to a worker);
		// the caller answers with an error and a retry with the same
		// idempotency key finds the message.
		return sendResult{}, ctx.Err()
	}
}

// inboundEventType is the event type a received message is inserted with.
func inboundEventType(m Message) *string {
	if m.Inbound {
		return m.EventType
	}
	return nil
}
