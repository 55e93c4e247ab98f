package store

import (
	"context"
	"errors"

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
	Headers       *Headers
	HMACEnabled   *bool
}

// CreateEndpoint stores e and its first signing key k in one transaction.
// It returns ErrDuplicateURL if the project has a live endpoint with the same
// normalised URL.
func (s *Store) CreateEndpoint(ctx context.Context, e Endpoint, k SigningKey) error {
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

// ListEndpoints returns up to limit live endpoints of the project, newest
// first, starting after the endpoint id beforeID ("" for the first page).
func (s *Store) ListEndpoints(ctx context.Context, projectID, beforeID string, limit int) ([]Endpoint, error) {
	q := s.db.WithContext(ctx).Where("project_id = ? AND deleted_at IS NULL", projectID)
	if beforeID != "" {
		q = q.Where("id < ?", beforeID)
	}
	var es []Endpoint
	err := q.Order("id DESC").Limit(limit).Find(&es).Error
	return es, translate(err, "list endpoints")
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
			e.Headers = *u.Headers
		}
		if u.HMACEnabled != nil {
			e.HMACEnabled = *u.HMACEnabled
		}
		e.UpdatedAt = Now()
		return tx.Select("*").Save(&e).Error
	})
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return ErrDuplicateURL
	}
	return translate(err, "update endpoint")
}

// DeleteEndpoint soft-deletes a live endpoint of the project; its URL is free
// for a new endpoint afterwards. It returns ErrNotFound.
func (s *Store) DeleteEndpoint(ctx context.Context, projectID, id string) error {
	now := Now()
	res := liveEndpoint(s.db.WithContext(ctx).Model(&Endpoint{}), projectID, id).
		Updates(map[string]any{"deleted_at": now, "updated_at": now})
	if res.Error != nil {
		return translate(res.Error, "delete endpoint")
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// SetEndpointPaused pauses or resumes a live endpoint of the project and
// returns how many messages a resume made due again. It returns ErrNotFound.
func (s *Store) SetEndpointPaused(ctx context.Context, projectID, id string, paused bool) (requeued int64, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		e, err := lockEndpoint(tx, projectID, id)
		if err != nil {
			return err
		}
		if e.Paused == paused {
			return nil
		}
		return tx.Model(&Endpoint{}).Where("id = ?", e.ID).
			Updates(map[string]any{"paused": paused, "updated_at": Now()}).Error
	})
	return 0, translate(err, "pause endpoint")
}
