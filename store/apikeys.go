package store

import (
	"context"
	"errors"
	"time"
)

// lastUsedGranularity bounds how often authenticating with a key writes its
// last_used_at, so busy keys do not turn every request into a write.
const lastUsedGranularity = time.Minute

// CreateAPIKey stores k; k.ProjectID must name an existing project.
func (s *Store) CreateAPIKey(ctx context.Context, k APIKey) error {
	return translate(s.db.WithContext(ctx).Create(&k).Error, "create API key")
}

// ListAPIKeys returns the project's live keys, newest first.
func (s *Store) ListAPIKeys(ctx context.Context, projectID string) ([]APIKey, error) {
	var ks []APIKey
	err := s.db.WithContext(ctx).
		Where("project_id = ? AND deleted_at IS NULL", projectID).
		Order("id DESC").Find(&ks).Error
	return ks, translate(err, "list API keys")
}

// DeleteAPIKey soft-deletes a key of the project; it stops authenticating at
// once. It returns ErrNotFound if the project has no such live key.
func (s *Store) DeleteAPIKey(ctx context.Context, projectID, id string) error {
	res := s.db.WithContext(ctx).Model(&APIKey{}).
		Where("id = ? AND project_id = ? AND deleted_at IS NULL", id, projectID).
		Update("deleted_at", Now())
	if res.Error != nil {
		return translate(res.Error, "delete API key")
	}
	if res.RowsAffected == 0 {
		return ErrNotFound
	}
	return nil
}

// Authenticate finds the live key whose hash is keyHash, with its
// project's API rate limits (read in the same query), and records the key's
// use (at most once per minute). It returns ErrNotFound for an unknown or
// deleted key.
func (s *Store) Authenticate(ctx context.Context, keyHash string) (APIKey, ProjectLimits, error) {
	k, lim, err := s.hot.authenticate(ctx, keyHash)
	if errors.Is(err, ErrNotFound) {
		return APIKey{}, ProjectLimits{}, err
	}
	if err != nil {
		return APIKey{}, ProjectLimits{}, translate(err, "authenticate")
	}
	now := Now()
	if k.LastUsedAt == nil || now.Sub(*k.LastUsedAt) >= lastUsedGranularity {
		err := s.db.WithContext(ctx).Model(&APIKey{}).
			Where("id = ? AND (last_used_at IS NULL OR last_used_at < ?)", k.ID, now.Add(-lastUsedGranularity)).
			Update("last_used_at", now).Error
		if err != nil {
			return APIKey{}, ProjectLimits{}, translate(err, "record API key use")
		}
		k.LastUsedAt = &now
	}
	return k, lim, nil
}
