package store

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"
)

// pgPublishEvent is PublishEvent on PostgreSQL: one transaction of three
// statements (the endpoints, the event, every message in one multi-row
// insert), with each message whose endpoint has a free worker in this
// process stored leased and handed to that worker after the commit, as a
// single send's is. The rest are claimed.
func (s postgresPath) publish(ctx context.Context, ev Event, template Message, newID func() string, match func(Endpoint) bool) (Event, []Message, bool, error) {
	h := s.handoff.Load()
	var token string
	// An api process hands the messages to a worker process instead, if
	// it knows one (remote.go).
	var remote remoteWorker
	handing := false
	if h == nil {
		remote, handing = s.pickWorker()
	}
	lease := s.handoffLease(h)
	if handing {
		lease = remote.lease
	}
	var reserved []string // endpoint ids holding a reservation of h
	unreserve := func() {
		for _, id := range reserved {
			h.Unreserve(id)
		}
		reserved = nil
	}
	defer unreserve() // (after a commit, only those not handed over are left)

	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return Event{}, nil, false, translate(err, "publish event")
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // a no-op after Commit

	// The endpoints, FOR SHARE like a send's: a concurrent pause, resume or
	// delete finishes first, and this sees its result.
	rows, err := tx.Query(ctx, `SELECT id, paused, event_types, owner_id, ordering FROM endpoints
WHERE project_id = $1 AND deleted_at IS NULL AND NOT inbound AND ($2::text IS NULL OR owner_id = $2)
ORDER BY id FOR SHARE`, ev.ProjectID, ev.OwnerID)
	if err != nil {
		return Event{}, nil, false, translate(err, "publish event")
	}
	var msgs []Message
	toks := []*string{}
	for rows.Next() {
		var e Endpoint
		var types string
		if err := rows.Scan(&e.ID, &e.Paused, &types, &e.OwnerID, &e.Ordering); err != nil {
			rows.Close()
			return Event{}, nil, false, translate(err, "publish event")
		}
		if err := e.EventTypes.Scan(types); err != nil {
			rows.Close()
			return Event{}, nil, false, translate(err, "publish event")
		}
		if !match(e) {
			continue
		}
		m := fanOutMessage(template, e, newID())
		var tok *string
		if !e.Paused && m.FIFOKey == nil {
			here := h != nil && h.Reserve(e.ID)
			if here {
				reserved = append(reserved, e.ID)
			}
			// (to another process: the first maxHandedPerNotify only)
			if here || (handing && len(msgs) < maxHandedPerNotify) {
				if token == "" {
					token = rand.Text()
				}
				tok = &token
			}
		}
		msgs, toks = append(msgs, m), append(toks, tok)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Event{}, nil, false, translate(err, "publish event")
	}

	ev.EndpointCount = len(msgs)
	tag, err := tx.Exec(ctx, `INSERT INTO events (id, project_id, event_type, owner_id, idempotency_key, payload_sha256, endpoint_count, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
		ev.ID, ev.ProjectID, ev.EventType, ev.OwnerID, ev.IdempotencyKey, ev.PayloadSHA256, ev.EndpointCount, ev.CreatedAt)
	if err != nil {
		return Event{}, nil, false, translate(err, "publish event")
	}
	if tag.RowsAffected() == 0 {
		// The idempotency key is taken (a concurrent publish with it has
		// committed by now): answer with that event.
		unreserve()
		return s.pgRepublished(ctx, tx, ev)
	}
	if len(msgs) == 0 {
		if err := commit(ctx, tx); err != nil {
			return Event{}, nil, false, translate(err, "publish event")
		}
		return ev, nil, true, nil
	}

	n := len(msgs)
	ids, endpoints, statuses := make([]string, n), make([]string, n), make([]string, n)
	fifoKeys := make([]*string, n)
	wake := false // a message is queued without a worker: the claimers must look
	for i, m := range msgs {
		ids[i], endpoints[i], statuses[i], fifoKeys[i] = m.ID, m.EndpointID, m.Status, m.FIFOKey
		wake = wake || (m.Status == StatusQueued && toks[i] == nil)
	}
	hv, err := template.Headers.Value()
	if err != nil {
		return Event{}, nil, false, translate(err, "publish event")
	}
	var ret *int32
	if template.RetentionHours != nil {
		v := int32(*template.RetentionHours) //nolint:gosec // validated 0-2160
		ret = &v
	}
	got, targets, decodeErr, err := scanInserted(tx.Query(ctx, pgPublishInsert, ids, endpoints, statuses, toks, fifoKeys,
		ev.ProjectID, template.Payload, template.PayloadSHA256, int32(template.SizeBytes), hv, ret, template.CreatedAt, //nolint:gosec // ≤ 1 MiB
		lease.Seconds(), template.EventType, template.EventID, template.TraceParent))
	if err == nil {
		err = decodeErr
	}
	if err == nil && len(got) != n {
		err = errors.New("publish event: not every message was inserted")
	}
	if err == nil && wake {
		// (other processes hear it at commit; this one is poked below)
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, dueChannel, s.instance)
	}
	if err == nil && handing {
		// The worker process hears of its messages at commit.
		var leased []string
		for _, m := range msgs {
			if got[m.ID].leased {
				leased = append(leased, m.ID)
			}
		}
		if len(leased) > 0 {
			_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, remote.channel, token+" "+strings.Join(leased, " "))
		}
	}
	if err != nil {
		return Event{}, nil, false, translate(err, "publish event")
	}
	if err := commit(ctx, tx); err != nil {
		return Event{}, nil, false, translate(err, "publish event")
	}

	left := reserved[:0]
	for i := range msgs {
		row := got[msgs[i].ID]
		if h != nil && toks[i] != nil {
			if t, ok := targets[msgs[i].EndpointID]; ok && row.leased {
				msgs[i].LeaseToken = &token
				h.Start(msgs[i], t, token)
				continue
			}
			// Not expected (every row was inserted with its lease): the
			// lease ends unattended and a claim takes the message then.
			left = append(left, msgs[i].EndpointID)
		}
	}
	reserved = left // given back by the deferred unreserve
	for _, m := range msgs {
		s.countStats(m.ProjectID, m.EndpointID, m.ID, func(d *StatsDelta) { d.Total++ })
	}
	if wake {
		// (other processes were notified at commit)
		s.poke()
	}
	return ev, msgs, true, nil
}

// commit commits tx even if the request's context ends meanwhile (the
// client went away): a commit cut short leaves its outcome unknown, and
// rows it stored leased would wait out their lease.
func commit(ctx context.Context, tx pgx.Tx) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sendBatchDeadline)
	defer cancel()
	return tx.Commit(ctx)
}

// pgPublishInsert stores a published event's messages: one row per
// element of the arrays ($1-$5: id, endpoint, status, lease token, FIFO
// key), everything else shared ($6-$16), so the payload travels once. The
// endpoints were read FOR SHARE earlier in the same transaction, so no
// join to them is needed; the targets of the leased rows come back as a
// send's do (scanInserted).
var pgPublishInsert = `WITH v AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS v(id, endpoint_id, status, tok, fifo_key)),
ins AS (
  INSERT INTO messages (id, project_id, endpoint_id, status, payload, payload_sha256, size_bytes, headers,
    retention_hours, next_attempt_at, created_at, updated_at, lease_token, lease_until, fifo_key, event_type, event_id, trace_parent)
  SELECT v.id, $6::text, v.endpoint_id, v.status, $7::bytea, $8::text, $9::integer, $10::text,
    $11::integer, CASE WHEN v.status = 'paused' THEN NULL ELSE $12::timestamptz END, $12::timestamptz, $12::timestamptz,
    v.tok, CASE WHEN v.tok IS NOT NULL THEN clock_timestamp() + make_interval(secs => $13::double precision) END, v.fifo_key, $14::text, $15::text, $16::text
  FROM v
  RETURNING id, status, endpoint_id, lease_token),
` + pgTargetsOf + `
SELECT ins.id, ins.status, ins.lease_token IS NOT NULL, NULL, ` + pgTargetColumns + `
FROM ins LEFT JOIN t ON t.id = ins.endpoint_id AND ins.lease_token IS NOT NULL`

// pgRepublished answers a publish whose idempotency key is taken: the
// original event with its messages, or ErrEventIdempotencyMismatch if the
// type, owner or payload differ.
func (s postgresPath) pgRepublished(ctx context.Context, tx pgx.Tx, ev Event) (Event, []Message, bool, error) {
	if ev.IdempotencyKey == nil {
		return Event{}, nil, false, errors.New("publish event: no row inserted")
	}
	var o Event
	err := tx.QueryRow(ctx, `SELECT id, project_id, event_type, owner_id, idempotency_key, payload_sha256, endpoint_count, created_at
FROM events WHERE project_id = $1 AND idempotency_key = $2`, ev.ProjectID, *ev.IdempotencyKey).
		Scan(&o.ID, &o.ProjectID, &o.EventType, &o.OwnerID, &o.IdempotencyKey, &o.PayloadSHA256, &o.EndpointCount, &o.CreatedAt)
	if err != nil {
		return Event{}, nil, false, translate(err, "publish event")
	}
	if !ev.repeats(o) {
		return Event{}, nil, false, ErrEventIdempotencyMismatch
	}
	rows, err := tx.Query(ctx, `SELECT id, endpoint_id, status FROM messages WHERE event_id = $1 ORDER BY id`, o.ID)
	if err != nil {
		return Event{}, nil, false, translate(err, "publish event")
	}
	msgs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Message, error) {
		var m Message
		err := r.Scan(&m.ID, &m.EndpointID, &m.Status)
		return m, err
	})
	if err != nil {
		return Event{}, nil, false, translate(err, "publish event")
	}
	return o, msgs, false, nil
}
