package store

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
)

// CreateProject stores p. It returns ErrDuplicateName if the name is taken.
func (s *Store) CreateProject(ctx context.Context, p Project) error {
	err := s.db.WithContext(ctx).Create(&p).Error
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return ErrDuplicateName
	}
	return translate(err, "create project")
}

// GetProject returns the project with this id, or ErrNotFound.
func (s *Store) GetProject(ctx context.Context, id string) (Project, error) {
	var p Project
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&p).Error
	return p, translate(err, "get project")
}

// ProjectByName returns the named project, or ErrNotFound.
func (s *Store) ProjectByName(ctx context.Context, name string) (Project, error) {
	var p Project
	err := s.db.WithContext(ctx).Where("name = ?", name).Take(&p).Error
	return p, translate(err, "find project")
}

// ProjectSettings changes a project's settings: only the fields that are
// not nil change. See Project for what each means.
type ProjectSettings struct {
	RateLimitPerMinute     *int // 0–MaxRateLimitPerMinute
	SendRateLimitPerMinute *int // 0–MaxRateLimitPerMinute
	RetentionHours         *int // 0–MaxRetentionHours
	AllowUnknownEventTypes *bool
}

// RangeError is a project setting out of its range (0 to Max).
type RangeError struct {
	Column   string
	Max, Got int
}

func (e *RangeError) Error() string {
	return fmt.Sprintf("%s must be 0 to %d, got %d", e.Column, e.Max, e.Got)
}

// UpdateProjectSettings applies u to the named project and returns the
// project as stored afterwards. It returns ErrNotFound if there is no such
// project, and an error naming the field for a value out of range.
// Processes serving the API see the new rate limits within their
// authentication cache's lifetime.
func (s *Store) UpdateProjectSettings(ctx context.Context, name string, u ProjectSettings) (Project, error) {
	changes := map[string]any{}
	for _, f := range []struct {
		column string
		v      *int
		max    int
	}{
		{"rate_limit_per_minute", u.RateLimitPerMinute, MaxRateLimitPerMinute},
		{"send_rate_limit_per_minute", u.SendRateLimitPerMinute, MaxRateLimitPerMinute},
		{"retention_hours", u.RetentionHours, MaxRetentionHours},
	} {
		if f.v == nil {
			continue
		}
		if *f.v < 0 || *f.v > f.max {
			return Project{}, &RangeError{Column: f.column, Max: f.max, Got: *f.v}
		}
		changes[f.column] = *f.v
	}
	if u.AllowUnknownEventTypes != nil {
		changes["allow_unknown_event_types"] = *u.AllowUnknownEventTypes
	}
	var p Project
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if len(changes) > 0 {
			res := tx.Model(&Project{}).Where("name = ?", name).Updates(changes)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				return ErrNotFound
			}
		}
		return tx.Where("name = ?", name).Take(&p).Error
	})
	if errors.Is(err, ErrNotFound) {
		return Project{}, err
	}
	return p, translate(err, "update project settings")
}

// ListProjects returns every project, oldest first.
func (s *Store) ListProjects(ctx context.Context) ([]Project, error) {
	var ps []Project
	err := s.db.WithContext(ctx).Order("id").Find(&ps).Error
	return ps, translate(err, "list projects")
}

// Bootstrap creates project p and API key k together, but only if the
// database holds no project yet. It reports whether it created them; when
// several processes start on an empty database at once, exactly one does.
func (s *Store) Bootstrap(ctx context.Context, p Project, k APIKey) (created bool, err error) {
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&Project{}).Count(&n).Error; err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		if err := tx.Create(&p).Error; err != nil {
			return err
		}
		k.ProjectID = p.ID
		if err := tx.Create(&k).Error; err != nil {
			return err
		}
		created = true
		return nil
	})
	if errors.Is(err, gorm.ErrDuplicatedKey) {
		return false, nil // another process bootstrapped first
	}
	return created, translate(err, "bootstrap")
}
