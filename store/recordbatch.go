package store

import (
	"context"
	"time"

	"github.com/hookd/hookd/queue"
)

// Group commit of attempt records, like sends (sendbatch.go): attempts that
// finish together are recorded by one statement (PostgreSQL) or one
// transaction (SQLite) and one commit. A batch that fails as a whole (a retried record whose first
// commit was not heard about makes a duplicate attempt id) is recorded item
// by item instead.

type recordRequest struct {
	token string
	a     Attempt
	o     Outcome
	done  chan recordResult
}

type recordResult struct {
	no  int
	err error
}

const pgRecordBatch = `WITH v AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::integer[], $6::integer[], $7::integer[],
    $8::text[], $9::integer[], $10::integer[], $11::timestamptz[], $12::text[], $13::text[], $14::text[],
    $15::float8[], $16::float8[], $17::float8[], $18::float8[], $19::float8[], $20::float8[], $21::text[], $22::boolean[],
    $23::text[], $24::text[], $25::text[], $26::boolean[], $27::text[], $28::text[], $29::integer[])
  AS v(id, tok, new_status, next, budget, fast, slow, lasterr, rstatus, latency, started, aid, project, outcome,
    dur, dns, conn, tls, ttfb, xfer, ip, reused, reqh, resph, body, trunc, aerr, rtype, rafter)),
l AS MATERIALIZED (
  -- Lock the rows in id order first: heartbeats and other batches lock in
  -- the same order, so they queue instead of deadlocking.
  SELECT id FROM messages WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE),
m AS (
  UPDATE messages SET attempt_count = messages.attempt_count + 1, updated_at = $30::timestamptz,
    first_attempt_at = COALESCE(messages.first_attempt_at, v.started),
    status = CASE WHEN messages.lease_token = v.tok THEN v.new_status ELSE messages.status END,
    next_attempt_at = CASE WHEN messages.lease_token = v.tok THEN v.next ELSE messages.next_attempt_at END,
    budget_used = CASE WHEN messages.lease_token = v.tok THEN v.budget ELSE messages.budget_used END,
    fast_streak = CASE WHEN messages.lease_token = v.tok THEN v.fast ELSE messages.fast_streak END,
    slow_retries = CASE WHEN messages.lease_token = v.tok THEN v.slow ELSE messages.slow_retries END,
    last_error = CASE WHEN messages.lease_token = v.tok THEN v.lasterr ELSE messages.last_error END,
    response_status = CASE WHEN messages.lease_token = v.tok THEN v.rstatus ELSE messages.response_status END,
    response_latency_ms = CASE WHEN messages.lease_token = v.tok THEN v.latency ELSE messages.response_latency_ms END,
    delivered_at = CASE WHEN messages.lease_token = v.tok AND v.new_status = 'succeeded' THEN $30::timestamptz ELSE messages.delivered_at END,
    terminal_at = CASE WHEN messages.lease_token = v.tok AND v.new_status IN ('succeeded', 'failed_permanent') THEN $30::timestamptz ELSE messages.terminal_at END,
    lease_until = CASE WHEN messages.lease_token = v.tok THEN NULL ELSE messages.lease_until END,
    lease_token = CASE WHEN messages.lease_token = v.tok THEN NULL ELSE messages.lease_token END
  FROM v JOIN l ON l.id = v.id WHERE messages.id = v.id
  RETURNING messages.id, messages.attempt_count)
INSERT INTO attempts (id, project_id, message_id, attempt_no, started_at, outcome, response_status, duration_ms, dns_ms,
    connect_ms, tls_ms, ttfb_ms, transfer_ms, resolved_ip, conn_reused, request_headers, response_headers, response_body,
    response_body_truncated, error_text, retry_type, retry_after_seconds)
SELECT v.aid, v.project, v.id, m.attempt_count, v.started, v.outcome, v.rstatus, v.dur, v.dns, v.conn, v.tls, v.ttfb, v.xfer,
    v.ip, v.reused, v.reqh, v.resph, v.body, v.trunc, v.aerr, v.rtype, v.rafter
FROM v JOIN m ON m.id = v.id
RETURNING id, attempt_no`

func (s postgresPath) startRecordBatchers() {
	s.records = make(chan recordRequest, queue.Backlog)
	runBatchers(s.Store, s.records, s.recordBatch, func(r recordRequest) { r.done <- recordResult{err: ErrClosed} })
}

func i32(p *int) *int32 {
	if p == nil {
		return nil
	}
	v := int32(*p) //nolint:gosec // statuses, latencies and counters fit
	return &v
}

