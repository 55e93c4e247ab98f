package store

import (
	"context"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

type endpointRateBucket struct {
	EndpointID string `gorm:"primaryKey"`
	ProjectID  string
	Tokens     float64
	RefilledAt time.Time
}

func (endpointRateBucket) TableName() string { return "endpoint_rate_buckets" }

// TakeToken takes one delivery token from the endpoint's bucket (rps tokens
// a second, holding at most burst), shared by every process on the
// database. It returns 0 when a token was taken, or how long until one will
// be there (nothing is taken then). projectID is the endpoint's project.
func (s *Store) TakeToken(ctx context.Context, projectID, endpointID string, rps, burst int) (time.Duration, error) {
	if rps <= 0 {
		return 0, nil
	}
	if burst <= 0 {
		burst = rps
	}
	var wait time.Duration
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		now := Now()
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).
			Create(&endpointRateBucket{EndpointID: endpointID, ProjectID: projectID, Tokens: float64(burst), RefilledAt: now}).Error; err != nil {
			return err
		}
		var b endpointRateBucket
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("endpoint_id = ?", endpointID).Take(&b).Error; err != nil {
			return err
		}
		tokens := b.Tokens + now.Sub(b.RefilledAt).Seconds()*float64(rps)
		if tokens > float64(burst) {
			tokens = float64(burst)
		}
		if tokens >= 1 {
			tokens--
		} else {
			wait = time.Duration((1 - tokens) / float64(rps) * float64(time.Second))
		}
		return tx.Model(&endpointRateBucket{}).Where("endpoint_id = ?", endpointID).
			Updates(map[string]any{"tokens": tokens, "refilled_at": now}).Error
	})
	return wait, translate(err, "take rate token")
}
