package store

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
)

// Group commit of sends on PostgreSQL. Concurrent InsertMessage calls are
// gathered by a few batcher goroutines (batcher.go) into one statement
// (arrays unnested into rows) and one commit; each caller gets its answer
// after that commit. A lone send pays no extra latency and a busy server
// shares commits among many sends.

const (
	sendBatchMax      = 128
	sendBatchers      = 4
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

// pgInsertOne is the same insert for a batch of one: a simpler plan, so a
// send on a quiet server is not slower for the batching.
const pgInsertOne = `WITH ins AS (
  INSERT INTO messages (id, project_id, endpoint_id, status, payload, payload_sha256, size_bytes, headers,
    idempotency_key, retention_hours, next_attempt_at, created_at, updated_at)
  SELECT $1, $2, e.id, CASE WHEN e.paused THEN 'paused' ELSE 'queued' END, $4::bytea, $5::text, $6::integer, $7::text,
    $8::text, $9::integer, CASE WHEN e.paused THEN NULL ELSE $10::timestamptz END, $10::timestamptz, $10::timestamptz
  FROM endpoints e WHERE e.id = $3 AND e.project_id = $2 AND e.deleted_at IS NULL
  FOR SHARE OF e
  ON CONFLICT DO NOTHING
  RETURNING id, status)
SELECT id, status, pg_notify('` + dueChannel + `', $11::text) FROM ins`

var pgInsertBatch = `WITH v AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::integer[], $7::text[], $8::text[], $9::integer[], $10::timestamptz[])
    AS v(id, project_id, endpoint_id, payload, sha, size, headers, key, retention, now)),
ins AS (
  INSERT INTO messages (id, project_id, endpoint_id, status, payload, payload_sha256, size_bytes, headers,
    idempotency_key, retention_hours, next_attempt_at, created_at, updated_at)
  SELECT v.id, v.project_id, e.id, CASE WHEN e.paused THEN 'paused' ELSE 'queued' END, v.payload, v.sha, v.size, v.headers,
    v.key, v.retention, CASE WHEN e.paused THEN NULL ELSE v.now END, v.now, v.now
  FROM v JOIN endpoints e ON e.id = v.endpoint_id AND e.project_id = v.project_id AND e.deleted_at IS NULL
  FOR SHARE OF e
  ON CONFLICT DO NOTHING
  RETURNING id, status)
SELECT id, status, pg_notify('` + dueChannel + `', $11::text) FROM ins`

// startSendBatchers runs the send batchers until the store closes.
func (s *Store) startSendBatchers() {
	s.sends = make(chan sendRequest, sendBatchMax*sendBatchers)
	runBatchers(s, s.sends, s.insertBatch, func(r sendRequest) { r.done <- sendResult{err: ErrClosed} })
}

func (s *Store) insertBatch(batch []sendRequest) {
	// Requests whose callers gave up are answered, not inserted.
	live := batch[:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- sendResult{err: err}
			continue
		}
		live = append(live, r)
	}
	batch = live
	if len(batch) == 0 {
		return
	}
	// A fixed order (endpoint, idempotency key) so that two batches waiting
	// on each other's uncommitted keys cannot deadlock.
	sort.Slice(batch, func(i, j int) bool {
		a, b := batch[i].m, batch[j].m
		if a.EndpointID != b.EndpointID {
			return a.EndpointID < b.EndpointID
		}
		return deref(a.IdempotencyKey) < deref(b.IdempotencyKey)
	})
	n := len(batch)
	ids, projects, endpoints, shas, headers := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	payloads := make([][]byte, n)
	sizes := make([]int32, n)
	keys := make([]*string, n)
	retention := make([]*int32, n)
	nows := make([]time.Time, n)
	for i, r := range batch {
		m := r.m
		ids[i], projects[i], endpoints[i], shas[i], payloads[i] = m.ID, m.ProjectID, m.EndpointID, m.PayloadSHA256, m.Payload
		sizes[i], keys[i], nows[i] = int32(m.SizeBytes), m.IdempotencyKey, m.CreatedAt //nolint:gosec // payloads are at most 1 MiB
		h, _ := m.Headers.Value()                                                      // a JSON map of strings always marshals
		headers[i] = h.(string)
		if m.RetentionHours != nil {
			v := int32(*m.RetentionHours) //nolint:gosec // validated 0-2160
			retention[i] = &v
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), sendBatchDeadline)
	defer cancel()
	got := map[string]string{}
	var args []any
	q := pgInsertBatch
	if n == 1 {
		q = pgInsertOne
		args = []any{ids[0], projects[0], endpoints[0], payloads[0], shas[0], sizes[0], headers[0], keys[0], retention[0], nows[0], s.instance}
	} else {
		args = []any{ids, projects, endpoints, payloads, shas, sizes, headers, keys, retention, nows, s.instance}
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err == nil {
		for rows.Next() {
			var id, status string
			var notified any
			if err = rows.Scan(&id, &status, &notified); err != nil {
				break
			}
			got[id] = status
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
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
	for _, r := range batch {
		r.done <- sendResult{status: got[r.m.ID], err: err}
	}
}

func (s *Store) insertOne(r sendRequest) sendResult {
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
	var notified any
	err := s.pool.QueryRow(ctx, pgInsertOne, m.ID, m.ProjectID, m.EndpointID, m.Payload, m.PayloadSHA256,
		int32(m.SizeBytes), h, m.IdempotencyKey, retention, m.CreatedAt, s.instance).Scan(&id, &status, &notified) //nolint:gosec // ≤ 1 MiB
	if errors.Is(err, pgx.ErrNoRows) {
		return sendResult{}
	}
	return sendResult{status: status, err: err}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// batchInsert queues m for the next batch and waits for its commit.
func (s *Store) batchInsert(ctx context.Context, m Message) (string, error) {
	r := sendRequest{ctx: ctx, m: m, done: make(chan sendResult, 1)}
	if err := enqueue(ctx, s, s.sends, r); err != nil {
		return "", err
	}
	select {
	case res := <-r.done:
		return res.status, res.err
	case <-ctx.Done():
		// The batch may still commit; the caller answers with an error and
		// a retry with the same idempotency key finds the message.
		return "", ctx.Err()
	}
}
