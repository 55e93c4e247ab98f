package handlers_test

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHTTPSReceiversAndExtraCA delivers to an https:// receiver whose
// certificate is signed by a private CA: trusted through the extra CA
// bundle it succeeds (with a TLS handshake timing), untrusted it fails with
// a certificate error and is retried.
func TestHTTPSReceiversAndExtraCA(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))

	trusted := setupWith(t, "sqlite", options{receivers: true, engine: testEngineConfig(), caFile: caFile})
	ep := trusted.createEndpoint(trusted.a, srv.URL+"/tls")
	_, res, _ := trusted.send(trusted.a.key, `{"endpoint_id":"`+ep.Id+`","payload":{"secure":true}}`)
	trusted.waitStatus(res.MessageId, "succeeded", patience)
	as := trusted.attempts(res.MessageId)
	require.NotNil(t, as[0].TlsHandshakeMs, "the TLS handshake was timed")

	untrusted := setupWith(t, "sqlite", options{receivers: true, engine: testEngineConfig()})
	ep = untrusted.createEndpoint(untrusted.a, srv.URL+"/tls")
	_, res, _ = untrusted.send(untrusted.a.key, `{"endpoint_id":"`+ep.Id+`","payload":{"secure":false}}`)
	m := untrusted.waitStatus(res.MessageId, "pending_retry", patience)
	require.Contains(t, *m.LastError, "certificate")
}
