package handlers_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/hookd/hookd/customheaders"
	"github.com/hookd/hookd/handlers"
	"github.com/hookd/hookd/internal/testdb"
	"github.com/hookd/hookd/store"
)

// FuzzSendBody sends any body, with any Content-Type, to POST
// /v1/webhooks/send through the whole router (body limit, validator,
// handler, store). In the body, $EP stands for a live endpoint's id and
// $PAD for pad×32 bytes of "x", so payloads reach the 1 MiB limit.
//
// Every answer passes the contract check (a documented status and body)
// and none is a 5xx. A send that is accepted (202, or 200 for a repeated
// idempotency key) has, read independently of the handler with exact member
// names:
//   - a body that is one JSON object naming the endpoint;
//   - a payload that is a JSON object of at most MaxPayloadBytes, stored
//     byte for byte (its SHA-256 and size);
//   - headers that pass customheaders.Validate, an idempotency key of 1 to
//     255 of [A-Za-z0-9_-] and retention_hours of 0 to 2160, each stored as
//     sent, or absent and stored as absent.
//
// When fuzzing it runs on SQLite only; as a test it runs the corpus on
// every dialect.
func FuzzSendBody(f *testing.F) {
	const js = "application/json"
	for _, s := range []struct {
		ctype, body string
		pad         uint16
	}{
		{js, `{"endpoint_id":"$EP","payload":{"event":"order.created","id":1}}`, 0},
		{js, `{"endpoint_id":"$EP","payload":{},"idempotency_key":"order-1","headers":{"X-Tenant":"acme"},"retention_hours":0}`, 0},
		{js, `{"endpoint_id":"$EP","payload":{"a":"$PAD"}}`, 32767},
		{js, `{"endpoint_id":"$EP","payload":{"a":"$PAD"}}`, 32768},
		{js, `{"endpoint_id":"$EP","payload":[1,2]}`, 0},
		{js, `{"endpoint_id":"$EP","payload":"text"}`, 0},
		{js, `{"endpoint_id":"$EP","payload":null}`, 0},
		{js, `{"endpoint_id":"$EP","payload":{"s":"\ud800"}}`, 0},
		{js, `{"endpoint_id":"$EP","payload":{"a":1}} trailing`, 0},
		{js, `{"endpoint_id":"$EP","payload":{"a":1},"payload":{"b":2}}`, 0},
		{js, `{"endpoint_id":"$EP","payload":{},"idempotency_key":"has space"}`, 0},
		{js, `{"endpoint_id":"$EP","payload":{},"idempotency_key":""}`, 0},
		{js, `{"endpoint_id":"$EP","payload":{},"headers":{"Host":"evil","X-A":"a\r\nB: c"}}`, 0},
		{js, `{"endpoint_id":"$EP","payload":{},"retention_hours":2161}`, 0},
		{js, `{"endpoint_id":"$EP","payload":{},"retention_hours":1.5}`, 0},
		{js, `{"endpoint_id":"ep_00000000000000000000000000000000","payload":{}}`, 0},
		{"application/json; charset=utf-8", `{"endpoint_id":"$EP","payload":{"k":"\u00e9"}}`, 0},
		{"Application/JSON", `{"endpoint_id":"$EP","payload":{}}`, 0},
		{"text/plain", `{"endpoint_id":"$EP","payload":{}}`, 0},
		{"", `{"endpoint_id":"$EP","payload":{}}`, 0},
	} {
		f.Add(s.ctype, s.body, s.pad)
	}

	dialects := testdb.Dialects
	if fl := flag.Lookup("test.fuzz"); fl != nil && fl.Value.String() != "" {
		dialects = []string{"sqlite"}
	}
	type target struct {
		e      *env
		router *echo.Echo
		epID   string
	}
	var targets []target
	for _, d := range dialects {
		e := setup(f, d)
		router, err := handlers.NewRouter(e.server)
		if err != nil {
			f.Fatal(err)
		}
		targets = append(targets, target{e, router, e.createEndpoint(e.a, "https://hooks.example.com/fuzz").Id})
	}

	f.Fuzz(func(t *testing.T, ctype, body string, pad uint16) {
		if strings.Count(body, "$PAD") > 1 {
			return // one payload's worth is enough
		}
		for _, tg := range targets {
			raw := strings.ReplaceAll(body, "$EP", tg.epID)
			raw = strings.Replace(raw, "$PAD", strings.Repeat("x", int(pad)*32), 1)
			req, err := http.NewRequest(http.MethodPost, "http://hookd.test/v1/webhooks/send", strings.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tg.e.a.key)
			if ctype != "" {
				req.Header.Set("Content-Type", ctype)
			}
			client := &http.Client{Transport: &contractCheck{t: t, next: inProcess{tg.router}}}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			answer := readAll(t, resp)
			short := raw
			if len(short) > 300 {
				short = short[:300] + "…"
			}
			switch {
			case resp.StatusCode >= 500:
				t.Fatalf("%s: %q answered %d: %s", tg.e.dialect, short, resp.StatusCode, answer)
			case resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK:
				var ok struct {
					Data struct {
						MessageID string `json:"message_id"`
					} `json:"data"`
				}
				if err := json.Unmarshal([]byte(answer), &ok); err != nil {
					t.Fatal(err)
				}
				if why := sendBreaksContract(t, tg.e, tg.epID, raw, ok.Data.MessageID, resp.StatusCode); why != "" {
					t.Fatalf("%s: %q (Content-Type %q) answered %d, but %s", tg.e.dialect, short, ctype, resp.StatusCode, why)
				}
			}
		}
	})
}

