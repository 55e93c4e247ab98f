package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"
)

// InboundEndpoint receives webhooks from a provider at its ingest URL and
// forwards them to URL. Its delivery target is the endpoints row with the
// same id (Inbound set), which holds URL, the signing keys and the circuit
// breaker's state; URL and SigningEnabled are read from it.
type InboundEndpoint struct {
	ID          string `gorm:"primaryKey"`
	ProjectID   string
	Name        string
	Description string
	Mode        string
	// TokenHash is the SHA-256 (hex) of the ingest token.
	TokenHash         string
	Provider          *string
	VerifyStaticToken bool
	TokenHeaderName   *string
	TokenQueryParam   *string
	TokenValueHash    *string
	VerifyHMAC        bool    `gorm:"column:verify_hmac"`
	HMACHeaderName    *string `gorm:"column:hmac_header_name"`
	// HMACSecretSealed is the HMAC secret sealed by master key HMACKeyID.
	HMACSecretSealed       []byte  `gorm:"column:hmac_secret_sealed"`
	HMACKeyID              *string `gorm:"column:hmac_key_id"`
	HMACAlgorithm          string  `gorm:"column:hmac_algorithm"`
	HMACEncoding           string  `gorm:"column:hmac_encoding"`
	HMACPrefix             *string `gorm:"column:hmac_prefix"`
	TimestampHeaderName    *string
	TimestampTTLSeconds    *int       `gorm:"column:timestamp_ttl_seconds"`
	VerifyIPAllowlist      bool       `gorm:"column:verify_ip_allowlist"`
	AllowedCIDRs           StringList `gorm:"column:allowed_cidrs"`
	IdempotencyHeaderNames StringList
	IngestResponseCode     int
	Paused                 bool
	// Pull endpoints: how many days acknowledged events are kept (nil:
	// DefaultPullRetentionDays), and where the event type is read from
	// ("header" or "body", with the header name or a JSON dot path).
	RetentionDays   *int
	EventTypeSource *string
	EventTypePath   *string
	ExpiresAt       *time.Time
	CreatedAt       time.Time
	UpdatedAt       time.Time
	DeletedAt       *time.Time

	// From the delivery target (read only).
	URL            string `gorm:"->;column:url"`
	SigningEnabled bool   `gorm:"->;column:signing_enabled"`
}

// Expired reports whether an ephemeral endpoint's time has passed at now.
func (e InboundEndpoint) Expired(now time.Time) bool {
	return e.ExpiresAt != nil && !now.Before(*e.ExpiresAt)
}

// InboundRejection is an ingest request that was refused, kept
// RejectionRetention for users to see why.
type InboundRejection struct {
	ID                string `gorm:"primaryKey"`
	ProjectID         string
	InboundEndpointID string
	ReasonCode        string
	ReasonDetail      *string
	SourceIP          *string `gorm:"column:source_ip"`
	HeadersRedacted   *string
	ReceivedAt        time.Time
}

// RejectionRetention is how long rejections are kept.
const RejectionRetention = 7 * 24 * time.Hour

// inboundSelect reads inbound endpoints with their target's URL and
// signing switch.
func (s *Store) inboundSelect(ctx context.Context) *gorm.DB {
	return s.db.WithContext(ctx).Table("inbound_endpoints ie").
		Select("ie.*, e.url AS url, e.hmac_enabled AS signing_enabled").
		Joins("JOIN endpoints e ON e.id = ie.id")
}

// CreateInboundEndpoint stores an inbound endpoint, its delivery target
// (target.ID must be ie.ID) and the target's first signing key, in one
// transaction.
func (s *Store) CreateInboundEndpoint(ctx context.Context, ie InboundEndpoint, target Endpoint, k SigningKey) error {
	target.Inbound = true
	// The outbound rule of one endpoint per URL does not apply: an inbound
	// target's normalised URL is its own.
	target.URLNormalized = "inbound:" + target.ID
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&target).Error; err != nil {
			return err
		}
		if err := tx.Create(&k).Error; err != nil {
			return err
		}
		return tx.Omit("url", "signing_enabled").Create(&ie).Error
	})
	return translate(err, "create inbound endpoint")
}

// GetInboundEndpoint returns a live inbound endpoint of the project
// (expired ones included), or ErrNotFound.
func (s *Store) GetInboundEndpoint(ctx context.Context, projectID, id string) (InboundEndpoint, error) {
	var ie InboundEndpoint
	err := s.inboundSelect(ctx).Where("ie.id = ? AND ie.project_id = ? AND ie.deleted_at IS NULL", id, projectID).Take(&ie).Error
	return ie, translate(err, "get inbound endpoint")
}

