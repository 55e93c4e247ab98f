package handlers_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/internal/testdb"
)

// TestNoPlaintextSecretsAtRest creates endpoints, signing keys and API keys,
// then scans everything the database holds — a pg_dump of the whole
// PostgreSQL database, or the SQLite file with its WAL — for any signing
// secret or API key in plain text (whole, or the random part alone, raw or
// base64-decoded).
func TestNoPlaintextSecretsAtRest(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		secrets := []string{e.a.key, e.b.key}
		for _, host := range []string{"hooks", "other", "third"} {
			ep := e.createEndpoint(e.a, "https://"+host+".example.com/s")
			secrets = append(secrets, ep.SigningSecret)
			k, err := e.a.client.CreateSigningKeyWithResponse(ctx, ep.Id)
			require.NoError(t, err)
			require.Equal(t, http.StatusCreated, k.StatusCode())
			secrets = append(secrets, k.JSON201.Data.SigningSecret)
		}
		// Inbound: the ingest token, the static token and the HMAC secret
		// a provider signs with, and the forwarding signing secret.
		hmacSecret, staticToken := "whsec_"+strings.Repeat("Qk9ORVNFQ1JFVA", 2), "static_"+strings.Repeat("T0tFTlZBTFVF", 2)
		ie := e.createInbound(t, `{"url":"https://hooks.example.com/in","provider":"standard_webhooks","hmac_secret":"`+hmacSecret+
			`","verify_static_token":true,"token_header_name":"X-Token","token_value":"`+staticToken+`"}`)
		secrets = append(secrets, "tok_"+ie.SecretToken, *ie.SigningSecret, hmacSecret, staticToken)
		for _, mode := range []string{"live", "test"} {
			k, err := e.b.client.CreateApiKeyWithResponse(ctx, gen.CreateApiKeyRequest{Mode: ptr(gen.ApiKeyMode(mode))})
			require.NoError(t, err)
			secrets = append(secrets, k.JSON201.Data.Key)
		}

		var dump []byte
		if e.dialect == "postgres" {
			out, err := exec.Command("pg_dump", "--no-owner", "--dbname", e.dbURL).Output()
			require.NoError(t, err, "pg_dump of %s", testdb.DatabaseName(t, e.dbURL))
			require.Contains(t, string(out), "CREATE TABLE public.signing_keys", "the dump holds the schema")
			dump = out
		} else {
			path := strings.TrimPrefix(e.dbURL, "sqlite:")
			for _, suffix := range []string{"", "-wal", "-shm"} {
				b, err := os.ReadFile(path + suffix)
				if suffix != "" && os.IsNotExist(err) {
					continue
				}
				require.NoError(t, err)
				dump = append(dump, b...)
			}
			entries, _ := os.ReadDir(filepath.Dir(path))
			require.NotEmpty(t, entries)
		}
		require.NotEmpty(t, dump)
		// The scan can find things: the key prefixes are stored for display.
		require.Contains(t, string(dump), e.a.key[:11])

		for _, s := range secrets {
			random := s[strings.LastIndex(s, "_")+1:]
			require.False(t, bytes.Contains(dump, []byte(s)), "secret %s… found in the database", s[:11])
			require.False(t, bytes.Contains(dump, []byte(random)), "random part of %s… found", s[:11])
			if raw, err := base64.StdEncoding.DecodeString(random); err == nil && len(raw) >= 16 {
				require.False(t, bytes.Contains(dump, raw), "decoded bytes of %s… found", s[:11])
			}
		}
	})
}
