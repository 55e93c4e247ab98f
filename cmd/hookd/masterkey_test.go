package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/internal/poll"
	"github.com/hookd/hookd/internal/syncbuf"
	"github.com/hookd/hookd/internal/testdb"
	"github.com/hookd/hookd/secrets"
	"github.com/hookd/hookd/signature"
	"github.com/hookd/hookd/store"
)

// capturedDelivery is one request a test receiver got.
type capturedDelivery struct {
	header http.Header
	body   []byte
}

// captureReceiver keeps every delivery by X-Webhook-Id and answers 200.
type captureReceiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	byID map[string]capturedDelivery
}

func newCaptureReceiver(t *testing.T) *captureReceiver {
	t.Helper()
	r := &captureReceiver{byID: map[string]capturedDelivery{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.byID[req.Header.Get(signature.HeaderID)] = capturedDelivery{header: req.Header.Clone(), body: body}
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// await returns the delivery of message id.
func (r *captureReceiver) await(t *testing.T, id string) capturedDelivery {
	t.Helper()
	var d capturedDelivery
	poll.Until(t, patience, func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		var ok bool
		d, ok = r.byID[id]
		return ok
	}, "message %s was not delivered", id)
	return d
}

// requireSignedBy sends one message to the endpoint through the hookd at
// addr and checks that its delivery carries a valid signature for every one
// of the endpoint's secrets (so hookd opened each of them).
func requireSignedBy(t *testing.T, rc *captureReceiver, addr, apiKey, endpointID string, secrets []string) capturedDelivery {
	t.Helper()
	var sent struct {
		MessageID string `json:"message_id"`
	}
	require.Equal(t, http.StatusAccepted, api(t, http.MethodPost, "http://"+addr+"/v1/webhooks/send", apiKey,
		`{"endpoint_id":"`+endpointID+`","payload":{"rotation":true}}`, &sent))
	d := rc.await(t, sent.MessageID)
	for _, s := range secrets {
		require.NoError(t, signature.Verify(d.header, d.body, []string{s}, time.Minute, time.Now()), "signed with every active secret")
	}
	return d
}

// TestMasterKeyRotation follows docs/operations.md (master keys and their rotation) on PostgreSQL:
// secrets sealed by master key A, servers rolled to --master-key B
// --master-keys-old A (and creating a secret under B), `hookd masterkey
// rotate` while a server runs, a second run that re-seals nothing, and a
// server with only B that signs with every original secret.
func TestMasterKeyRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := testdb.NewPostgres(t)
	a, b := secrets.GenerateMasterKey("A"), secrets.GenerateMasterKey("B")
	rc := newCaptureReceiver(t)
	common := []string{"--addr", "127.0.0.1:0", "--database-url", dbURL, "--data-dir", t.TempDir(),
		"--dev-allow-http", "--dev-allow-cidrs", "127.0.0.1/32", "--poll-interval", "50ms"}
	secretOf := map[string]string{}     // signing key id → secret
	byEndpoint := map[string][]string{} // endpoint id → its secrets
	createEndpoint := func(addr, apiKey string, i int) string {
		var ep struct {
			ID            string `json:"id"`
			SigningKeyID  string `json:"signing_key_id"`
			SigningSecret string `json:"signing_secret"`
		}
		require.Equal(t, http.StatusCreated, api(t, http.MethodPost, "http://"+addr+"/v1/endpoints", apiKey,
			fmt.Sprintf(`{"url":"%s/r%d","headers":{"X-Receiver-Token":"tok-%d"},"auth":{"type":"bearer","token":"cred-%d"}}`, rc.srv.URL, i, i, i), &ep))
		secretOf[ep.SigningKeyID] = ep.SigningSecret
		byEndpoint[ep.ID] = append(byEndpoint[ep.ID], ep.SigningSecret)
		return ep.ID
	}

	// Before: four secrets sealed by A.
	stdout := &syncbuf.Buffer{}
	addr, stop := startServe(t, append(common, "--master-key", a.String()), env(nil), stdout)
	apiKey := keyRE.FindString(stdout.String())
	require.NotEmpty(t, apiKey)
	var endpoints []string
	for i := range 3 {
		endpoints = append(endpoints, createEndpoint(addr, apiKey, i))
	}
	var k struct {
		ID            string `json:"id"`
		SigningSecret string `json:"signing_secret"`
	}
	require.Equal(t, http.StatusCreated, api(t, http.MethodPost, "http://"+addr+"/v1/endpoints/"+endpoints[0]+"/signing-keys", apiKey, "", &k))
	secretOf[k.ID] = k.SigningSecret
	byEndpoint[endpoints[0]] = append(byEndpoint[endpoints[0]], k.SigningSecret)
	// An inbound endpoint whose GitHub secret is sealed by A too.
	var ie struct {
		ID           string `json:"id"`
		SecretToken  string `json:"secret_token"`
		SigningKeyID string `json:"signing_key_id"`
		Secret       string `json:"signing_secret"`
	}
	require.Equal(t, http.StatusCreated, api(t, http.MethodPost, "http://"+addr+"/v1/inbound-endpoints", apiKey,
		`{"url":"`+rc.srv.URL+`/inbound","provider":"github","hmac_secret":"gh-secret"}`, &ie))
	secretOf[ie.SigningKeyID] = ie.Secret
	require.NoError(t, stop())
	// Endpoint 2's headers as an earlier release stored them: plain text.
	legacy, err := store.Open(ctx, store.Options{DatabaseURL: dbURL})
	require.NoError(t, err)
	_, err = legacy.DB().ExecContext(ctx, `UPDATE endpoints SET headers = '{"X-Receiver-Token":"tok-2"}', headers_sealed = NULL, headers_key_id = NULL WHERE id = $1`, endpoints[2])
	require.NoError(t, err)
	require.NoError(t, legacy.Close())

	// Steps 1-2: the server seals new secrets with B and still opens A's.
	addr, stop = startServe(t, append(common, "--master-key", b.String(), "--master-keys-old", a.String()), env(nil), &syncbuf.Buffer{})
	endpoints = append(endpoints, createEndpoint(addr, apiKey, 3))
	requireSignedBy(t, rc, addr, apiKey, endpoints[0], byEndpoint[endpoints[0]])

	// Step 3, while the server runs.
	var out bytes.Buffer
	require.NoError(t, run(ctx, []string{"masterkey", "rotate", "--database-url", dbURL, "--master-key", b.String(), "--master-keys-old", a.String(), "--batch-size", "3"},
		env(nil), &out, io.Discard))
	require.Contains(t, out.String(), "re-sealed 5 signing secrets from master key A to B") // 4 of the endpoints, 1 of the inbound endpoint
	require.Contains(t, out.String(), "re-sealed the custom headers of 2 endpoints from master key A to B")
	require.Contains(t, out.String(), "sealed the custom headers of 1 endpoints, stored in plain text by an earlier release, with master key B")
	require.Contains(t, out.String(), "re-sealed 1 inbound HMAC secrets from master key A to B")
	require.Contains(t, out.String(), "master key A can now be removed")
	for _, ep := range endpoints {
		requireSignedBy(t, rc, addr, apiKey, ep, byEndpoint[ep])
	}
	require.NoError(t, stop())

	// A second run, configured like the servers (environment), re-seals 0.
	out.Reset()
	require.NoError(t, run(ctx, []string{"masterkey", "rotate"},
		env(map[string]string{"HOOKD_DATABASE_URL": dbURL, "HOOKD_MASTER_KEY": b.String(), "HOOKD_MASTER_KEYS_OLD": a.String()}), &out, io.Discard))
	require.Contains(t, out.String(), "re-sealed 0 signing secrets")

	// Every row is sealed by B and opens with B alone to the same secret.
	onlyB, err := secrets.NewKeyring(b)
	require.NoError(t, err)
	st, err := store.Open(ctx, store.Options{DatabaseURL: dbURL})
	require.NoError(t, err)
	rows, err := st.DB().QueryContext(ctx, "SELECT id, master_key_id, secret_sealed FROM signing_keys")
	require.NoError(t, err)
	n := 0
	for rows.Next() {
		var id, mk string
		var sealed []byte
		require.NoError(t, rows.Scan(&id, &mk, &sealed))
		require.Equal(t, "B", mk)
		pt, err := onlyB.Open(mk, sealed, []byte(id))
		require.NoError(t, err)
		require.Equal(t, secretOf[id], string(pt))
		n++
	}
	require.NoError(t, rows.Err())
	require.NoError(t, rows.Close())
	var plain, sealedByB int
	require.NoError(t, st.DB().QueryRowContext(ctx, `SELECT count(*) FILTER (WHERE headers <> '{}'), count(*) FILTER (WHERE headers_key_id = 'B') FROM endpoints`).Scan(&plain, &sealedByB))
	require.Zero(t, plain, "no header value is left in plain text")
	require.Equal(t, len(endpoints), sealedByB)
	require.NoError(t, st.Close())
	require.Equal(t, len(secretOf), n)

	// Step 4: a server with only B starts, signs with every secret and
	// sends every endpoint's custom header and credential (sealed with the
	// headers; endpoint 2's were replaced by the plain-text ones above).
	addr, stop = startServe(t, append(common, "--master-key", b.String()), env(nil), &syncbuf.Buffer{})
	for i, ep := range endpoints {
		d := requireSignedBy(t, rc, addr, apiKey, ep, byEndpoint[ep])
		require.Equal(t, fmt.Sprintf("tok-%d", i), d.header.Get("X-Receiver-Token"))
		if i != 2 {
			require.Equal(t, fmt.Sprintf("Bearer cred-%d", i), d.header.Get("Authorization"))
		}
	}
	// The inbound endpoint's GitHub secret opens with B alone: a signed
	// request is accepted, a wrongly signed one refused.
	mac := hmac.New(sha256.New, []byte("gh-secret"))
	mac.Write([]byte("hello"))
	ingestURL := "http://" + addr + "/v1/webhooks/receive/" + ie.ID + "/" + ie.SecretToken
	for sig, want := range map[string]int{"sha256=" + hex.EncodeToString(mac.Sum(nil)): http.StatusOK, "sha256=00": http.StatusUnauthorized} {
		req, err := http.NewRequest(http.MethodPost, ingestURL, strings.NewReader("hello"))
		require.NoError(t, err)
		req.Header.Set("X-Hub-Signature-256", sig)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, want, resp.StatusCode)
	}
	require.NoError(t, stop())

	// A rotation that lacks a key in use changes nothing and says which.
	c := secrets.GenerateMasterKey("C")
	err = run(ctx, []string{"masterkey", "rotate", "--database-url", dbURL, "--master-key", c.String()}, env(nil), io.Discard, io.Discard)
	require.ErrorContains(t, err, "sealed by master key B, which was not given")
	err = run(ctx, []string{"masterkey", "rotate", "--database-url", dbURL}, env(nil), io.Discard, io.Discard)
	require.ErrorContains(t, err, "--master-key NEW (or HOOKD_MASTER_KEY) is required")
}

