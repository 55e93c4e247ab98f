package handlers

import (
	"context"

	"github.com/google/uuid"

	"github.com/hookd/hookd/gen"
)

// GetProject answers the calling key's own project: a key sees no other,
// so this is also how a client checks that its key works.
func (s *Server) GetProject(ctx context.Context, _ gen.GetProjectRequestObject) (gen.GetProjectResponseObject, error) {
	p, err := s.Store.GetProject(ctx, projectID(ctx))
	if err != nil {
		return nil, err
	}
	return gen.GetProject200JSONResponse{Data: gen.Project{
		Id:               uuid.MustParse(p.ID),
		Name:             p.Name,
		Status:           gen.Active,
		RateLimitDefault: p.RateLimitPerMinute,
		CreatedAt:        p.CreatedAt.UTC(),
	}, Meta: meta(ctx)}, nil
}
