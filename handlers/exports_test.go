package handlers_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/gen"
	"github.com/hookd/hookd/handlers"
	"github.com/hookd/hookd/netguard"
	"github.com/hookd/hookd/secrets"
)

// exec runs a statement written with ? placeholders on the env's database.
func (e *env) exec(query string, args ...any) {
	e.t.Helper()
	if e.dialect == "postgres" {
		var b strings.Builder
		n := 0
		for _, r := range query {
			if r == '?' {
				n++
				b.WriteString("$" + strconv.Itoa(n))
				continue
			}
			b.WriteRune(r)
		}
		query = b.String()
	}
	_, err := e.store.DB().Exec(query, args...)
	require.NoError(e.t, err)
}

// sendTo stores a message for the endpoint through the API and returns its id.
func (e *env) sendTo(tn tenant, endpointID string) string {
	e.t.Helper()
	r, err := tn.client.SendWebhookWithResponse(context.Background(), gen.SendRequest{
		EndpointId: endpointID, Payload: json.RawMessage(`{"secret_payload":"never-exported"}`),
		Headers: &gen.Headers{"X-Never-Exported": "header-value"},
	})
	require.NoError(e.t, err)
	require.Equal(e.t, http.StatusAccepted, r.StatusCode(), string(r.Body))
	return r.JSON202.Data.MessageId.String()
}

func (e *env) createExport(tn tenant, body gen.CreateExportRequest) gen.Export {
	e.t.Helper()
	r, err := tn.client.CreateExportWithResponse(context.Background(), body)
	require.NoError(e.t, err)
	require.Equal(e.t, http.StatusCreated, r.StatusCode(), string(r.Body))
	return r.JSON201.Data
}

// noRedirect is a client that reports a 302 instead of following it, as
// HookBridge's Go SDK does in DownloadExport.
func (e *env) noRedirect() *http.Client {
	return &http.Client{
		Transport:     &contractCheck{t: e.t, next: http.DefaultTransport},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// link asks for a download link of the export and returns it.
func (e *env) link(tn tenant, id uuid.UUID) string {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.url+"/v1/exports/"+id.String()+"/download", nil)
	require.NoError(e.t, err)
	req.Header.Set("Authorization", "Bearer "+tn.key)
	resp, err := e.noRedirect().Do(req)
	require.NoError(e.t, err)
	body := readAll(e.t, resp)
	require.Equal(e.t, http.StatusFound, resp.StatusCode, body)
	require.Equal(e.t, "no-store", resp.Header.Get("Cache-Control"))
	return resp.Header.Get("Location")
}

// getFile fetches a link with no API key and returns status, body and the
// error code if the answer is an error.
func (e *env) getFile(link string) (int, string, string) {
	e.t.Helper()
	resp, err := (&http.Client{Transport: &contractCheck{t: e.t, next: http.DefaultTransport}}).Get(link)
	require.NoError(e.t, err)
	body := readAll(e.t, resp)
	var env gen.ErrorEnvelope
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		require.NoError(e.t, json.Unmarshal([]byte(body), &env))
	}
	return resp.StatusCode, body, env.Error.Code
}

func windowAround(now time.Time) (time.Time, time.Time) {
	return now.Add(-time.Hour), now.Add(time.Hour)
}

