//go:build river

package store

// The River variant of the PostgreSQL hot path, built only with the
// "river" build tag, for the benchmark that compares hookd's own queue with
// River (docs/benchmarks.md). Sends are group-committed as usual, and each
// batch's transaction also inserts one River job per due message (the job
// carries only the message id); River's workers deliver them through the
// engine. hookd's claims are off. Nothing that falls due later is
// enqueued again (retries, messages held back by a rate limit or the
// breaker, rescued ones), River's workers bypass the engine's in-flight
// bookkeeping, and the variant is set up after the API listener opens (an
// --ingest-addr listener may already serve): it measures the send →
// deliver path of make bench-river and is not a product.

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/hookd/hookd/queue"
)

// DeliverArgs is the River job of one message.
type DeliverArgs struct {
	MessageID string `json:"message_id"`
}

// Kind implements river.JobArgs.
func (DeliverArgs) Kind() string { return "hookd.deliver" }

type riverPath struct {
	postgresPath
	client *river.Client[pgx.Tx]
	sends  chan sendRequest
}

// Pool is the store's pgx pool, for River's driver.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// UseRiver makes sends insert a River job per due message in their batch's
// transaction, through client, and turns hookd's claims off.
func (s *Store) UseRiver(client *river.Client[pgx.Tx]) error {
	if s.dialect != Postgres {
		return errors.New("the River variant runs on PostgreSQL only")
	}
	rp := riverPath{postgresPath: postgresPath{s}, client: client, sends: make(chan sendRequest, queue.Backlog)}
	runBatchers(s, rp.sends, rp.insertBatch, func(r sendRequest) { r.done <- sendResult{err: ErrClosed} })
	s.hot = rp
	return nil
}

func (s riverPath) insert(ctx context.Context, m Message) (sendResult, error) {
	return s.queueSend(ctx, s.sends, m)
}

// insertBatch inserts the batch's messages and their River jobs in one
// transaction.
func (s riverPath) insertBatch(batch []sendRequest) {
	batch = liveSorted(batch)
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), sendBatchDeadline)
	defer cancel()
	got := map[string]insertedRow{}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q, args := s.insertStatement(batch, make([]*string, len(batch)), 0, nil)
		rows, err := tx.Query(ctx, q, args...)
		var decodeErr error
		got, _, decodeErr, err = scanInserted(rows, err)
		if err = errors.Join(err, decodeErr); err != nil {
			return err
		}
		jobs := make([]river.InsertManyParams, 0, len(got))
		for id, row := range got {
			if row.status == StatusQueued {
				jobs = append(jobs, river.InsertManyParams{Args: DeliverArgs{MessageID: id}})
			}
		}
		if len(jobs) == 0 {
			return nil
		}
		_, err = s.client.InsertManyFastTx(ctx, tx, jobs)
		return err
	})
	for _, r := range batch {
		r.done <- sendResult{status: got[r.m.ID].status, err: err}
	}
}

// claim finds nothing: River's workers deliver.
func (riverPath) claim(context.Context, string, time.Duration, int, []string) ([]Message, map[string]DeliveryTarget, error) {
	return nil, nil, nil
}

func (riverPath) handsOff() bool { return false }

var riverLease = newNamed(`WITH c AS (
UPDATE messages SET status = 'delivering', lease_until = now() + make_interval(secs => CAST(@lease AS double precision)),
    lease_token = CAST(@tok AS text), updated_at = CAST(@now AS timestamptz)
WHERE id = CAST(@id AS text) AND status IN ('queued', 'pending_retry') AND deleted_at IS NULL
RETURNING ` + claimedColumns + `),
` + pgTargets("SELECT endpoint_id FROM c") + `
SELECT ` + claimedSelect + `
FROM c LEFT JOIN t ON t.id = c.endpoint_id`)

// LeaseMessage leases message id to token for lease, as a claim would,
// and returns it with its delivery target; ok is false when it is no
// longer waiting for delivery.
func (s *Store) LeaseMessage(ctx context.Context, id, token string, lease time.Duration) (m Message, t DeliveryTarget, ok bool, err error) {
	targets := map[string]DeliveryTarget{}
	values := map[string]any{"lease": lease.Seconds(), "tok": token, "now": Now(), "id": id}
	out, err := postgresPath{s}.pgScanClaim(ctx, riverLease, values, nil, targets)
	if err != nil || len(out) == 0 {
		return Message{}, DeliveryTarget{}, false, translate(err, "lease message")
	}
	return out[0], targets[out[0].EndpointID], true, nil
}
