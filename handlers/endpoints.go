package handlers

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hookd/hookd/credentials"
	"github.com/hookd/hookd/customheaders"
	"github.com/hookd/hookd/eventtypes"
	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/ids"
	"github.com/hookd/hookd/netguard"
	"github.com/hookd/hookd/store"
)

// CreateEndpoint checks the URL and headers, then stores the endpoint with
// its first signing key, whose secret is returned this once.
func (s *Server) CreateEndpoint(ctx context.Context, req gen.CreateEndpointRequestObject) (gen.CreateEndpointResponseObject, error) {
	b := req.Body
	normalized, err := s.checkURL(ctx, b.Url)
	if err != nil {
		return nil, err
	}
	if err := checkText("description", b.Description, true); err != nil {
		return nil, err
	}
	headers := store.Headers{}
	if b.Headers != nil {
		headers = store.Headers(*b.Headers)
	}
	if err := customheaders.Validate(headers); err != nil {
		return nil, err
	}
	if err := checkAuth(b.Auth); err != nil {
		return nil, err
	}
	patterns, err := checkPatterns(b.EventTypes)
	if err != nil {
		return nil, err
	}
	if err := checkText("owner_id", b.OwnerId, false); err != nil {
		return nil, err
	}
	now := store.Now()
	e := store.Endpoint{
		ID:            ids.NewEndpoint(),
		ProjectID:     projectID(ctx),
		URL:           b.Url,
		URLNormalized: normalized,
		Description:   deref(b.Description, ""),
		RateLimitRPS:  deref(b.RateLimitRps, 0),
		Burst:         deref(b.Burst, 0),
		Headers:       store.Headers{},
		HMACEnabled:   deref(b.HmacEnabled, true),
		// (the validator has checked the enum)
		SignatureScheme: string(deref(b.SignatureScheme, gen.Hookbridge)),
		EventTypes:      store.StringList{},
		OwnerID:         b.OwnerId,
		Ordering:        string(deref(b.Ordering, gen.OrderingNone)),
		CreatedAt:       now,
		UpdatedAt:       now,
	}
	if patterns != nil {
		e.EventTypes = *patterns
	}
	c, err := s.headersChange(e, headers, b.Auth)
	if err != nil {
		return nil, err
	}
	if c.Sealed.Sealed != nil {
		e.HeadersSealed, e.HeadersKeyID = c.Sealed.Sealed, &c.Sealed.KeyID
	}
	e.AuthType, e.AuthHeader, e.AuthHint = c.AuthType, c.AuthHeader, c.AuthHint
	secret := credentials.NewSigningSecret()
	key := s.newSigningKey(e.ProjectID, e.ID, secret, now)
	if err := s.Store.CreateEndpoint(ctx, e, key); err != nil {
		return nil, err
	}
	return gen.CreateEndpoint201JSONResponse{Meta: meta(ctx), Data: gen.EndpointCreated{
		Id:              e.ID,
		Url:             e.URL,
		Description:     e.Description,
		SignatureScheme: gen.SignatureScheme(e.SignatureScheme),
		SigningKeyId:    key.ID,
		SigningSecret:   secret,
		KeyHint:         key.KeyHint,
		CreatedAt:       e.CreatedAt,
	}}, nil
}

// checkURL applies the URL rules and returns the normalised form used for
// DUPLICATE_URL.
func (s *Server) checkURL(ctx context.Context, raw string) (string, error) {
	u, err := s.Policy.CheckURL(ctx, raw)
	if err != nil {
		var rb *netguard.ResolvedBlockedError
		if errors.As(err, &rb) {
			// The caller is not told the addresses (they would map
			// internal DNS); the operator is.
			s.log().InfoContext(ctx, "endpoint URL refused: its host resolves to a blocked address", "component", "api",
				"request_id", RequestID(ctx), "project_id", projectID(ctx), "host", rb.Host, "addresses", rb.Addrs)
		}
		return "", err
	}
	return netguard.Normalize(u), nil
}

