package store

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// EndpointUpdate lists the fields a PATCH may change; nil means unchanged.
type EndpointUpdate struct {
	URL           *string
	URLNormalized *string // set together with URL
	Description   *string
	RateLimitRPS  *int
	Burst         *int
	// Headers, when set, computes the endpoint's new sealed headers and
	// credential from the row as it is, read under the row's lock, so a
	// change of the custom headers and one of the credential (which are
	// sealed together) cannot undo each other.
	Headers     func(current Endpoint) (HeadersChange, error)
	HMACEnabled *bool
	// SignatureScheme: "hookbridge" or "standard_webhooks".
	SignatureScheme *string
	EventTypes      *StringList
	OwnerID         *string // "" removes the owner
	Ordering        *string // "none" or "fifo"
}

// HeadersChange is an endpoint's new sealed header map (custom headers and
// credential) with the credential's columns (nil: no credential).
type HeadersChange struct {
	Sealed                         SealedHeaders
	AuthType, AuthHeader, AuthHint *string
}

// SealedHeaders is a custom header map sealed under master key KeyID;
// Sealed is nil for no headers.
type SealedHeaders struct {
	KeyID  string
	Sealed []byte
}

// CreateEndpoint stores e and its first signing key k in one transaction.
// It returns ErrDuplicateURL if the project has a live endpoint with the same
// normalised URL.
func (s *Store) CreateEndpoint(ctx context.Context, e Endpoint, k SigningKey) error {
	if e.Ordering == OrderingFIFO {
		s.fifoSeen.Store(true) // claim its messages from now on
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(&e).Error; err != nil {
			return err
		}
		return tx.Create(&k).Error
	})
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return ErrDuplicateURL
	}
	return translate(err, "create endpoint")
}

// GetEndpoint returns a live endpoint of the project, or ErrNotFound.
func (s *Store) GetEndpoint(ctx context.Context, projectID, id string) (Endpoint, error) {
	var e Endpoint
	err := liveEndpoint(s.db.WithContext(ctx), projectID, id).Take(&e).Error
	return e, translate(err, "get endpoint")
}

func liveEndpoint(db *gorm.DB, projectID, id string) *gorm.DB {
	return db.Where("id = ? AND project_id = ? AND deleted_at IS NULL", id, projectID)
}

// lockEndpoint reads a live endpoint inside tx and, on PostgreSQL, locks its
// row until tx ends (SQLite transactions already hold the database's write
// lock from BEGIN). All changes to an endpoint's signing keys go through it,
// which is what makes the key-count rules hold under concurrency.
func lockEndpoint(tx *gorm.DB, projectID, id string) (Endpoint, error) {
	var e Endpoint
	err := liveEndpoint(tx, projectID, id).Clauses(clause.Locking{Strength: "UPDATE"}).Take(&e).Error
	return e, err
}

// ListEndpoints returns up to limit live endpoints of the project (of one
// owner, unless ownerID is ""), newest first, starting after the endpoint
// id beforeID ("" for the first page).
func (s *Store) ListEndpoints(ctx context.Context, projectID, ownerID, beforeID string, limit int) ([]Endpoint, error) {
	db := s.db.WithContext(ctx).Where("NOT inbound")
	if ownerID != "" {
		db = db.Where("owner_id = ?", ownerID)
	}
	es, err := livePage[Endpoint](db, projectID, beforeID, limit)
	return es, translate(err, "list endpoints")
}

// livePage reads up to limit live (not soft-deleted) rows of the project,
// newest first (ids sort by time), after the id beforeID ("" for the first
// page): the keyset page every list of a project's resources uses.
func livePage[T any](db *gorm.DB, projectID, beforeID string, limit int) ([]T, error) {
	q := db.Where("project_id = ? AND deleted_at IS NULL", projectID)
	if beforeID != "" {
		q = q.Where("id < ?", beforeID)
	}
	var rows []T
	err := q.Order("id DESC").Limit(limit).Find(&rows).Error
	return rows, err
}

// UpdateEndpoint applies u to a live endpoint of the project. It returns
// ErrNotFound or ErrDuplicateURL.
func (s *Store) UpdateEndpoint(ctx context.Context, projectID, id string, u EndpointUpdate) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		e, err := lockEndpoint(tx, projectID, id)
		if err != nil {
			return err
		}
		if u.URL != nil {
			e.URL, e.URLNormalized = *u.URL, *u.URLNormalized
		}
		if u.Description != nil {
			e.Description = *u.Description
		}
		if u.RateLimitRPS != nil {
			e.RateLimitRPS = *u.RateLimitRPS
		}
		if u.Burst != nil {
			e.Burst = *u.Burst
		}
		if u.Headers != nil {
			c, err := u.Headers(e)
			if err != nil {
				return err
			}
			e.Headers, e.HeadersSealed, e.HeadersKeyID = Headers{}, c.Sealed.Sealed, nil
			if c.Sealed.Sealed != nil {
				e.HeadersKeyID = &c.Sealed.KeyID
			}
			e.AuthType, e.AuthHeader, e.AuthHint = c.AuthType, c.AuthHeader, c.AuthHint
		}
		if u.HMACEnabled != nil {
			e.HMACEnabled = *u.HMACEnabled
		}
		if u.SignatureScheme != nil {
			e.SignatureScheme = *u.SignatureScheme
		}
		if u.EventTypes != nil {
			e.EventTypes = *u.EventTypes
		}
		if u.Ordering != nil {
			e.Ordering = *u.Ordering
			if e.Ordering == OrderingFIFO {
				s.fifoSeen.Store(true) // claim them from now on
			}
		}
		if u.OwnerID != nil {
			e.OwnerID = u.OwnerID
			if *u.OwnerID == "" {
				e.OwnerID = nil
			}
		}
		e.UpdatedAt = Now()
		return tx.Select("*").Where("project_id = ?", projectID).Save(&e).Error
	})
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return ErrDuplicateURL
	}
	return translate(err, "update endpoint")
}