func (s postgresPath) recordBatch(batch []recordRequest) {
	// One message at most once per statement: UPDATE … FROM would apply
	// only one of two rows for the same message (a stale record of a
	// rescued message beside the current one). Extra ones go alone, after.
	seen := make(map[string]bool, len(batch))
	var later []recordRequest
	unique := batch[:0]
	for _, r := range batch {
		if seen[r.a.MessageID] {
			later = append(later, r)
			continue
		}
		seen[r.a.MessageID] = true
		unique = append(unique, r)
	}
	batch = unique
	defer func() {
		for _, r := range later {
			ctx, cancel := context.WithTimeout(context.Background(), sendBatchDeadline)
			no, err := s.recordOne(ctx, r.token, r.a, r.o)
			cancel()
			r.done <- recordResult{no: no, err: err}
		}
	}()
	if len(batch) == 1 {
		// A batch of one takes the single-row statement (a simpler plan).
		r := batch[0]
		ctx, cancel := context.WithTimeout(context.Background(), sendBatchDeadline)
		defer cancel()
		no, err := s.recordOne(ctx, r.token, r.a, r.o)
		r.done <- recordResult{no: no, err: err}
		return
	}
	n := len(batch)
	ids, toks, statuses, lasterr := make([]string, n), make([]string, n), make([]string, n), make([]*string, n)
	next, started := make([]*time.Time, n), make([]time.Time, n)
	budget, fast, slow := make([]int32, n), make([]int32, n), make([]int32, n)
	rstatus, latency, rafter := make([]*int32, n), make([]*int32, n), make([]*int32, n)
	aids, projects, outcomes := make([]string, n), make([]string, n), make([]string, n)
	dur := make([]float64, n)
	dns, conn, tls, ttfb, xfer := make([]*float64, n), make([]*float64, n), make([]*float64, n), make([]*float64, n), make([]*float64, n)
	ips, bodies, aerrs, rtypes := make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
	reused, trunc := make([]bool, n), make([]bool, n)
	reqh, resph := make([]string, n), make([]string, n)
	for i, r := range batch {
		a, o := r.a, r.o
		ids[i], toks[i], statuses[i], lasterr[i], next[i] = a.MessageID, r.token, o.Status, o.LastError, o.NextAttemptAt
		budget[i], fast[i], slow[i] = int32(o.BudgetUsed), int32(o.FastStreak), int32(o.SlowRetries) //nolint:gosec // bounded by max attempts
		rstatus[i], latency[i], started[i] = i32(o.ResponseStatus), i32(o.LatencyMs), a.StartedAt
		aids[i], projects[i], outcomes[i], dur[i] = a.ID, a.ProjectID, a.Outcome, a.DurationMs
		dns[i], conn[i], tls[i], ttfb[i], xfer[i] = a.DNSMs, a.ConnectMs, a.TLSMs, a.TTFBMs, a.TransferMs
		ips[i], reused[i], bodies[i], trunc[i], aerrs[i], rtypes[i], rafter[i] = a.ResolvedIP, a.ConnReused, a.ResponseBody,
			a.ResponseBodyTruncated, a.ErrorText, a.RetryType, i32(a.RetryAfterSeconds)
		h, _ := a.RequestHeaders.Value() // a JSON map of strings always marshals
		reqh[i] = h.(string)
		h, _ = a.ResponseHeaders.Value()
		resph[i] = h.(string)
	}
	ctx, cancel := context.WithTimeout(context.Background(), sendBatchDeadline)
	defer cancel()
	got := map[string]int{}
	rows, err := s.pool.Query(ctx, pgRecordBatch, ids, toks, statuses, next, budget, fast, slow, lasterr, rstatus, latency,
		started, aids, projects, outcomes, dur, dns, conn, tls, ttfb, xfer, ips, reused, reqh, resph, bodies, trunc, aerrs, rtypes, rafter, Now())
	if err == nil {
		for rows.Next() {
			var id string
			var no int
			if err = rows.Scan(&id, &no); err != nil {
				break
			}
			got[id] = no
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	for _, r := range batch {
		if err != nil {
			// Record each alone: one bad item must not fail the rest, and
			// recordOne knows a duplicate attempt id means "already done".
			no, ierr := s.recordOne(ctx, r.token, r.a, r.o)
			r.done <- recordResult{no: no, err: ierr}
			continue
		}
		r.done <- recordResult{no: got[r.a.ID]}
	}
}

// record queues an attempt record for the next batch and waits for its
// commit.
func (s postgresPath) record(ctx context.Context, token string, a Attempt, o Outcome) (int, error) {
	return s.queueRecord(ctx, token, a, o)
}

// queueRecord hands an attempt record to the record batchers (either
// dialect's) and waits for its commit.
func (s *Store) queueRecord(ctx context.Context, token string, a Attempt, o Outcome) (int, error) {
	r := recordRequest{token: token, a: a, o: o, done: make(chan recordResult, 1)}
	if err := enqueue(ctx, s, s.records, r); err != nil {
		return 0, err
	}
	select {
	case res := <-r.done:
		return res.no, res.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