// inProcess serves a client's requests with an http.Handler in memory.
type inProcess struct{ h http.Handler }

func (p inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	in := req.Clone(req.Context())
	in.RemoteAddr = "192.0.2.10:40000"
	in.RequestURI = req.URL.RequestURI()
	rec := httptest.NewRecorder()
	p.h.ServeHTTP(rec, in)
	return rec.Result(), nil
}

var idempotencyKey = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

// sendBreaksContract reads an accepted send body with exact member names
// and says how it, or the message stored for it, breaks the send contract
// ("" if it does not).
func sendBreaksContract(t *testing.T, e *env, epID, raw, messageID string, status int) string {
	t.Helper()
	if !json.Valid([]byte(raw)) {
		return "the body is not one JSON value"
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &top); err != nil || top == nil {
		return "the body is not a JSON object"
	}
	var endpoint string
	if err := json.Unmarshal(top["endpoint_id"], &endpoint); err != nil || endpoint != epID {
		return fmt.Sprintf("endpoint_id is %s", top["endpoint_id"])
	}
	payload := top["payload"]
	if len(payload) == 0 || payload[0] != '{' {
		return fmt.Sprintf("the payload %.40q is not a JSON object", payload)
	}
	if len(payload) > handlers.MaxPayloadBytes {
		return fmt.Sprintf("the payload has %d bytes", len(payload))
	}
	var key *string
	if v, ok := top["idempotency_key"]; ok {
		if err := json.Unmarshal(v, &key); err != nil || key == nil || !idempotencyKey.MatchString(*key) {
			return fmt.Sprintf("idempotency_key is %s", v)
		}
	}
	headers := store.Headers{}
	if v, ok := top["headers"]; ok {
		var h map[string]string
		if err := json.Unmarshal(v, &h); err != nil || h == nil || customheaders.Validate(h) != nil {
			return fmt.Sprintf("headers are %s", v)
		}
		headers = h
	}
	var retention *int
	if v, ok := top["retention_hours"]; ok {
		var n int
		if err := json.Unmarshal(v, &n); err != nil || n < 0 || n > 2160 {
			return fmt.Sprintf("retention_hours is %s", v)
		}
		retention = &n
	}

	m, err := e.store.GetMessage(context.Background(), e.a.project.ID, messageID)
	if err != nil {
		t.Fatalf("message %s of an accepted send: %v", messageID, err)
	}
	if len(payload) > 64*1024 {
		// Keep the fuzzing database small: big payloads are checked, then
		// purged.
		defer func() {
			purge := `UPDATE messages SET payload = NULL WHERE id = ?`
			if e.dialect == "postgres" {
				purge = `UPDATE messages SET payload = NULL WHERE id = $1`
			}
			if _, err := e.store.DB().Exec(purge, messageID); err != nil {
				t.Fatal(err)
			}
		}()
	}
	sum := sha256.Sum256(payload)
	switch {
	case m.PayloadSHA256 != hex.EncodeToString(sum[:]) || (status == http.StatusAccepted && m.SizeBytes != len(payload)):
		return fmt.Sprintf("the stored payload (%d bytes, SHA-256 %s) is not the one sent (%d bytes)", m.SizeBytes, m.PayloadSHA256, len(payload))
	case m.EndpointID != epID:
		return "the message is stored for endpoint " + m.EndpointID
	case !equalPtr(m.IdempotencyKey, key):
		return fmt.Sprintf("the stored idempotency key is %v, not %v", deref(m.IdempotencyKey), deref(key))
	case status == http.StatusOK && key == nil:
		return "a send without an idempotency key was taken for a repeat"
	case status == http.StatusAccepted && !equalPtr(m.RetentionHours, retention):
		return fmt.Sprintf("the stored retention is %v, not %v", deref(m.RetentionHours), deref(retention))
	case status == http.StatusAccepted && !maps.Equal(m.Headers, headers) && (len(m.Headers) > 0 || len(headers) > 0):
		return fmt.Sprintf("the stored headers are %q, not %q", m.Headers, headers)
	}
	return ""
}

func equalPtr[T comparable](a, b *T) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
