package customheaders_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/customheaders"
)

func TestCredential(t *testing.T) {
	t.Parallel()
	name, value, hint, err := customheaders.Credential(customheaders.Auth{Type: "basic", Username: "Aladdin", Password: "open sesame"})
	require.NoError(t, err)
	require.Equal(t, "Authorization", name)
	require.Equal(t, "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", value, "RFC 7617's example")
	require.Empty(t, hint, "11 characters: too short for a hint")

	_, _, hint, err = customheaders.Credential(customheaders.Auth{Type: "bearer", Token: "ключ-доступа-ёжик"})
	require.NoError(t, err)
	require.Equal(t, "…ёжик", hint, "the last 4 characters, not bytes")

	name, value, _, err = customheaders.Credential(customheaders.Auth{Type: "header", HeaderName: "authorization", HeaderValue: "Token abc"})
	require.NoError(t, err, "a header credential may use Authorization")
	require.Equal(t, "authorization", name)
	require.Equal(t, "Token abc", value)

	name, _, _, err = customheaders.Credential(customheaders.Auth{Type: "none"})
	require.NoError(t, err)
	require.Empty(t, name)

	_, _, _, err = customheaders.Credential(customheaders.Auth{Type: "bearer", Token: strings.Repeat("t", customheaders.MaxCredential+1)})
	var ae *customheaders.AuthError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "/auth/token", ae.Field)
}

func TestSplitAndJoinAuth(t *testing.T) {
	t.Parallel()
	all, err := customheaders.JoinAuth(map[string]string{"X-Tenant": "acme"}, "X-Api-Key", "k")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"X-Tenant": "acme", "X-Api-Key": "k"}, all)
	custom, v := customheaders.SplitAuth(all, "x-api-key")
	require.Equal(t, map[string]string{"X-Tenant": "acme"}, custom)
	require.Equal(t, "k", v)
	custom, v = customheaders.SplitAuth(all, "")
	require.Equal(t, all, custom, "no credential: every header is custom")
	require.Empty(t, v)

	_, err = customheaders.JoinAuth(map[string]string{"X-API-KEY": "mine"}, "X-Api-Key", "k")
	var ae *customheaders.AuthError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "/headers", ae.Field)
}
