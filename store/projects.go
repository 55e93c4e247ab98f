package store

import (
	"context"
	"errors"

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

// ProjectByName returns the named project, or ErrNotFound.
func (s *Store) ProjectByName(ctx context.Context, name string) (Project, error) {
	var p Project
	err := s.db.WithContext(ctx).Where("name = ?", name).Take(&p).Error
	return p, translate(err, "find project")
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