// DeleteEndpoint soft-deletes a live endpoint of the project; its URL is free
// for a new endpoint afterwards. Its queued, paused and pending_retry
// messages become failed_permanent ("endpoint deleted"); an attempt in
// flight finishes and is recorded but not retried. It returns ErrNotFound.
func (s *Store) DeleteEndpoint(ctx context.Context, projectID, id string) error {
	now := Now()
	var failed []string
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if _, err := lockEndpoint(tx, projectID, id); err != nil {
			return err
		}
		if err := tx.Model(&Endpoint{}).Where("id = ? AND project_id = ?", id, projectID).Updates(map[string]any{"deleted_at": now, "updated_at": now}).Error; err != nil {
			return err
		}
		// RETURNING: exactly the rows this statement failed are counted.
		var rows []Message
		err := tx.Model(&rows).Clauses(clause.Returning{Columns: []clause.Column{{Name: "id"}}}).
			// A message handed to a worker at send (still queued, leased) is
			// in flight: like a delivering one, it finishes and is recorded.
			Where("endpoint_id = ? AND project_id = ? AND status IN ?", id, projectID, []string{StatusQueued, StatusPaused, StatusPendingRetry}).
			Scopes(s.notInFlight).
			Updates(map[string]any{"status": StatusFailedPermanent, "last_error": "endpoint deleted", "next_attempt_at": nil, "terminal_at": now, "updated_at": now,
				"lease_token": nil, "lease_until": nil}).Error
		for _, m := range rows {
			failed = append(failed, m.ID)
		}
		return err
	})
	if err != nil {
		return translate(err, "delete endpoint")
	}
	for _, m := range failed {
		s.countOutcome(projectID, id, m, StatusFailedPermanent, nil)
	}
	return nil
}

// parkQueued makes the endpoint's queued messages wait as paused, as a
// pause or a breaker disable does. Messages in flight (leased, also when
// handed over at send) finish; a retry falling due is parked by the worker.
// A lease that has ended (its process died) is cleared with the parking.
func (s *Store) parkQueued(tx *gorm.DB, endpointID string, now time.Time) error {
	return tx.Model(&Message{}).Where("endpoint_id = ? AND status = ?", endpointID, StatusQueued).Scopes(s.notInFlight).
		Updates(map[string]any{"status": StatusPaused, "next_attempt_at": nil, "updated_at": now, "lease_token": nil, "lease_until": nil}).Error
}

// SetEndpointPaused pauses or resumes a live endpoint of the project. A pause
// moves its queued messages to paused (a retry that falls due while paused
// is parked by the worker); a resume moves every paused message to queued,
// due now, and returns how many, and also re-enables an endpoint the circuit
// breaker disabled. It returns ErrNotFound.
func (s *Store) SetEndpointPaused(ctx context.Context, projectID, id string, paused bool) (requeued int64, err error) {
	now := Now()
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if _, err := lockEndpoint(tx, projectID, id); err != nil {
			return err
		}
		upd := map[string]any{"paused": paused, "updated_at": now}
		if !paused {
			// Resuming re-enables an endpoint the circuit breaker disabled
			// and gives it a fresh start.
			upd["disabled_at"], upd["disabled_reason"] = nil, nil
			for k, v := range healthReset() {
				upd[k] = v
			}
		}
		if err := tx.Model(&Endpoint{}).Where("id = ? AND project_id = ?", id, projectID).Updates(upd).Error; err != nil {
			return err
		}
		if paused {
			return s.parkQueued(tx, id, now)
		}
		res := tx.Model(&Message{}).Where("endpoint_id = ? AND project_id = ? AND status = ?", id, projectID, StatusPaused).
			Updates(map[string]any{"status": StatusQueued, "next_attempt_at": now, "updated_at": now})
		if res.Error != nil {
			return res.Error
		}
		requeued = res.RowsAffected
		if requeued > 0 {
			return s.notifyDue(tx)
		}
		return nil
	})
	if err != nil {
		return 0, translate(err, "pause endpoint")
	}
	if requeued > 0 {
		s.poke()
	}
	return requeued, nil
}
