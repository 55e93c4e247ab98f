package handlers

import (
	"context"

	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/store"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	apiKeyKey
	originKey
)

// echo context key under which authentication leaves the caller's key until
// attachAuth moves it into the request context.
const authKey = "hookd.auth"

func withRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey, id)
}

// RequestID is the id of the request ctx belongs to ("" outside a request).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

func withAPIKey(ctx context.Context, k store.APIKey) context.Context {
	return context.WithValue(ctx, apiKeyKey, k)
}

// caller is the API key that authenticated the request. Every operation that
// the spec secures runs only after authentication, so it is always set there.
func caller(ctx context.Context) store.APIKey {
	k, _ := ctx.Value(apiKeyKey).(store.APIKey)
	return k
}

// projectID is the caller's project: every store call is scoped by it.
func projectID(ctx context.Context) string { return caller(ctx).ProjectID }

func meta(ctx context.Context) gen.Meta { return gen.Meta{RequestId: RequestID(ctx)} }

func withOrigin(ctx context.Context, origin string) context.Context {
	return context.WithValue(ctx, originKey, origin)
}

// origin is "scheme://host" of the request, as the client addressed it
// (Host header; the scheme from TLS or X-Forwarded-Proto), the base of
// links handed back to it when no public URL is configured.
func origin(ctx context.Context) string {
	o, _ := ctx.Value(originKey).(string)
	return o
}