// ListEndpoints pages through the project's endpoints, newest first.
func (s *Server) ListEndpoints(ctx context.Context, req gen.ListEndpointsRequestObject) (gen.ListEndpointsResponseObject, error) {
	owner, eventType := deref(req.Params.OwnerId, ""), deref(req.Params.EventType, "")
	es, next, hasMore, err := page(req.Params.Cursor, ids.ValidEndpoint, deref(req.Params.Limit, 50),
		func(before string, n int) ([]store.Endpoint, error) {
			if eventType == "" {
				return s.Store.ListEndpoints(ctx, projectID(ctx), owner, before, n)
			}
			// Subscriptions are patterns, matched here: read on until n
			// match or the endpoints run out.
			var out []store.Endpoint
			for len(out) < n {
				batch, err := s.Store.ListEndpoints(ctx, projectID(ctx), owner, before, 200)
				if err != nil {
					return nil, err
				}
				for _, e := range batch {
					if eventtypes.Matches(e.EventTypes, eventType) && len(out) < n {
						out = append(out, e)
					}
				}
				if len(batch) < 200 {
					break
				}
				before = batch[len(batch)-1].ID
			}
			return out, nil
		},
		func(e store.Endpoint) string { return e.ID })
	if err != nil {
		return nil, err
	}
	data := endpointSummaries(es)
	return gen.ListEndpoints200JSONResponse{Data: data, Meta: gen.PageMeta{RequestId: RequestID(ctx), NextCursor: next, HasMore: hasMore}}, nil
}

// endpointSummaries are endpoints as lists show them, health included.
func endpointSummaries(es []store.Endpoint) []gen.EndpointSummary {
	out := make([]gen.EndpointSummary, len(es))
	for i, e := range es {
		out[i] = gen.EndpointSummary{Id: e.ID, Url: e.URL, Description: e.Description, Paused: e.Paused, CreatedAt: e.CreatedAt.UTC(),
			ConsecutiveFailures: e.ConsecutiveFailures, FailingSince: utcPtr(e.FailingSince), DisabledAt: utcPtr(e.DisabledAt)}
	}
	return out
}

