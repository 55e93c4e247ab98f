package store

import (
	"database/sql/driver"
	"encoding/json"
	"errors"
	"time"
)

// MaxActiveSigningKeys is how many signing keys an endpoint may have at once.
const MaxActiveSigningKeys = 2

// Project is a tenant. Every other row belongs to exactly one.
type Project struct {
	ID        string `gorm:"primaryKey"`
	Name      string
	CreatedAt time.Time
	// RateLimitPerMinute caps the project's management API requests per
	// minute (per hookd process); 0 means the server default.
	RateLimitPerMinute int
	// SendRateLimitPerMinute caps its POST /v1/webhooks/send requests per
	// minute (per hookd process); 0 means unlimited.
	SendRateLimitPerMinute int
	// RetentionHours is how long its messages' payloads are kept after
	// they finish; 0 means the server default.
	RetentionHours int
	// AllowUnknownEventTypes lets events of types the project has not
	// created be published.
	AllowUnknownEventTypes bool `gorm:"default:true"`
}

// Bounds of the project settings (the database checks them too).
const (
	MaxRateLimitPerMinute = 1_000_000
	MaxRetentionHours     = 2160
)

// ProjectLimits are the API rate limits of a project, in requests per
// minute, as Authenticate returns them with the caller's key.
type ProjectLimits struct {
	// RateLimitPerMinute applies to management routes; 0 means the server
	// default.
	RateLimitPerMinute int
	// SendRateLimitPerMinute applies to sends; 0 means unlimited.
	SendRateLimitPerMinute int
}

// APIKey is a bearer key. Only its SHA-256 (KeyHash) and display Prefix are
// stored; the key itself is shown once at creation.
type APIKey struct {
	ID         string `gorm:"primaryKey"`
	ProjectID  string
	Label      string
	Mode       string // "live" or "test"
	Prefix     string
	KeyHash    string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	DeletedAt  *time.Time
}

// Endpoint is a receiver of deliveries. DeletedAt set means soft-deleted:
// every lookup then treats it as missing.
type Endpoint struct {
	ID            string `gorm:"primaryKey"`
	ProjectID     string
	URL           string `gorm:"column:url"`
	URLNormalized string `gorm:"column:url_normalized"`
	Description   string
	RateLimitRPS  int `gorm:"column:rate_limit_rps"`
	Burst         int
	// Headers are custom headers stored in plain text by releases before
	// they were sealed; empty for an endpoint whose headers are sealed.
	Headers Headers
	// HeadersSealed is the endpoint's custom headers sealed (package
	// customheaders) under master key HeadersKeyID; nil when it has none
	// or they are still in Headers.
	HeadersSealed []byte
	HeadersKeyID  *string
	HMACEnabled   bool `gorm:"column:hmac_enabled"`
	// SignatureScheme is how deliveries are signed (package signature):
	// "hookbridge" or "standard_webhooks"; empty takes the default.
	SignatureScheme string `gorm:"default:hookbridge"`
	// Endpoint authentication (package customheaders): the credential is
	// the header AuthHeader inside the sealed headers; AuthType is bearer,
	// basic or header, AuthHint a hint for display. All nil without one.
	AuthType   *string
	AuthHeader *string
	AuthHint   *string
	// EventTypes are the patterns of the event types the endpoint receives
	// (package eventtypes); empty: every type. OwnerID is the user's own
	// customer the endpoint belongs to.
	EventTypes StringList
	OwnerID    *string
	// Ordering is "none" or "fifo": one message at a time, in the order
	// they were accepted, per ordering key.
	Ordering string `gorm:"default:none"`
	Paused   bool
	// Inbound marks the delivery target of an inbound endpoint (same id):
	// never listed, published to or sent to as an outbound endpoint.
	Inbound bool
	// Health, kept by the circuit breaker (package delivery).
	ConsecutiveFailures int
	FailingSince        *time.Time
	ProbeAfter          *time.Time // while failing, no attempt starts before this
	ProbeLeaseUntil     *time.Time // a probe attempt is in flight until at most this
	DisabledAt          *time.Time // set with Paused when the breaker disabled it
	DisabledReason      *string
	CreatedAt           time.Time
	UpdatedAt           time.Time
	DeletedAt           *time.Time
}

// SigningKey is one signing secret of an endpoint, sealed by a master key
// (package secrets) with the key's ID as associated data.
type SigningKey struct {
	ID           string `gorm:"primaryKey"`
	ProjectID    string
	EndpointID   string
	MasterKeyID  string
	SecretSealed []byte
	KeyHint      string
	CreatedAt    time.Time
}

// Headers is a header map stored as a JSON object in a text column.
type Headers map[string]string

// Value implements driver.Valuer.
func (h Headers) Value() (driver.Value, error) {
	if h == nil {
		return "{}", nil
	}
	b, err := json.Marshal(map[string]string(h))
	return string(b), err
}

// Scan implements sql.Scanner.
func (h *Headers) Scan(src any) error {
	m := map[string]string{}
	if err := scanJSON(src, &m, "headers"); err != nil {
		return err
	}
	*h = m
	return nil
}

// scanJSON decodes a JSON text column into dst; NULL leaves dst as it is.
func scanJSON(src, dst any, what string) error {
	switch v := src.(type) {
	case string:
		return json.Unmarshal([]byte(v), dst)
	case []byte:
		return json.Unmarshal(v, dst)
	case nil:
		return nil
	}
	return errors.New(what + ": unexpected column type")
}