// TestExportRecords covers create, get, list with pagination and delete,
// and that the record reads expired once its time has passed.
func TestExportRecords(t *testing.T) {
	t.Parallel()
	forEachDialectOnClock(t, newClock(), func(c *clock) options { return options{now: c.Now} }, func(t *testing.T, e *env, clk *clock) {
		ctx := context.Background()
		ep := e.createEndpoint(e.a, "https://hooks.example.com/x")
		e.sendTo(e.a, ep.Id)
		e.sendTo(e.a, ep.Id)
		e.sendTo(e.b, e.createEndpoint(e.b, "https://hooks.example.com/x").Id)

		from, to := windowAround(time.Now())
		status := gen.MessageStatusQueued
		x := e.createExport(e.a, gen.CreateExportRequest{StartTime: from, EndTime: to, EndpointId: &ep.Id, Status: &status})
		require.Equal(t, gen.ExportStatusCompleted, x.Status)
		require.Equal(t, e.a.project.ID, x.ProjectId)
		require.Equal(t, int64(2), x.RowCount, "counted at creation, the other project's message left out")
		require.Equal(t, strings.TrimPrefix(ep.Id, "ep_"), *x.FilterEndpointId, "a bare id, as HookBridge reports it")
		require.Equal(t, gen.ExportFilterStatus("queued"), *x.FilterStatus)
		require.Equal(t, gen.ExportDirectionOutbound, x.FilterDirection)
		require.Equal(t, from.UTC().Truncate(time.Microsecond), x.FilterStartTime)
		require.Nil(t, x.FileSizeBytes)
		require.Nil(t, x.ErrorMessage)
		require.Equal(t, clk.Now(), x.CreatedAt)
		require.Equal(t, x.CreatedAt, *x.CompletedAt)
		require.Equal(t, x.CreatedAt.Add(24*time.Hour), x.ExpiresAt)
		_, err := uuid.Parse(x.Id.String())
		require.NoError(t, err)
		require.Equal(t, uuid.Version(7), x.Id.Version())

		got, err := e.a.client.GetExportWithResponse(ctx, x.Id)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, got.StatusCode())
		require.Equal(t, x, got.JSON200.Data)

		// Two more, then page through all three, newest first.
		all := e.createExport(e.a, gen.CreateExportRequest{StartTime: from, EndTime: to})
		require.Nil(t, all.FilterEndpointId)
		require.Nil(t, all.FilterStatus)
		require.Equal(t, int64(2), all.RowCount)
		third := e.createExport(e.a, gen.CreateExportRequest{StartTime: from, EndTime: to})
		page, err := e.a.client.ListExportsWithResponse(ctx, &gen.ListExportsParams{Limit: ptr(2)})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, page.StatusCode())
		require.Equal(t, []uuid.UUID{third.Id, all.Id}, []uuid.UUID{page.JSON200.Data[0].Id, page.JSON200.Data[1].Id})
		require.True(t, page.JSON200.Meta.HasMore)
		page, err = e.a.client.ListExportsWithResponse(ctx, &gen.ListExportsParams{Limit: ptr(2), Cursor: page.JSON200.Meta.NextCursor})
		require.NoError(t, err)
		require.Len(t, page.JSON200.Data, 1)
		require.Equal(t, x.Id, page.JSON200.Data[0].Id)
		require.False(t, page.JSON200.Meta.HasMore)
		require.Nil(t, page.JSON200.Meta.NextCursor)
		other, err := e.b.client.ListExportsWithResponse(ctx, nil)
		require.NoError(t, err)
		require.Empty(t, other.JSON200.Data, "another project sees none of them")

		del, err := e.a.client.DeleteExportWithResponse(ctx, all.Id)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, del.StatusCode())
		require.True(t, del.JSON200.Data.Deleted)
		require.Equal(t, all.Id, del.JSON200.Data.Id)
		del, err = e.a.client.DeleteExportWithResponse(ctx, all.Id)
		require.NoError(t, err)
		require.Equal(t, http.StatusNotFound, del.StatusCode(), "deleted twice")
		got, err = e.a.client.GetExportWithResponse(ctx, all.Id)
		require.NoError(t, err)
		require.Equal(t, http.StatusNotFound, got.StatusCode())

		// A day later the export reads expired and cannot be downloaded.
		clk.Advance(24 * time.Hour)
		got, err = e.a.client.GetExportWithResponse(ctx, x.Id)
		require.NoError(t, err)
		require.Equal(t, gen.ExportStatusExpired, got.JSON200.Data.Status)
		dl, err := e.a.client.DownloadExportWithResponse(ctx, x.Id)
		require.NoError(t, err)
		require.Equal(t, http.StatusGone, dl.StatusCode())
		require.Contains(t, string(dl.Body), "EXPORT_EXPIRED")
		clk.Advance(-24 * time.Hour)
	})
}

