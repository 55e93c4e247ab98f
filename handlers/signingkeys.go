package handlers

import (
	"context"

	"github.com/hookd/hookd/credentials"
	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/store"
)

// CreateSigningKey adds a key to the endpoint (at most two active).
func (s *Server) CreateSigningKey(ctx context.Context, req gen.CreateSigningKeyRequestObject) (gen.CreateSigningKeyResponseObject, error) {
	created, err := s.addSigningKey(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return gen.CreateSigningKey201JSONResponse(created), nil
}

// RotateSecret is the legacy name of CreateSigningKey.
func (s *Server) RotateSecret(ctx context.Context, req gen.RotateSecretRequestObject) (gen.RotateSecretResponseObject, error) {
	created, err := s.addSigningKey(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return gen.RotateSecret201JSONResponse(created), nil
}

func (s *Server) addSigningKey(ctx context.Context, endpointID string) (gen.SigningKeyCreatedEnvelope, error) {
	secret := credentials.NewSigningSecret()
	k := s.newSigningKey(projectID(ctx), endpointID, secret, store.Now())
	if err := s.Store.CreateSigningKey(ctx, k); err != nil {
		return gen.SigningKeyCreatedEnvelope{}, err
	}
	return gen.SigningKeyCreatedEnvelope{Meta: meta(ctx), Data: gen.SigningKeyCreated{
		Id: k.ID, SigningSecret: secret, KeyHint: k.KeyHint, CreatedAt: k.CreatedAt,
	}}, nil
}

// ListSigningKeys lists the endpoint's active keys, newest first, without
// secrets.
func (s *Server) ListSigningKeys(ctx context.Context, req gen.ListSigningKeysRequestObject) (gen.ListSigningKeysResponseObject, error) {
	keys, err := s.signingKeyList(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return gen.ListSigningKeys200JSONResponse(keys), nil
}

func (s *Server) signingKeyList(ctx context.Context, endpointID string) (gen.SigningKeyListEnvelope, error) {
	ks, err := s.Store.ListSigningKeys(ctx, projectID(ctx), endpointID)
	if err != nil {
		return gen.SigningKeyListEnvelope{}, err
	}
	data := make([]gen.SigningKey, len(ks))
	for i, k := range ks {
		data[i] = gen.SigningKey{Id: k.ID, KeyHint: k.KeyHint, CreatedAt: k.CreatedAt.UTC()}
	}
	return gen.SigningKeyListEnvelope{Data: data, Meta: meta(ctx)}, nil
}

// DeleteSigningKey removes a key; the endpoint's last key cannot go.
func (s *Server) DeleteSigningKey(ctx context.Context, req gen.DeleteSigningKeyRequestObject) (gen.DeleteSigningKeyResponseObject, error) {
	if err := s.Store.DeleteSigningKey(ctx, projectID(ctx), req.Id, req.KeyId); err != nil {
		return nil, err
	}
	return gen.DeleteSigningKey204Response{}, nil
}