// StringList is a list of strings stored as a JSON array.
type StringList []string

// Value implements driver.Valuer.
func (l StringList) Value() (driver.Value, error) {
	if l == nil {
		return "[]", nil
	}
	b, err := json.Marshal([]string(l))
	return string(b), err
}

// Scan implements sql.Scanner.
func (l *StringList) Scan(src any) error {
	out := []string{}
	if err := scanJSON(src, &out, "string list"); err != nil {
		return err
	}
	*l = out
	return nil
}

// Message statuses.
const (
	StatusQueued          = "queued"
	StatusDelivering      = "delivering"
	StatusSucceeded       = "succeeded"
	StatusPendingRetry    = "pending_retry"
	StatusFailedPermanent = "failed_permanent"
	StatusPaused          = "paused"
)

// Message is one webhook to deliver. The row is also its queue entry: a
// message is due when its status is queued or pending_retry and
// NextAttemptAt has passed; while a worker holds it, status is delivering
// and LeaseUntil bounds how long before another process may take it over.
type Message struct {
	ID                string `gorm:"primaryKey"`
	ProjectID         string
	EndpointID        string
	Status            string
	Payload           []byte // the exact bytes received; nil once purged
	PayloadSHA256     string `gorm:"column:payload_sha256"`
	SizeBytes         int
	Headers           Headers
	IdempotencyKey    *string
	RetentionHours    *int
	AttemptCount      int // attempts ever made (attempt numbers continue across replays)
	BudgetUsed        int // attempts since the last replay
	FastStreak        int // consecutive 429 answers (fast retry track)
	SlowRetries       int // slow-track retries scheduled since the last replay
	ReplayCount       int
	NextAttemptAt     *time.Time
	LeaseUntil        *time.Time
	LeaseToken        *string
	LastError         *string
	ResponseStatus    *int
	ResponseLatencyMs *int
	FirstAttemptAt    *time.Time
	DeliveredAt       *time.Time
	TerminalAt        *time.Time // when it last became succeeded or failed_permanent
	EventType         *string    // set when an event made the message
	EventID           *string
	// FIFOKey is set when the endpoint delivers in order (endpoint id,
	// "/", ordering key): the message is claimed only when no older one
	// with the same key is waiting or in flight.
	FIFOKey *string `gorm:"column:fifo_key"`
	// TraceParent is the W3C traceparent of the traced request that sent
	// the message: its attempts are spans of that trace.
	TraceParent *string `gorm:"column:trace_parent"`
	// Inbound marks a message received at an inbound endpoint's ingest
	// URL (EndpointID is the inbound endpoint's id).
	Inbound bool
	// FetchedAt is when a held (pull) message was first fetched.
	FetchedAt *time.Time
	// OrderingKey is the send's ordering key, read when it is inserted
	// (FIFOKey keeps it); not a column.
	OrderingKey *string `gorm:"-"`
	CreatedAt   time.Time
	UpdatedAt   time.Time
	DeletedAt   *time.Time
}

// Attempt is one HTTP delivery attempt of a message.
type Attempt struct {
	ID                    string `gorm:"primaryKey"`
	ProjectID             string
	MessageID             string
	AttemptNo             int
	StartedAt             time.Time
	Outcome               string // success, retryable or permanent
	ResponseStatus        *int
	DurationMs            float64
	DNSMs                 *float64 `gorm:"column:dns_ms"`
	ConnectMs             *float64
	TLSMs                 *float64 `gorm:"column:tls_ms"`
	TTFBMs                *float64 `gorm:"column:ttfb_ms"`
	TransferMs            *float64
	ResolvedIP            *string `gorm:"column:resolved_ip"`
	ConnReused            bool
	RequestHeaders        Headers
	ResponseHeaders       Headers
	ResponseBody          *string
	ResponseBodyTruncated bool
	ErrorText             *string
	RetryType             *string
	RetryAfterSeconds     *int
}

// fifoKeyOf is the fifo_key of a message with ordering key okey to e: nil
// unless e delivers in order.
func fifoKeyOf(e Endpoint, okey *string) *string {
	if e.Ordering != OrderingFIFO {
		return nil
	}
	k := e.ID + "/" + deref(okey)
	return &k
}

// OrderingFIFO is the ordering of an endpoint that delivers in order (the
// other is "none").
const OrderingFIFO = "fifo"

// waitingStatusList is the statuses of a message that still holds the ones
// behind it on a FIFO endpoint, as SQL (the partial index
// messages_fifo_wait_idx names the same list).
const waitingStatusList = `('queued', 'delivering', 'pending_retry', 'paused')`

// fifoWaiting selects the FIFO messages that hold the ones behind them
// (the rows of the partial index messages_fifo_wait_idx).
const fifoWaiting = `fifo_key IS NOT NULL AND deleted_at IS NULL AND status IN ` + waitingStatusList

// fifoFree is the claim condition that keeps back a message of a FIFO
// endpoint while an older one with its key waits or is in flight (m is the
// messages row being claimed).
const fifoFree = `(m.fifo_key IS NULL OR NOT EXISTS (SELECT 1 FROM messages o WHERE o.fifo_key = m.fifo_key AND o.id < m.id
    AND o.status IN ` + waitingStatusList + ` AND o.deleted_at IS NULL))`