// TestExportCSV seeds messages through the send API, sets their outcomes
// in the database, and checks the downloaded CSV row by row against them:
// filters, order, quoting of commas, quotes and newlines, empty optional
// values, no payloads or headers, deleted messages left out. Pages of two
// rows make the stream cross several database reads.
func TestExportCSV(t *testing.T) {
	t.Parallel()
	forEachDialectWith(t, options{exports: handlers.ExportOptions{PageRows: 2}}, func(t *testing.T, e *env) {
		ctx := context.Background()
		ep := e.createEndpoint(e.a, "https://hooks.example.com/orders?x=1,2")
		other := e.createEndpoint(e.a, "https://other.example.com/o")
		var msgs []string
		for range 5 {
			msgs = append(msgs, e.sendTo(e.a, ep.Id))
		}
		e.sendTo(e.a, other.Id)                                                     // another endpoint
		e.sendTo(e.b, e.createEndpoint(e.b, "https://hooks.example.com/orders").Id) // another project
		delivered := time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)
		retryAt := time.Date(2030, 1, 2, 4, 0, 0, 0, time.UTC)
		tricky := "a,b \"c\"\nd"
		e.exec("UPDATE messages SET status = ?, attempt_count = ?, response_status = ?, response_latency_ms = ?, last_error = ?, next_attempt_at = NULL WHERE id = ?",
			"failed_permanent", 3, 500, 42, tricky, msgs[0])
		e.exec("UPDATE messages SET status = ?, attempt_count = ?, response_status = ?, response_latency_ms = ?, delivered_at = ?, next_attempt_at = NULL WHERE id = ?",
			"succeeded", 1, 200, 7, delivered, msgs[1])
		e.exec("UPDATE messages SET status = ?, attempt_count = ?, next_attempt_at = ?, last_error = ? WHERE id = ?",
			"pending_retry", 2, retryAt, "HTTP 503", msgs[2])
		_, err := e.a.client.DeleteMessageWithResponse(ctx, uuid.MustParse(msgs[4]))
		require.NoError(t, err)

		from, to := windowAround(time.Now())
		x := e.createExport(e.a, gen.CreateExportRequest{StartTime: from, EndTime: to, EndpointId: &ep.Id})
		require.Equal(t, int64(4), x.RowCount)

		// A plain client following the 302 gets the CSV.
		dl, err := e.a.client.DownloadExport(ctx, x.Id)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, dl.StatusCode)
		require.Equal(t, "text/csv; charset=utf-8", dl.Header.Get("Content-Type"))
		require.Equal(t, `attachment; filename="hookd-export-`+x.Id.String()+`.csv"`, dl.Header.Get("Content-Disposition"))
		raw := readAll(t, dl)
		require.Contains(t, raw, `"a,b ""c""`+"\n"+`d"`, "RFC 4180 quoting")
		require.NotContains(t, raw, "never-exported")
		require.NotContains(t, raw, "header-value")

		records, err := csv.NewReader(strings.NewReader(raw)).ReadAll()
		require.NoError(t, err)
		want := [][]string{{"message_id", "endpoint_id", "endpoint_url", "status", "attempt_count", "created_at",
			"delivered_at", "response_status", "response_latency_ms", "last_error", "next_attempt_at"}}
		for _, id := range msgs[:4] {
			m, err := e.a.client.GetMessageWithResponse(ctx, uuid.MustParse(id))
			require.NoError(t, err)
			d := m.JSON200.Data
			want = append(want, []string{id, ep.Id, "https://hooks.example.com/orders?x=1,2", string(d.Status),
				strconv.Itoa(d.AttemptCount), d.CreatedAt.Format(time.RFC3339Nano), fmtTime(d.DeliveredAt),
				fmtInt(d.ResponseStatus), fmtInt(d.ResponseLatencyMs), derefStr(d.LastError), fmtTime(d.NextAttemptAt)})
		}
		require.Equal(t, want, records)
		require.Equal(t, []string{"failed_permanent", "3", "500", "42", tricky, ""},
			[]string{records[1][3], records[1][4], records[1][7], records[1][8], records[1][9], records[1][10]})
		require.Equal(t, "2030-01-02T03:04:05.123456Z", records[2][6])
		require.Equal(t, "2030-01-02T04:00:00Z", records[3][10])
		require.Equal(t, []string{"queued", "0", "", "", "", ""}, // nothing happened to it yet
			[]string{records[4][3], records[4][4], records[4][6], records[4][7], records[4][8], records[4][9]})

		// The status filter, and a window with nothing in it: a header only.
		failed := gen.MessageStatusFailedPermanent
		x = e.createExport(e.a, gen.CreateExportRequest{StartTime: from, EndTime: to, Status: &failed})
		records = e.downloadCSV(e.a, x.Id)
		require.Len(t, records, 2)
		require.Equal(t, msgs[0], records[1][0])
		x = e.createExport(e.a, gen.CreateExportRequest{StartTime: from.Add(-48 * time.Hour), EndTime: from.Add(-24 * time.Hour)})
		require.Zero(t, x.RowCount)
		require.Len(t, e.downloadCSV(e.a, x.Id), 1)
	})
}

