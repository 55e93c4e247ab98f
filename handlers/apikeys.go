package handlers

import (
	"context"
	"time"

	"github.com/hookd/hookd/credentials"
	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/store"
)

// ListApiKeys lists the project's keys by prefix, newest first.
func (s *Server) ListApiKeys(ctx context.Context, _ gen.ListApiKeysRequestObject) (gen.ListApiKeysResponseObject, error) { //nolint:revive // name from the spec
	ks, err := s.Store.ListAPIKeys(ctx, projectID(ctx))
	if err != nil {
		return nil, err
	}
	data := make([]gen.ApiKey, len(ks))
	for i, k := range ks {
		data[i] = gen.ApiKey{KeyId: k.ID, Label: k.Label, Prefix: k.Prefix, Mode: gen.ApiKeyMode(k.Mode), CreatedAt: k.CreatedAt.UTC(), LastUsedAt: utcPtr(k.LastUsedAt)}
	}
	return gen.ListApiKeys200JSONResponse{Data: data, Meta: meta(ctx)}, nil
}

// CreateApiKey makes a key for the caller's project; the key is shown once.
func (s *Server) CreateApiKey(ctx context.Context, req gen.CreateApiKeyRequestObject) (gen.CreateApiKeyResponseObject, error) { //nolint:revive // name from the spec
	mode, label := credentials.ModeLive, ""
	if b := req.Body; b != nil {
		if err := checkText("label", b.Label, false); err != nil {
			return nil, err
		}
		if b.Mode != nil {
			mode = string(*b.Mode)
		}
		label = deref(b.Label, "")
	}
	secret, k := NewAPIKey(projectID(ctx), mode, label)
	if err := s.Store.CreateAPIKey(ctx, k); err != nil {
		return nil, err
	}
	return gen.CreateApiKey201JSONResponse{Meta: meta(ctx), Data: gen.ApiKeyCreated{
		KeyId: k.ID, Key: secret, Prefix: k.Prefix, Label: k.Label, Mode: gen.ApiKeyMode(k.Mode), CreatedAt: k.CreatedAt,
	}}, nil
}

// DeleteApiKey revokes a key of the project at once.
func (s *Server) DeleteApiKey(ctx context.Context, req gen.DeleteApiKeyRequestObject) (gen.DeleteApiKeyResponseObject, error) { //nolint:revive // name from the spec
	if err := s.Store.DeleteAPIKey(ctx, projectID(ctx), req.KeyId); err != nil {
		return nil, err
	}
	s.auth.forget(req.KeyId)
	return gen.DeleteApiKey200JSONResponse{Data: gen.ApiKeyDeleted{KeyId: req.KeyId, Deleted: true}, Meta: meta(ctx)}, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// NewAPIKey makes a key for the project and the row that stores it (hash
// and prefix only). The API and the CLI both use it.
func NewAPIKey(projectID, mode, label string) (secret string, row store.APIKey) {
	secret = credentials.NewAPIKey(mode)
	if mode != credentials.ModeTest {
		mode = credentials.ModeLive
	}
	return secret, store.APIKey{
		ID:        ids.NewAPIKey(),
		ProjectID: projectID,
		Label:     label,
		Mode:      mode,
		Prefix:    credentials.DisplayPrefix(secret),
		KeyHash:   credentials.HashAPIKey(secret),
		CreatedAt: store.Now(),
	}
}
