package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/customheaders"
	"github.com/hookd/hookd/gen"
)

// TestCustomHeaderValuesAreSealed: a custom header value (often the
// receiver's token) is delivered and shown to the key's owner, but is in no
// database row in plain text, and attempt records show it redacted.
func TestCustomHeaderValuesAreSealed(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, options{receivers: true, engine: testEngineConfig()}, func(t *testing.T, e *env) {
		ctx := context.Background()
		const token, token2 = "tok-1f0c9e4d-secret", "tok-77aa-rotated"
		rc := newReceiver(t, nil)
		h := gen.Headers{"X-Receiver-Token": token, "X-Tenant": "acme"}
		ep, err := e.a.client.CreateEndpointWithResponse(ctx, gen.CreateEndpointRequest{Url: rc.url("/sealed"), Headers: &h})
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, ep.StatusCode(), string(ep.Body))
		id := ep.JSON201.Data.Id

		status, res, _ := e.send(e.a.key, `{"endpoint_id":"`+id+`","payload":{"n":1},"headers":{"X-Per-Message":"m1"}}`)
		require.Equal(t, http.StatusAccepted, status)
		got := rc.waitFor(t, 1, 10*time.Second)
		require.Equal(t, token, got[0].header.Get("X-Receiver-Token"))
		e.waitStatus(res.MessageId, "succeeded", 10*time.Second)

		g, err := e.a.client.GetEndpointWithResponse(ctx, id)
		require.NoError(t, err)
		require.Equal(t, token, g.JSON200.Data.Headers["X-Receiver-Token"], "the owner reads the headers back")

		at, err := e.a.client.GetMessageAttemptsWithResponse(ctx, res.MessageId)
		require.NoError(t, err)
		require.Len(t, at.JSON200.Data, 1)
		rh := at.JSON200.Data[0].RequestHeaders
		require.Equal(t, customheaders.Redacted, rh["X-Receiver-Token"])
		require.Equal(t, customheaders.Redacted, rh["X-Tenant"])
		require.Equal(t, "m1", rh["X-Per-Message"], "per-message headers are the message's data, kept")

		// A PATCH replaces the sealed map; the next delivery uses the new value.
		h2 := gen.Headers{"X-Receiver-Token": token2}
		p, err := e.a.client.UpdateEndpointWithResponse(ctx, id, gen.UpdateEndpointRequest{Headers: &h2})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, p.StatusCode(), string(p.Body))
		require.Equal(t, token2, p.JSON200.Data.Headers["X-Receiver-Token"])
		status, res, _ = e.send(e.a.key, `{"endpoint_id":"`+id+`","payload":{"n":2}}`)
		require.Equal(t, http.StatusAccepted, status)
		got = rc.waitFor(t, 2, 10*time.Second)
		require.Equal(t, token2, got[1].header.Get("X-Receiver-Token"))
		require.Empty(t, got[1].header.Get("X-Tenant"), "the whole map was replaced")
		e.waitStatus(res.MessageId, "succeeded", 10*time.Second)

		dump := e.dumpAll()
		for _, secret := range []string{token, token2, "acme"} {
			require.NotContains(t, dump, secret, "a custom header value is stored in plain text")
		}
		require.Contains(t, dump, "m1", "the dump does see plain values (per-message headers)")
	})
}

// dumpAll renders every row of every table as text.
func (e *env) dumpAll() string {
	e.t.Helper()
	q := `SELECT name FROM sqlite_master WHERE type = 'table'`
	if e.dialect == "postgres" {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`
	}
	rows, err := e.store.DB().Query(q)
	require.NoError(e.t, err)
	var tables []string
	for rows.Next() {
		var n string
		require.NoError(e.t, rows.Scan(&n))
		tables = append(tables, n)
	}
	require.NoError(e.t, rows.Err())
	require.NoError(e.t, rows.Close())
	var sb strings.Builder
	for _, table := range tables {
		r, err := e.store.DB().Query("SELECT * FROM " + table)
		require.NoError(e.t, err)
		cols, err := r.Columns()
		require.NoError(e.t, err)
		for r.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			require.NoError(e.t, r.Scan(ptrs...))
			for _, v := range vals {
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				fmt.Fprintf(&sb, "%v|", v)
			}
			sb.WriteByte('\n')
		}
		require.NoError(e.t, r.Err())
		require.NoError(e.t, r.Close())
	}
	return sb.String()
}
