package store

import (
	"context"
	"errors"

	"gorm.io/gorm"
)

// CreateSigningKey adds k to a live endpoint of the project. Under the
// endpoint's row lock it refuses a key beyond MaxActiveSigningKeys, so
// concurrent creates cannot overshoot. It returns ErrNotFound or
// ErrMaxSigningKeys.
func (s *Store) CreateSigningKey(ctx context.Context, k SigningKey) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if _, err := lockEndpoint(tx, k.ProjectID, k.EndpointID); err != nil {
			return err
		}
		var n int64
		if err := tx.Model(&SigningKey{}).Where("endpoint_id = ? AND project_id = ?", k.EndpointID, k.ProjectID).Count(&n).Error; err != nil {
			return err
		}
		if n >= MaxActiveSigningKeys {
			return ErrMaxSigningKeys
		}
		return tx.Create(&k).Error
	})
	if errors.Is(err, ErrMaxSigningKeys) {
		return err
	}
	return translate(err, "create signing key")
}

// ListSigningKeys returns the active keys of a live endpoint of the project,
// newest first. It returns ErrNotFound if there is no such endpoint.
func (s *Store) ListSigningKeys(ctx context.Context, projectID, endpointID string) ([]SigningKey, error) {
	var ks []SigningKey
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var n int64
		if err := liveEndpoint(tx.Model(&Endpoint{}), projectID, endpointID).Count(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		return tx.Where("endpoint_id = ? AND project_id = ?", endpointID, projectID).
			Order("id DESC").Find(&ks).Error
	})
	if errors.Is(err, ErrNotFound) {
		return nil, err
	}
	return ks, translate(err, "list signing keys")
}

// DeleteSigningKey removes one key of a live endpoint of the project. Under
// the endpoint's row lock it refuses to remove the last key, so concurrent
// deletes always leave one. It returns ErrNotFound or ErrLastSigningKey.
func (s *Store) DeleteSigningKey(ctx context.Context, projectID, endpointID, keyID string) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if _, err := lockEndpoint(tx, projectID, endpointID); err != nil {
			return err
		}
		var ks []SigningKey
		if err := tx.Select("id").Where("endpoint_id = ? AND project_id = ?", endpointID, projectID).Find(&ks).Error; err != nil {
			return err
		}
		found := false
		for _, k := range ks {
			found = found || k.ID == keyID
		}
		switch {
		case !found:
			return ErrNotFound
		case len(ks) <= 1:
			return ErrLastSigningKey
		}
		return tx.Where("id = ? AND endpoint_id = ? AND project_id = ?", keyID, endpointID, projectID).Delete(&SigningKey{}).Error
	})
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrLastSigningKey) {
		return err
	}
	return translate(err, "delete signing key")
}

// MasterKeyIDsInUse lists the master keys that sealed the stored signing
// secrets, so start-up can refuse a keyring that cannot open them.
func (s *Store) MasterKeyIDsInUse(ctx context.Context) ([]string, error) {
	var idsInUse []string
	err := s.db.WithContext(ctx).Model(&SigningKey{}).Distinct("master_key_id").Order("master_key_id").Pluck("master_key_id", &idsInUse).Error
	return idsInUse, translate(err, "list master keys in use")
}