// IngestCacheTTL is how long the ingest route trusts an inbound endpoint
// it has read: a change made through another process (pause, delete, a
// new check) applies to this process's ingest within that time; through
// this process, at once.
const IngestCacheTTL = time.Second

// ingestCacheMax bounds the cached endpoints; past it the cache starts
// again empty.
const ingestCacheMax = 10_000

type ingestCached struct {
	ie InboundEndpoint
	at time.Time
}

// ingestCache holds the inbound endpoints the ingest route read recently
// (found ones only: unknown ids are not remembered).
type ingestCache struct {
	mu sync.Mutex
	m  map[string]ingestCached
	// gen counts forgets: a read that started before one is not cached
	// (it may have read the row before the change).
	gen uint64
}

// get returns a fresh cached endpoint, or the generation a read starting
// now must quote to put.
func (c *ingestCache) get(id string, now time.Time) (InboundEndpoint, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok || now.Sub(e.at) >= IngestCacheTTL || now.Before(e.at) {
		return InboundEndpoint{}, c.gen, false
	}
	return e.ie, c.gen, true
}

func (c *ingestCache) put(ie InboundEndpoint, now time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return // a change was made meanwhile: the row read may be stale
	}
	if c.m == nil || len(c.m) >= ingestCacheMax {
		c.m = map[string]ingestCached{}
	}
	c.m[ie.ID] = ingestCached{ie: ie, at: now}
}

func (c *ingestCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.m, id)
}

// GetInboundEndpointAny is GetInboundEndpoint with deleted endpoints too
// (a deleted pull endpoint's events stay readable).
func (s *Store) GetInboundEndpointAny(ctx context.Context, projectID, id string) (InboundEndpoint, error) {
	var ie InboundEndpoint
	err := s.inboundSelect(ctx).Where("ie.id = ? AND ie.project_id = ?", id, projectID).Take(&ie).Error
	return ie, translate(err, "get inbound endpoint")
}

// IngestEndpoint returns the live inbound endpoint id, whatever its
// project, for the ingest route (which authenticates by its token), or
// ErrNotFound. It may answer from a copy up to IngestCacheTTL old.
func (s *Store) IngestEndpoint(ctx context.Context, id string) (InboundEndpoint, error) {
	now := time.Now()
	ie, gen, ok := s.ingest.get(id, now)
	if ok {
		return ie, nil
	}
	err := s.inboundSelect(ctx).Where("ie.id = ? AND ie.deleted_at IS NULL", id).Take(&ie).Error
	if err != nil {
		return ie, translate(err, "get inbound endpoint")
	}
	s.ingest.put(ie, now, gen)
	return ie, nil
}

// ListInboundEndpoints returns up to limit live, unexpired inbound
// endpoints of the project, newest first, after the id beforeID: the pull
// endpoints, or all the others.
func (s *Store) ListInboundEndpoints(ctx context.Context, projectID string, pull bool, beforeID string, limit int) ([]InboundEndpoint, error) {
	q := s.inboundSelect(ctx).Where("ie.project_id = ? AND ie.deleted_at IS NULL AND (ie.expires_at IS NULL OR ie.expires_at > ?)", projectID, Now())
	if pull {
		q = q.Where("ie.mode = ?", ModePull)
	} else {
		q = q.Where("ie.mode <> ?", ModePull)
	}
	if beforeID != "" {
		q = q.Where("ie.id < ?", beforeID)
	}
	var out []InboundEndpoint
	err := q.Order("ie.id DESC").Limit(limit).Find(&out).Error
	return out, translate(err, "list inbound endpoints")
}

// InboundUpdate is a change to an inbound endpoint: Fields are columns of
// inbound_endpoints; URL (with its normalised form) and SigningEnabled
// change the delivery target.
type InboundUpdate struct {
	Fields         map[string]any
	URL            *string
	SigningEnabled *bool
}

// UpdateInboundEndpoint applies u to a live inbound endpoint of the
// project, or returns ErrNotFound.
func (s *Store) UpdateInboundEndpoint(ctx context.Context, projectID, id string, u InboundUpdate) error {
	defer s.ingest.forget(id)
	now := Now()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		fields := map[string]any{"updated_at": now}
		for k, v := range u.Fields {
			fields[k] = v
		}
		res := tx.Table("inbound_endpoints").Where("id = ? AND project_id = ? AND deleted_at IS NULL", id, projectID).Updates(fields)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrNotFound
		}
		target := map[string]any{"updated_at": now}
		if u.URL != nil {
			target["url"] = *u.URL
		}
		if u.SigningEnabled != nil {
			target["hmac_enabled"] = *u.SigningEnabled
		}
		return tx.Model(&Endpoint{}).Where("id = ? AND inbound", id).Updates(target).Error
	})
	if errors.Is(err, ErrNotFound) {
		return err
	}
	return translate(err, "update inbound endpoint")
}