func (e *env) downloadCSV(tn tenant, id uuid.UUID) [][]string {
	e.t.Helper()
	status, body, code := e.getFile(e.link(tn, id))
	require.Equal(e.t, http.StatusOK, status, code)
	records, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	require.NoError(e.t, err)
	return records
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func fmtInt(p *int) string {
	if p == nil {
		return ""
	}
	return strconv.Itoa(*p)
}

func derefStr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// TestExportDownloadLinks follows the SDK's flow (read the 302's Location,
// fetch it with no API key) and checks the link's signature and expiry with
// an injected clock: altered signature, expiry or export id → 403;
// expired link → 410; deleted export → 404; another project → 404. The
// signature never reaches the log.
func TestExportDownloadLinks(t *testing.T) {
	t.Parallel()
	forEachDialectOnClock(t, newClock(), func(c *clock) options { return options{now: c.Now} }, func(t *testing.T, e *env, clk *clock) {
		ctx := context.Background()
		ep := e.createEndpoint(e.a, "https://hooks.example.com/x")
		msg := e.sendTo(e.a, ep.Id)
		from, to := windowAround(time.Now())
		x := e.createExport(e.a, gen.CreateExportRequest{StartTime: from, EndTime: to})
		y := e.createExport(e.a, gen.CreateExportRequest{StartTime: from, EndTime: to})

		link := e.link(e.a, x.Id)
		u, err := url.Parse(link)
		require.NoError(t, err)
		require.Equal(t, e.url+"/v1/exports/"+x.Id.String()+"/file", u.Scheme+"://"+u.Host+u.Path, "an absolute link to this server")
		expires, err := strconv.ParseInt(u.Query().Get("expires"), 10, 64)
		require.NoError(t, err)
		require.Equal(t, clk.Now().Add(5*time.Minute).Unix(), expires)
		sig := u.Query().Get("sig")
		require.Regexp(t, `^[a-f0-9]{64}$`, sig)

		status, body, _ := e.getFile(link)
		require.Equal(t, http.StatusOK, status)
		require.Contains(t, body, msg)

		withQuery := func(id uuid.UUID, exp int64, sig string) string {
			q := url.Values{"expires": {strconv.FormatInt(exp, 10)}, "sig": {sig}}
			return e.url + "/v1/exports/" + id.String() + "/file?" + q.Encode()
		}
		flipped := []byte(sig)
		flipped[0] ^= 1
		for name, bad := range map[string]string{
			"TamperedSignature": withQuery(x.Id, expires, string(flipped)),
			"StretchedExpiry":   withQuery(x.Id, expires+3600, sig),
			"OtherExport":       withQuery(y.Id, expires, sig),
			"NotHex":            withQuery(x.Id, expires, strings.Repeat("z", 64)),
			"EmptySignature":    withQuery(x.Id, expires, ""),
		} {
			status, _, code := e.getFile(bad)
			require.Equal(t, http.StatusForbidden, status, name)
			require.Equal(t, "FORBIDDEN", code, name)
		}
		status, _, code := e.getFile(e.url + "/v1/exports/" + x.Id.String() + "/file")
		require.Equal(t, http.StatusBadRequest, status, "no signature at all")
		require.Equal(t, "INVALID_REQUEST", code)

		// The link dies after five minutes; a new one works.
		clk.Advance(5*time.Minute + time.Second)
		status, _, code = e.getFile(link)
		require.Equal(t, http.StatusGone, status)
		require.Equal(t, "EXPORT_EXPIRED", code)
		status, _, _ = e.getFile(e.link(e.a, x.Id))
		require.Equal(t, http.StatusOK, status)

		// Near the export's end, a link lasts only until the export does.
		clk.Advance(24*time.Hour - 5*time.Minute - time.Second - 2*time.Minute)
		late, err := url.Parse(e.link(e.a, x.Id))
		require.NoError(t, err)
		require.Equal(t, strconv.FormatInt(x.ExpiresAt.Unix(), 10), late.Query().Get("expires"))
		clk.Advance(-24*time.Hour + 2*time.Minute)

		// Another project cannot get a link; a deleted export's link stops.
		r, err := e.b.client.DownloadExportWithResponse(ctx, x.Id)
		require.NoError(t, err)
		require.Equal(t, http.StatusNotFound, r.StatusCode())
		fresh := e.link(e.a, y.Id)
		_, err = e.a.client.DeleteExportWithResponse(ctx, y.Id)
		require.NoError(t, err)
		status, _, code = e.getFile(fresh)
		require.Equal(t, http.StatusNotFound, status)
		require.Equal(t, "NOT_FOUND", code)

		require.NotContains(t, e.logs.String(), sig, "link signatures are never logged")
		require.NotContains(t, e.logs.String(), sig[:20])
	})
}

// TestExportLinksSurviveMasterKeyRotation serves a link made under master
// key A from a process whose keyring is (B active, A old): it works; from a
// process that no longer lists A it is refused.
func TestExportLinksSurviveMasterKeyRotation(t *testing.T) {
	t.Parallel()
	a, b := secrets.GenerateMasterKey("a"), secrets.GenerateMasterKey("b")
	before, err := secrets.NewKeyring(a)
	require.NoError(t, err)
	e := setupWith(t, "sqlite", options{keyring: before})
	ep := e.createEndpoint(e.a, "https://hooks.example.com/x")
	e.sendTo(e.a, ep.Id)
	from, to := windowAround(time.Now())
	x := e.createExport(e.a, gen.CreateExportRequest{StartTime: from, EndTime: to})
	link, err := url.Parse(e.link(e.a, x.Id))
	require.NoError(t, err)

	serve := func(kr *secrets.Keyring) string {
		srv, err := handlers.New(e.store, kr, &netguard.Policy{Resolver: e.dns}, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		router, err := handlers.NewRouter(srv)
		require.NoError(t, err)
		hs := httptest.NewServer(router)
		t.Cleanup(hs.Close)
		return hs.URL + link.RequestURI()
	}
	rotating, err := secrets.NewKeyring(b, a)
	require.NoError(t, err)
	status, body, _ := e.getFile(serve(rotating))
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "message_id,")
	rotated, err := secrets.NewKeyring(b)
	require.NoError(t, err)
	status, _, code := e.getFile(serve(rotated))
	require.Equal(t, http.StatusForbidden, status)
	require.Equal(t, "FORBIDDEN", code)
}

// TestExportPublicURL: with a configured public URL, links are built on it
// rather than on the request's Host.
func TestExportPublicURL(t *testing.T) {
	t.Parallel()
	e := setupWith(t, "sqlite", options{exports: handlers.ExportOptions{PublicURL: "https://hookd.example.com/base"}})
	from, to := windowAround(time.Now())
	x := e.createExport(e.a, gen.CreateExportRequest{StartTime: from, EndTime: to})
	require.True(t, strings.HasPrefix(e.link(e.a, x.Id), "https://hookd.example.com/base/v1/exports/"+x.Id.String()+"/file?expires="))
}

// TestExportBadInput: every malformed create or list answers 400
// INVALID_REQUEST naming the field, and stores nothing.
func TestExportBadInput(t *testing.T) {
	t.Parallel()
	e := setup(t, "sqlite")
	start := "2030-01-01T00:00:00Z"
	cases := map[string]struct {
		body  string
		field string
	}{
		"EndBeforeStart":             {`{"start_time":"2030-01-02T00:00:00Z","end_time":"2030-01-01T00:00:00Z"}`, "/end_time"},
		"EndEqualsStart":             {`{"start_time":"` + start + `","end_time":"` + start + `"}`, "/end_time"},
		"Over92Days":                 {`{"start_time":"` + start + `","end_time":"2030-04-03T00:00:01Z"}`, "/end_time"},
		"InboundByEndpointID":        {`{"start_time":"` + start + `","end_time":"2030-01-02T00:00:00Z","direction":"inbound","endpoint_id":"ep_0123456789abcdef0123456789abcdef"}`, "/endpoint_id"},
		"UnknownDirection":           {`{"start_time":"` + start + `","end_time":"2030-01-02T00:00:00Z","direction":"sideways"}`, "/direction"},
		"InboundEndpointIDOutbound":  {`{"start_time":"` + start + `","end_time":"2030-01-02T00:00:00Z","inbound_endpoint_id":"01935abc-def0-7123-4567-890abcdef012"}`, "/inbound_endpoint_id"},
		"InboundEndpointIDMalformed": {`{"start_time":"` + start + `","end_time":"2030-01-02T00:00:00Z","direction":"inbound","inbound_endpoint_id":"nope"}`, "/inbound_endpoint_id"},
		"UnknownStatus":              {`{"start_time":"` + start + `","end_time":"2030-01-02T00:00:00Z","status":"lost"}`, "/status"},
		"MalformedEndpoint":          {`{"start_time":"` + start + `","end_time":"2030-01-02T00:00:00Z","endpoint_id":"ep_nope"}`, "/endpoint_id"},
		"MissingStart":               {`{"end_time":"2030-01-02T00:00:00Z"}`, "/start_time"},
		"NotATime":                   {`{"start_time":"yesterday","end_time":"2030-01-02T00:00:00Z"}`, "/start_time"},
		"NoBody":                     {``, "body"},
		"StartTimeIsANumber":         {`{"start_time":1,"end_time":"2030-01-02T00:00:00Z"}`, "/start_time"},
	}
	for name, c := range cases {
		status, env, raw := e.do(http.MethodPost, "/v1/exports", e.a.key, "application/json", []byte(c.body))
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", name, raw)
		require.Equal(t, "INVALID_REQUEST", env.Error.Code, name)
		require.NotNil(t, env.Error.Details, name)
		require.Equal(t, c.field, (*env.Error.Details)["field"], "%s: %s", name, raw)
	}
	status, env, raw := e.do(http.MethodPost, "/v1/exports", e.a.key, "application/json",
		[]byte(`{"start_time":"`+start+`","end_time":"2030-04-03T00:00:00Z"}`))
	require.Equal(t, http.StatusCreated, status, "exactly 92 days is allowed: %s %s", raw, env.Error.Message)

	for _, q := range []string{"limit=0", "limit=101", "cursor=not-a-cursor"} {
		status, env, raw := e.do(http.MethodGet, "/v1/exports?"+q, e.a.key, "", nil)
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", q, raw)
		require.Equal(t, "INVALID_REQUEST", env.Error.Code)
	}
	for _, p := range []string{"/v1/exports/not-a-uuid", "/v1/exports/" + uuid.NewString(), "/v1/exports/" + uuid.NewString() + "/download"} {
		status, env, _ := e.do(http.MethodGet, p, e.a.key, "", nil)
		require.Equal(t, http.StatusNotFound, status, p)
		require.Equal(t, "NOT_FOUND", env.Error.Code, p)
	}
	status, _, _ = e.do(http.MethodGet, "/v1/exports", "", "", nil)
	require.Equal(t, http.StatusUnauthorized, status, "the API routes still need a key")
	list, err := e.a.client.ListExportsWithResponse(context.Background(), nil)
	require.NoError(t, err)
	require.Len(t, list.JSON200.Data, 1, "only the valid one was stored")
}

// TestExportLinkSchemeTrustsOnlyProxies: the download link's scheme comes
// from X-Forwarded-Proto only when a trusted proxy sent it; from anyone
// else the connection's scheme stands.
func TestExportLinkSchemeTrustsOnlyProxies(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		trusted []netip.Prefix
		scheme  string
	}{
		"Untrusted": {nil, "http://"},
		"Trusted":   {[]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, "https://"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := setupWith(t, "sqlite", options{server: func(s *handlers.Server) { s.TrustedProxies = c.trusted }})
			from, to := windowAround(time.Now())
			x := e.createExport(e.a, gen.CreateExportRequest{StartTime: from, EndTime: to})
			req, err := http.NewRequest(http.MethodGet, e.url+"/v1/exports/"+x.Id.String()+"/download", nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+e.a.key)
			req.Header.Set("X-Forwarded-Proto", "https")
			resp, err := e.noRedirect().Do(req)
			require.NoError(t, err)
			readAll(t, resp)
			require.Equal(t, http.StatusFound, resp.StatusCode)
			require.True(t, strings.HasPrefix(resp.Header.Get("Location"), c.scheme), resp.Header.Get("Location"))
		})
	}
}
