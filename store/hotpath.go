package store

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// hotPath is one dialect's code for the paths every message takes: storing
// a send or a received webhook, publishing an event, claiming, extending
// and rescuing leases, recording an attempt, waking the claimers of other
// processes and authenticating a request. Open chooses it once
// (postgresPath or sqlitePath); the Store's methods call it instead of
// asking which database they are on, and translate its errors. The SQL
// off these paths (retention, statistics, exports, migrations) is written
// for both dialects, or branches on Dialect where it must.
type hotPath interface {
	// insert runs the one-statement insert of a send or a received
	// webhook, and wakes the claimers when the message is due. It returns
	// the stored status, or "" when nothing was inserted (the endpoint is
	// gone, or the idempotency key was used).
	insert(ctx context.Context, m Message) (sendResult, error)
	// publish is PublishEvent.
	publish(ctx context.Context, ev Event, template Message, newID func() string, match func(Endpoint) bool) (Event, []Message, bool, error)
	// claim is ClaimDue.
	claim(ctx context.Context, token string, lease time.Duration, limit int, skip []string) ([]Message, map[string]DeliveryTarget, error)
	// extendLeases renews the leases of the messages ids that one of
	// tokens holds.
	extendLeases(ctx context.Context, ids, tokens []string, lease time.Duration) error
	// rescue makes claimed messages whose lease ended due again, and
	// says how many.
	rescue(ctx context.Context) (int64, error)
	// record is RecordAttempt's write.
	record(ctx context.Context, token string, a Attempt, o Outcome) (int, error)
	// authenticate finds a live API key by its hash, with its project's
	// limits; ErrNotFound.
	authenticate(ctx context.Context, keyHash string) (APIKey, ProjectLimits, error)
	// inboundOriginal finds the message of an inbound endpoint's
	// idempotency key.
	inboundOriginal(ctx context.Context, endpointID, key string) (Message, bool, error)
	// notInFlight narrows a query of queued messages to those no worker
	// holds.
	notInFlight(db *gorm.DB) *gorm.DB
	// notifyDue wakes the other processes' claimers when tx commits.
	notifyDue(tx *gorm.DB) error
	// listenDue relays the other processes' wake-ups to Due until ctx
	// ends.
	listenDue(ctx context.Context)
	// handsOff reports whether sends can hand their messages to this
	// process's workers at commit (handoff.go).
	handsOff() bool
}