// DeleteInboundEndpoint soft-deletes an inbound endpoint of the project:
// intake stops; its messages are still forwarded (the delivery target
// stays). It returns ErrNotFound.
func (s *Store) DeleteInboundEndpoint(ctx context.Context, projectID, id string) error {
	defer s.ingest.forget(id)
	now := Now()
	res := s.db.WithContext(ctx).Table("inbound_endpoints").Where("id = ? AND project_id = ? AND deleted_at IS NULL", id, projectID).
		Updates(map[string]any{"deleted_at": now, "updated_at": now})
	if res.Error != nil {
		return translate(res.Error, "delete inbound endpoint")
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// SetInboundPaused pauses or resumes an inbound endpoint's intake. A
// resume also resumes forwarding if the circuit breaker disabled it, and
// returns how many held messages that queued.
func (s *Store) SetInboundPaused(ctx context.Context, projectID, id string, paused bool) (int64, error) {
	defer s.ingest.forget(id)
	res := s.db.WithContext(ctx).Table("inbound_endpoints").Where("id = ? AND project_id = ? AND deleted_at IS NULL", id, projectID).
		Updates(map[string]any{"paused": paused, "updated_at": Now()})
	if res.Error != nil {
		return 0, translate(res.Error, "pause inbound endpoint")
	}
	if res.RowsAffected == 0 {
		return 0, ErrNotFound
	}
	if paused {
		return 0, nil
	}
	ie, err := s.GetInboundEndpoint(ctx, projectID, id)
	if err != nil || ie.Mode != "forward" {
		return 0, err // a cli endpoint's target stays paused: listeners read its messages
	}
	target, err := s.GetEndpoint(ctx, projectID, id)
	if err != nil || !target.Paused {
		return 0, err
	}
	return s.SetEndpointPaused(ctx, projectID, id, false)
}

// InsertInbound stores a received message (m.Inbound, m.EndpointID the
// inbound endpoint) as queued, unless its idempotency key was seen on the
// endpoint: then it writes nothing and returns the original message with
// created=false. The insert is the send's (InsertMessage's fast path): on
// PostgreSQL concurrent ones share a statement and commit, and free
// workers of this process take their messages at commit. That statement
// leaves a used key out before it locks or writes anything, so a repeat
// costs its index reads (the statement's and one to find the original) and
// no write.
func (s *Store) InsertInbound(ctx context.Context, m Message) (Message, bool, error) {
	m.Inbound = true
	res, err := s.hot.insert(ctx, m)
	if err != nil {
		return Message{}, false, translate(err, "store inbound message")
	}
	if res.status == "" {
		// Not inserted: the key was used (the delivery target is never
		// deleted).
		if m.IdempotencyKey == nil {
			return Message{}, false, errors.New("store inbound message: no row inserted")
		}
		orig, found, err := s.hot.inboundOriginal(ctx, m.EndpointID, *m.IdempotencyKey)
		if err == nil && !found {
			err = errors.New("an inbound message was not stored and its idempotency key is unknown")
		}
		return orig, false, translate(err, "find the original message")
	}
	m.Status = res.status
	s.countStats(m.ProjectID, m.EndpointID, m.ID, func(d *StatsDelta) { d.Total++ })
	return m, true, nil
}

func (s *Store) inboundByKey(db *gorm.DB, endpointID, key string) (Message, error) {
	var m Message
	err := db.Select("id", "status", "project_id", "endpoint_id", "created_at").
		Where("endpoint_id = ? AND idempotency_key = ?", endpointID, key).Take(&m).Error
	return m, err
}

// RecordRejection stores a refused ingest request.
func (s *Store) RecordRejection(ctx context.Context, r InboundRejection) error {
	return translate(s.db.WithContext(ctx).Create(&r).Error, "record rejection")
}

// RejectionFilter selects rejections; zero fields do not filter.
type RejectionFilter struct {
	InboundEndpointID string
	From, To          *time.Time
}

// ListRejections returns up to limit rejections of the project matching f,
// newest first, after the id beforeID.
func (s *Store) ListRejections(ctx context.Context, projectID string, f RejectionFilter, beforeID string, limit int) ([]InboundRejection, error) {
	q := s.db.WithContext(ctx).Where("project_id = ?", projectID)
	if f.InboundEndpointID != "" {
		q = q.Where("inbound_endpoint_id = ?", f.InboundEndpointID)
	}
	if f.From != nil {
		q = q.Where("received_at >= ?", f.From.UTC())
	}
	if f.To != nil {
		q = q.Where("received_at < ?", f.To.UTC())
	}
	if beforeID != "" {
		q = q.Where("id < ?", beforeID)
	}
	var out []InboundRejection
	err := q.Order("id DESC").Limit(limit).Find(&out).Error
	return out, translate(err, "list rejections")
}

// AllInbound is the endpoint id of a project's all-inbound-endpoint
// counters (AllEndpoints counts outbound messages only).
const AllInbound = "inbound"

// aggregateOf is the all-endpoints counter key an endpoint's messages add
// to: outbound endpoint ids start with ep_, inbound ones are UUIDs.
func aggregateOf(endpointID string) string {
	if strings.HasPrefix(endpointID, "ep_") {
		return AllEndpoints
	}
	return AllInbound
}

// ResealInboundSecrets re-seals, as ResealSigningKeys does, the HMAC
// secrets of inbound endpoints (deleted ones too) sealed by a master key
// other than activeID; reseal returns a row's secret sealed under the
// active key.
func (s *Store) ResealInboundSecrets(ctx context.Context, activeID string, batchSize int, reseal func(InboundEndpoint) (masterKeyID string, sealed []byte, err error)) (map[string]int, error) {
	return s.resealInBatches(ctx, "inbound secrets", batchSize, func(after string) (string, int, func(*gorm.DB, map[string]int) error, error) {
		var batch []InboundEndpoint
		err := s.db.WithContext(ctx).Table("inbound_endpoints").Select("id", "hmac_key_id", "hmac_secret_sealed").
			Where("hmac_key_id IS NOT NULL AND hmac_key_id <> ? AND id > ?", activeID, after).
			Order("id").Limit(max(batchSize, 1)).Find(&batch).Error
		if err != nil || len(batch) == 0 {
			return "", 0, nil, translate(err, "read inbound secrets to re-seal")
		}
		keyIDs, sealed := make([]string, len(batch)), make([][]byte, len(batch))
		for i, ie := range batch {
			var err error
			if keyIDs[i], sealed[i], err = reseal(ie); err != nil {
				return "", 0, nil, fmt.Errorf("re-seal the HMAC secret of inbound endpoint %s (master key %s): %w", ie.ID, *ie.HMACKeyID, err)
			}
		}
		write := func(tx *gorm.DB, done map[string]int) error {
			for i, ie := range batch {
				// Compare-and-swap: a PATCH meanwhile wins.
				res := tx.Table("inbound_endpoints").Where("id = ? AND hmac_key_id = ? AND hmac_secret_sealed = ?", ie.ID, *ie.HMACKeyID, ie.HMACSecretSealed).
					Updates(map[string]any{"hmac_key_id": keyIDs[i], "hmac_secret_sealed": sealed[i]})
				if res.Error != nil {
					return res.Error
				}
				done[*ie.HMACKeyID] += int(res.RowsAffected)
			}
			return nil
		}
		return batch[len(batch)-1].ID, len(batch), write, nil
	})
}

// ListenBatch is the most messages one ListenMessages call returns.
const ListenBatch = 100

// ListenRetention is how long a cli endpoint holds a webhook for
// listeners; then it is finished (succeeded) and the usual retention
// removes it.
const ListenRetention = 24 * time.Hour

// ListenSettle is how old a message must be before listeners get it:
// message ids are minted before their commit, and concurrent commits can
// land out of id order, so a cursor at the newest id could otherwise pass
// a message that commits just after.
const ListenSettle = time.Second

// ListenMessages returns up to ListenBatch live messages received at the
// inbound endpoint (of the project) after the message id after and at
// least ListenSettle before now, oldest first, with their bodies.
func (s *Store) ListenMessages(ctx context.Context, projectID, endpointID, after string, now time.Time) ([]Message, error) {
	var out []Message
	err := s.db.WithContext(ctx).Select("id", "endpoint_id", "payload", "size_bytes", "headers", "created_at").
		Where("endpoint_id = ? AND project_id = ? AND inbound AND deleted_at IS NULL AND id > ? AND id < ?", endpointID, projectID, after,
			idFloor(now.Add(-ListenSettle))).
		Order("id").Limit(ListenBatch).Find(&out).Error
	return out, translate(err, "read messages for a listener")
}

// ListenCursorAt is the listen cursor of time t: every message received
// after it sorts after it (message ids are UUIDv7).
func ListenCursorAt(t time.Time) string { return idFloor(t) }