// TestMasterKeyRotationWithTheKeyFile follows the SQLite procedure of
// docs/operations.md (master keys and their rotation): the generated DATA_DIR/master.key is the old
// key; after the rotation the new key replaces the file and hookd starts
// with no key flags.
func TestMasterKeyRotationWithTheKeyFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	rc := newCaptureReceiver(t)
	args := []string{"--addr", "127.0.0.1:0", "--data-dir", dir, "--dev-allow-http", "--dev-allow-cidrs", "127.0.0.1/32", "--poll-interval", "50ms"}
	stdout := &syncbuf.Buffer{}
	addr, stop := startServe(t, args, env(nil), stdout)
	apiKey := keyRE.FindString(stdout.String())
	var ep struct {
		ID            string `json:"id"`
		SigningSecret string `json:"signing_secret"`
	}
	require.Equal(t, http.StatusCreated, api(t, http.MethodPost, "http://"+addr+"/v1/endpoints", apiKey, `{"url":"`+rc.srv.URL+`/file"}`, &ep))
	require.NoError(t, stop())

	keyFile := filepath.Join(dir, "master.key")
	oldKey, _, err := secrets.LoadOrCreateKeyFile(keyFile, false)
	require.NoError(t, err)
	newKey := secrets.GenerateMasterKey("local-2")
	var out bytes.Buffer
	require.NoError(t, run(ctx, []string{"masterkey", "rotate", "--data-dir", dir, "--master-key", newKey.String(), "--master-keys-old", oldKey.String()}, env(nil), &out, io.Discard))
	require.Contains(t, out.String(), "re-sealed 1 signing secrets from master key "+oldKey.ID+" to local-2")

	// Before the file is replaced, hookd refuses to start: it cannot open
	// the re-sealed secret.
	err = run(ctx, append([]string{"serve"}, args...), env(nil), io.Discard, io.Discard)
	require.ErrorContains(t, err, "sealed by master key local-2, which this process does not have")

	require.NoError(t, os.WriteFile(keyFile, []byte(newKey.String()+"\n"), 0o600))
	addr, stop = startServe(t, args, env(nil), &syncbuf.Buffer{})
	requireSignedBy(t, rc, addr, apiKey, ep.ID, []string{ep.SigningSecret})
	require.NoError(t, stop())
}
