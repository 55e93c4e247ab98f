package store

import (
	"context"
	"errors"
	"fmt"

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
	err := s.db.WithContext(ctx).Raw(`SELECT master_key_id FROM signing_keys
UNION SELECT headers_key_id FROM endpoints WHERE headers_key_id IS NOT NULL
UNION SELECT hmac_key_id FROM inbound_endpoints WHERE hmac_key_id IS NOT NULL
ORDER BY 1`).Scan(&idsInUse).Error
	return idsInUse, translate(err, "list master keys in use")
}

// ResealEndpointHeaders re-seals the custom headers of every endpoint
// (deleted ones too) whose headers are sealed by a master key other than
// activeID, and seals those an earlier release stored in plain text,
// batchSize rows at a time (at least 1). For each row it calls reseal, which
// returns the row's headers sealed under the active master key (it opens
// HeadersSealed, or reads Headers when that is nil). Each row is then
// written only if its headers are still what was read (compare-and-swap),
// so a PATCH meanwhile wins. It returns how many rows it sealed per old
// master key id ("" for plain text); errors and resuming are as for
// ResealSigningKeys.
func (s *Store) ResealEndpointHeaders(ctx context.Context, activeID string, batchSize int, reseal func(Endpoint) (SealedHeaders, error)) (map[string]int, error) {
	return s.resealInBatches(ctx, "endpoint headers", batchSize, func(after string) (string, int, func(*gorm.DB, map[string]int) error, error) {
		// headers is read as stored text, so the compare-and-swap below
		// matches it whatever its spelling.
		var batch []struct {
			ID            string
			Headers       string
			HeadersSealed []byte
			HeadersKeyID  *string
		}
		err := s.db.WithContext(ctx).Model(&Endpoint{}).Select("id", "headers", "headers_sealed", "headers_key_id").
			Where("id > ? AND ((headers_sealed IS NOT NULL AND headers_key_id <> ?) OR (headers_sealed IS NULL AND headers <> '{}' AND headers <> ''))", after, activeID).
			Order("id").Limit(max(batchSize, 1)).Find(&batch).Error
		if err != nil || len(batch) == 0 {
			return "", 0, nil, translate(err, "read endpoint headers to re-seal")
		}
		sealed := make([]SealedHeaders, len(batch))
		for i, e := range batch {
			ep := Endpoint{ID: e.ID, HeadersSealed: e.HeadersSealed, HeadersKeyID: e.HeadersKeyID}
			if err := ep.Headers.Scan(e.Headers); err != nil {
				return "", 0, nil, fmt.Errorf("read the plain-text custom headers of endpoint %s: %w", e.ID, err)
			}
			if sealed[i], err = reseal(ep); err != nil {
				return "", 0, nil, fmt.Errorf("re-seal the custom headers of endpoint %s: %w", e.ID, err)
			}
		}
		write := func(tx *gorm.DB, done map[string]int) error {
			for i, e := range batch {
				q := tx.Model(&Endpoint{}).Where("id = ?", e.ID)
				from := ""
				if e.HeadersSealed != nil {
					from = *e.HeadersKeyID
					q = q.Where("headers_sealed = ? AND headers_key_id = ?", e.HeadersSealed, from)
				} else {
					q = q.Where("headers_sealed IS NULL AND headers = ?", e.Headers)
				}
				var keyID *string
				if sealed[i].Sealed != nil {
					keyID = &sealed[i].KeyID
				}
				res := q.Updates(map[string]any{"headers": Headers{}, "headers_sealed": sealed[i].Sealed, "headers_key_id": keyID})
				if res.Error != nil {
					return res.Error
				}
				done[from] += int(res.RowsAffected)
			}
			return nil
		}
		return batch[len(batch)-1].ID, len(batch), write, nil
	})
}

// ResealSigningKeys re-seals every signing key whose master_key_id is not
// activeID, batchSize rows at a time (at least 1). For each row it calls
// reseal, which returns the row's secret sealed under the active master key
// (reseal runs outside any transaction, so no lock is held while it
// decrypts). The rows of a batch are then written in one transaction, each
// only if it still holds the master key id and sealed bytes that were read
// (compare-and-swap): a key deleted or re-sealed meanwhile, by a running
// server or another rotation, is left as it is. Rows created while it runs
// are visited too (ids grow), and each row is visited at most once.
//
// It returns how many rows it re-sealed per old master key id. An error
// from reseal or the database stops it; the batches committed before stay
// re-sealed, so running it again continues where it stopped. It returns
// ErrUnavailable when the database cannot be reached.
func (s *Store) ResealSigningKeys(ctx context.Context, activeID string, batchSize int, reseal func(SigningKey) (masterKeyID string, sealed []byte, err error)) (map[string]int, error) {
	return s.resealInBatches(ctx, "signing keys", batchSize, func(after string) (string, int, func(*gorm.DB, map[string]int) error, error) {
		var batch []SigningKey
		err := s.db.WithContext(ctx).Where("master_key_id <> ? AND id > ?", activeID, after).
			Order("id").Limit(max(batchSize, 1)).Find(&batch).Error
		if err != nil || len(batch) == 0 {
			return "", 0, nil, translate(err, "read signing keys to re-seal")
		}
		type change struct {
			masterKeyID string
			sealed      []byte
		}
		changes := make([]change, len(batch))
		for i, k := range batch {
			id, sealed, err := reseal(k)
			if err != nil {
				return "", 0, nil, fmt.Errorf("re-seal signing key %s (master key %s): %w", k.ID, k.MasterKeyID, err)
			}
			changes[i] = change{masterKeyID: id, sealed: sealed}
		}
		write := func(tx *gorm.DB, done map[string]int) error {
			for i, k := range batch {
				res := tx.Model(&SigningKey{}).
					Where("id = ? AND master_key_id = ? AND secret_sealed = ?", k.ID, k.MasterKeyID, k.SecretSealed).
					Updates(map[string]any{"master_key_id": changes[i].masterKeyID, "secret_sealed": changes[i].sealed})
				if res.Error != nil {
					return res.Error
				}
				done[k.MasterKeyID] += int(res.RowsAffected)
			}
			return nil
		}
		return batch[len(batch)-1].ID, len(batch), write, nil
	})
}

// resealInBatches is the walk both re-seals share. next reads the batch
// after the id it is given (batchSize rows at most) and prepares its
// changes outside any transaction; it returns the batch's last id, its
// size (0 ends the walk) and write, which applies the batch in one
// transaction and counts the rows it changed per old master key; its
// errors are returned as they are (next translates its database errors).
// Counts
// of committed batches are summed; a short batch ends the walk.
func (s *Store) resealInBatches(ctx context.Context, what string, batchSize int, next func(after string) (last string, n int, write func(*gorm.DB, map[string]int) error, err error)) (map[string]int, error) {
	batchSize = max(batchSize, 1)
	resealed := map[string]int{}
	after := ""
	for {
		last, n, write, err := next(after)
		if err != nil {
			return resealed, err
		}
		if n == 0 {
			return resealed, nil
		}
		done := map[string]int{}
		if err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error { return write(tx, done) }); err != nil {
			return resealed, translate(err, "re-seal "+what)
		}
		for id, c := range done {
			if c > 0 {
				resealed[id] += c
			}
		}
		if n < batchSize {
			return resealed, nil
		}
		after = last
	}
}
