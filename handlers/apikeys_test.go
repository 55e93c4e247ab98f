package handlers_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/gen"
)

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		c := e.a.client

		list, err := c.ListApiKeysWithResponse(ctx)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, list.StatusCode())
		require.Len(t, list.JSON200.Data, 1)
		mine := list.JSON200.Data[0]
		require.Equal(t, e.a.key[:11], mine.Prefix)
		require.NotNil(t, mine.LastUsedAt, "the list call itself used the key")
		require.NotContains(t, string(list.Body), e.a.key)

		created, err := c.CreateApiKeyWithResponse(ctx, gen.CreateApiKeyRequest{Label: ptr("ci"), Mode: ptr(gen.ApiKeyMode("test"))})
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, created.StatusCode(), string(created.Body))
		k := created.JSON201.Data
		require.Regexp(t, `^hk_test_[A-Za-z0-9]{32}$`, k.Key)
		require.Regexp(t, `^key_[a-f0-9]{32}$`, k.KeyId)
		require.Equal(t, k.Key[:11], k.Prefix)
		require.Equal(t, "ci", k.Label)
		require.Equal(t, gen.ApiKeyMode("test"), k.Mode)

		// A bodiless POST, as some SDKs send, makes a live key.
		status, _, raw := e.do(http.MethodPost, "/v1/api-keys", e.a.key, "", nil)
		require.Equal(t, http.StatusCreated, status, string(raw))
		require.Contains(t, string(raw), `"key":"hk_live_`)

		// The new key works, sees project A, and is listed without its secret.
		kc := e.client(k.Key)
		eps, err := kc.ListEndpointsWithResponse(ctx, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, eps.StatusCode())
		list, err = c.ListApiKeysWithResponse(ctx)
		require.NoError(t, err)
		require.Len(t, list.JSON200.Data, 3)
		require.Equal(t, k.KeyId, list.JSON200.Data[1].KeyId, "newest first")
		require.NotContains(t, string(list.Body), k.Key)

		del, err := c.DeleteApiKeyWithResponse(ctx, k.KeyId)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, del.StatusCode())
		require.Equal(t, gen.ApiKeyDeleted{KeyId: k.KeyId, Deleted: true}, del.JSON200.Data)
		eps, err = kc.ListEndpointsWithResponse(ctx, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusUnauthorized, eps.StatusCode(), "a deleted key stops working at once")
		del, err = c.DeleteApiKeyWithResponse(ctx, k.KeyId)
		require.NoError(t, err)
		require.Equal(t, http.StatusNotFound, del.StatusCode())
	})
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	e := setup(t, "sqlite")
	unknown := "hk_live_" + strings.Repeat("A", 32)
	for name, header := range map[string]string{
		"Missing":        "",
		"NotBearer":      "Basic " + e.a.key,
		"Malformed":      "Bearer hk_live_short",
		"WrongPrefix":    "Bearer hb_live_" + strings.Repeat("A", 32),
		"Unknown":        "Bearer " + unknown,
		"BearerOnly":     "Bearer",
		"KeyWithGarbage": "Bearer " + e.a.key + "!",
		"SQLInjection":   "Bearer ' OR 1=1 --",
	} {
		t.Run(name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, e.url+"/v1/endpoints", nil)
			require.NoError(t, err)
			if header != "" {
				req.Header.Set("Authorization", header)
			}
			resp, err := (&http.Client{Transport: &contractCheck{t: t, next: http.DefaultTransport}}).Do(req)
			require.NoError(t, err)
			body := readAll(t, resp)
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			require.Contains(t, body, `"code":"UNAUTHORIZED"`)
		})
	}
	// Lower-case scheme is accepted (RFC 7235: schemes are case-insensitive).
	req, _ := http.NewRequest(http.MethodGet, e.url+"/v1/endpoints", nil)
	req.Header.Set("Authorization", "bearer "+e.a.key)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	readAll(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