// GetEndpoint returns one endpoint without its secrets.
func (s *Server) GetEndpoint(ctx context.Context, req gen.GetEndpointRequestObject) (gen.GetEndpointResponseObject, error) {
	e, err := s.endpointView(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return gen.GetEndpoint200JSONResponse{Data: e, Meta: meta(ctx)}, nil
}

// endpointView reads a live endpoint of the caller's project with its
// custom headers opened.
func (s *Server) endpointView(ctx context.Context, id string) (gen.Endpoint, error) {
	e, err := s.Store.GetEndpoint(ctx, projectID(ctx), id)
	if err != nil {
		return gen.Endpoint{}, err
	}
	h, err := s.headersOf(e)
	if err != nil {
		return gen.Endpoint{}, err
	}
	return toEndpoint(e, h), nil
}

// checkPatterns checks an endpoint's event type patterns; nil (none
// given) passes as nil.
func checkPatterns(p *gen.EventTypePatterns) (*store.StringList, error) {
	if p == nil {
		return nil, nil
	}
	seen := map[string]bool{}
	out := store.StringList{}
	for i, pattern := range *p {
		if !eventtypes.ValidPattern(pattern) {
			return nil, invalid(fmt.Sprintf("/event_types/%d", i), "pattern",
				fmt.Sprintf("%q is not an event type pattern: a name (letters, digits, '.', '_', '-'), a name followed by \".*\", or \"*\"", pattern))
		}
		if !seen[pattern] {
			seen[pattern] = true
			out = append(out, pattern)
		}
	}
	return &out, nil
}

// checkAuth checks a credential's shape before anything is read or
// stored; nil (none given) passes.
func checkAuth(a *gen.EndpointAuthInput) error {
	if a == nil {
		return nil
	}
	_, _, _, err := customheaders.Credential(authInput(a))
	return err
}

func authInput(a *gen.EndpointAuthInput) customheaders.Auth {
	return customheaders.Auth{Type: string(a.Type), Token: deref(a.Token, ""), Username: deref(a.Username, ""),
		Password: deref(a.Password, ""), HeaderName: deref(a.HeaderName, ""), HeaderValue: deref(a.HeaderValue, "")}
}

// headersChange seals cur's custom headers and credential after a change:
// custom replaces the custom headers unless nil, auth the credential unless
// nil (type none removes it). The two are sealed together (values of
// custom headers are often receivers' credentials too), so the credential
// is encrypted at rest, re-sealed by master-key rotation and redacted in
// attempts like them.
func (s *Server) headersChange(cur store.Endpoint, custom map[string]string, auth *gen.EndpointAuthInput) (store.HeadersChange, error) {
	all, err := s.headersOf(cur)
	if err != nil {
		return store.HeadersChange{}, err
	}
	keep, authValue := customheaders.SplitAuth(all, deref(cur.AuthHeader, ""))
	if custom == nil {
		custom = keep
	}
	c := store.HeadersChange{AuthType: cur.AuthType, AuthHeader: cur.AuthHeader, AuthHint: cur.AuthHint}
	if auth != nil {
		name, value, hint, err := customheaders.Credential(authInput(auth))
		if err != nil {
			return store.HeadersChange{}, err
		}
		c = store.HeadersChange{}
		if auth.Type != gen.EndpointAuthInputTypeNone {
			typ := string(auth.Type)
			c.AuthType, c.AuthHeader, c.AuthHint = &typ, &name, &hint
		}
		authValue = value
	}
	all, err = customheaders.JoinAuth(custom, deref(c.AuthHeader, ""), authValue)
	if err != nil {
		return store.HeadersChange{}, err
	}
	keyID, sealed := customheaders.Seal(s.Keyring, cur.ID, all)
	c.Sealed = store.SealedHeaders{KeyID: keyID, Sealed: sealed}
	return c, nil
}

// headersOf opens the endpoint's custom headers and credential (or reads
// the headers an earlier release stored in plain text).
func (s *Server) headersOf(e store.Endpoint) (map[string]string, error) {
	if e.HeadersSealed == nil {
		return e.Headers, nil
	}
	return customheaders.Open(s.Keyring, e.ID, deref(e.HeadersKeyID, ""), e.HeadersSealed)
}

// toEndpoint renders e with its opened headers: the custom ones in full,
// the credential by its type, header name and hint only.
func toEndpoint(e store.Endpoint, opened map[string]string) gen.Endpoint {
	custom, _ := customheaders.SplitAuth(opened, deref(e.AuthHeader, ""))
	h := gen.Headers{}
	for k, v := range custom {
		h[k] = v
	}
	var auth *gen.EndpointAuth
	if e.AuthType != nil {
		auth = &gen.EndpointAuth{Type: gen.EndpointAuthType(*e.AuthType), HeaderName: deref(e.AuthHeader, ""), Hint: deref(e.AuthHint, "")}
	}
	patterns := []string(e.EventTypes)
	if patterns == nil {
		patterns = []string{}
	}
	return gen.Endpoint{
		EventTypes:          patterns,
		OwnerId:             e.OwnerID,
		Ordering:            gen.Ordering(e.Ordering),
		Auth:                auth,
		Id:                  e.ID,
		Url:                 e.URL,
		Description:         e.Description,
		RateLimitRps:        e.RateLimitRPS,
		Burst:               e.Burst,
		Headers:             h,
		HmacEnabled:         e.HMACEnabled,
		SignatureScheme:     gen.SignatureScheme(e.SignatureScheme),
		Paused:              e.Paused,
		ConsecutiveFailures: e.ConsecutiveFailures,
		FailingSince:        utcPtr(e.FailingSince),
		DisabledAt:          utcPtr(e.DisabledAt),
		DisabledReason:      e.DisabledReason,
		CreatedAt:           e.CreatedAt.UTC(),
		UpdatedAt:           e.UpdatedAt.UTC(),
	}
}

// UpdateEndpoint changes only the fields given, under the same rules as
// create.
func (s *Server) UpdateEndpoint(ctx context.Context, req gen.UpdateEndpointRequestObject) (gen.UpdateEndpointResponseObject, error) {
	b := req.Body
	if err := checkText("description", b.Description, true); err != nil {
		return nil, err
	}
	u := store.EndpointUpdate{
		Description:  b.Description,
		RateLimitRPS: b.RateLimitRps,
		Burst:        b.Burst,
		HMACEnabled:  b.HmacEnabled,
	}
	if b.SignatureScheme != nil {
		scheme := string(*b.SignatureScheme)
		u.SignatureScheme = &scheme
	}
	patterns, err := checkPatterns(b.EventTypes)
	if err != nil {
		return nil, err
	}
	if err := checkText("owner_id", b.OwnerId, false); err != nil {
		return nil, err
	}
	u.EventTypes, u.OwnerID = patterns, b.OwnerId
	if b.Ordering != nil {
		ordering := string(*b.Ordering)
		u.Ordering = &ordering
	}
	if b.Url != nil {
		normalized, err := s.checkURL(ctx, *b.Url)
		if err != nil {
			return nil, err
		}
		u.URL, u.URLNormalized = b.Url, &normalized
	}
	if b.Headers != nil {
		if err := customheaders.Validate(*b.Headers); err != nil {
			return nil, err
		}
	}
	if err := checkAuth(b.Auth); err != nil {
		return nil, err
	}
	if b.Headers != nil || b.Auth != nil {
		var custom map[string]string
		if b.Headers != nil {
			custom = *b.Headers
		}
		u.Headers = func(cur store.Endpoint) (store.HeadersChange, error) {
			return s.headersChange(cur, custom, b.Auth)
		}
	}
	if err := s.Store.UpdateEndpoint(ctx, projectID(ctx), req.Id, u); err != nil {
		return nil, err
	}
	e, err := s.endpointView(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return gen.UpdateEndpoint200JSONResponse{Data: toEndpointUpdated(e), Meta: meta(ctx)}, nil
}

// toEndpointUpdated is the PATCH answer: the whole endpoint plus updated,
// which HookBridge's Go SDK reads (with id) and its PHP SDK ignores.
func toEndpointUpdated(e gen.Endpoint) gen.EndpointUpdated {
	return gen.EndpointUpdated{
		Id: e.Id, Url: e.Url, Description: e.Description, RateLimitRps: e.RateLimitRps, Burst: e.Burst,
		Headers: e.Headers, HmacEnabled: e.HmacEnabled, SignatureScheme: e.SignatureScheme, Auth: e.Auth,
		EventTypes: e.EventTypes, OwnerId: e.OwnerId, Ordering: e.Ordering, Paused: e.Paused,
		ConsecutiveFailures: e.ConsecutiveFailures, FailingSince: e.FailingSince, DisabledAt: e.DisabledAt,
		DisabledReason: e.DisabledReason, CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt, Updated: true,
	}
}

// DeleteEndpoint soft-deletes the endpoint.
func (s *Server) DeleteEndpoint(ctx context.Context, req gen.DeleteEndpointRequestObject) (gen.DeleteEndpointResponseObject, error) {
	if err := s.Store.DeleteEndpoint(ctx, projectID(ctx), req.Id); err != nil {
		return nil, err
	}
	return gen.DeleteEndpoint200JSONResponse{Data: gen.EndpointDeleted{Id: req.Id, Deleted: true}, Meta: meta(ctx)}, nil
}

// PauseEndpoint stops deliveries to the endpoint until it is resumed.
func (s *Server) PauseEndpoint(ctx context.Context, req gen.PauseEndpointRequestObject) (gen.PauseEndpointResponseObject, error) {
	if _, err := s.Store.SetEndpointPaused(ctx, projectID(ctx), req.Id, true); err != nil {
		return nil, err
	}
	return gen.PauseEndpoint200JSONResponse{Data: gen.EndpointPaused{Id: req.Id, Paused: true}, Meta: meta(ctx)}, nil
}

// ResumeEndpoint restarts deliveries to the endpoint.
func (s *Server) ResumeEndpoint(ctx context.Context, req gen.ResumeEndpointRequestObject) (gen.ResumeEndpointResponseObject, error) {
	n, err := s.Store.SetEndpointPaused(ctx, projectID(ctx), req.Id, false)
	if err != nil {
		return nil, err
	}
	return gen.ResumeEndpoint200JSONResponse{Data: gen.EndpointPaused{Id: req.Id, Paused: false, MessagesRequeued: n}, Meta: meta(ctx)}, nil
}

// cursor is the opaque pagination position: the last id of the page.
type cursor struct {
	ID string `json:"id"`
}

func encodeCursor(id string) string {
	b, _ := json.Marshal(cursor{ID: id}) // cannot fail for a struct of strings
	return base64.RawURLEncoding.EncodeToString(b)
}

// decodeCursor reads a cursor made by encodeCursor whose id passes valid;
// nil means the first page.
func decodeCursor(raw *string, valid func(string) bool) (string, error) {
	if raw == nil || *raw == "" {
		return "", nil
	}
	bad := invalid("cursor", "format", "cursor is not one this server issued; pass meta.next_cursor unchanged")
	b, err := base64.RawURLEncoding.DecodeString(*raw)
	if err != nil {
		return "", bad
	}
	var c cursor
	if err := json.Unmarshal(b, &c); err != nil || !valid(c.ID) {
		return "", bad
	}
	return c.ID, nil
}

// checkText refuses control characters in a free-text field (PostgreSQL
// cannot store NUL, and none belong in a label); multiline allows tab, CR
// and LF.
func checkText(field string, v *string, multiline bool) error {
	if v == nil {
		return nil
	}
	for _, r := range *v {
		allowed := multiline && (r == '\t' || r == '\n' || r == '\r')
		if r == 0x7f || (r < 0x20 && !allowed) {
			return invalid("/"+field, "control-characters", field+" must not contain control characters")
		}
	}
	return nil
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// newSigningKey seals secret for a new key of the endpoint. The key id is the
// associated data, so a sealed secret cannot be moved to another key's row.
func (s *Server) newSigningKey(projectID, endpointID, secret string, now time.Time) store.SigningKey {
	id := ids.NewSigningKey()
	masterID, sealed := s.Keyring.Seal([]byte(secret), []byte(id))
	return store.SigningKey{
		ID:           id,
		ProjectID:    projectID,
		EndpointID:   endpointID,
		MasterKeyID:  masterID,
		SecretSealed: sealed,
		KeyHint:      credentials.KeyHint(secret),
		CreatedAt:    now,
	}
}
