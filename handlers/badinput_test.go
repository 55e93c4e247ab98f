package handlers_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBadInputs sends invalid requests across the operations. Each must get
// its documented status and code in the error envelope and change no row.
func TestBadInputs(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, e *env) {
		ep := e.createEndpoint(e.a, "https://hooks.example.com/bad")
		epPath := "/v1/endpoints/" + ep.Id
		tooMany := map[string]string{}
		for i := range 51 {
			tooMany[fmt.Sprintf("X-H%02d", i)] = "v"
		}
		key := e.a.key
		const js = "application/json"

		cases := []struct {
			name, method, path, key, ctype, body string
			status                               int
			code                                 string
		}{
			{"NoAuth", "POST", "/v1/endpoints", "", js, `{"url":"https://hooks.example.com/x"}`, 401, "UNAUTHORIZED"},
			{"MissingURL", "POST", "/v1/endpoints", key, js, `{}`, 400, "INVALID_REQUEST"},
			{"URLWrongType", "POST", "/v1/endpoints", key, js, `{"url":42}`, 400, "INVALID_REQUEST"},
			{"MalformedJSON", "POST", "/v1/endpoints", key, js, `{"url":`, 400, "INVALID_REQUEST"},
			{"TrailingData", "POST", "/v1/endpoints", key, js, `{"url":"https://hooks.example.com/x"} xyz`, 400, "INVALID_REQUEST"},
			{"TwoValues", "POST", "/v1/endpoints", key, js, `{"url":"https://hooks.example.com/x"}{}`, 400, "INVALID_REQUEST"},
			{"BodyNotAnObject", "POST", "/v1/endpoints", key, js, `["https://hooks.example.com/x"]`, 400, "INVALID_REQUEST"},
			{"EmptyBody", "POST", "/v1/endpoints", key, js, ``, 400, "INVALID_REQUEST"},
			{"WrongContentType", "POST", "/v1/endpoints", key, "text/plain", `{"url":"https://hooks.example.com/x"}`, 400, "INVALID_REQUEST"},
			{"HTTPURL", "POST", "/v1/endpoints", key, js, `{"url":"http://hooks.example.com/x"}`, 400, "INVALID_ENDPOINT"},
			{"ShortURL", "POST", "/v1/endpoints", key, js, `{"url":"https://a.b"}`, 400, "INVALID_ENDPOINT"},
			{"LongURL", "POST", "/v1/endpoints", key, js, `{"url":"https://hooks.example.com/` + strings.Repeat("a", 2048) + `"}`, 400, "INVALID_ENDPOINT"},
			{"NotAURL", "POST", "/v1/endpoints", key, js, `{"url":"https://exa mple.com/path"}`, 400, "INVALID_ENDPOINT"},
			{"LoopbackURL", "POST", "/v1/endpoints", key, js, `{"url":"https://127.0.0.1/x"}`, 400, "ENDPOINT_BLOCKED"},
			{"DecimalLoopback", "POST", "/v1/endpoints", key, js, `{"url":"https://2130706433/x"}`, 400, "ENDPOINT_BLOCKED"},
			{"MetadataURL", "POST", "/v1/endpoints", key, js, `{"url":"https://169.254.169.254/latest"}`, 400, "ENDPOINT_BLOCKED"},
			{"LocalhostName", "POST", "/v1/endpoints", key, js, `{"url":"https://localhost/x"}`, 400, "ENDPOINT_BLOCKED"},
			{"ResolvesPrivate", "POST", "/v1/endpoints", key, js, `{"url":"https://internal.example.com/x"}`, 400, "ENDPOINT_BLOCKED"},
			{"MappedV6", "POST", "/v1/endpoints", key, js, `{"url":"https://[::ffff:10.0.0.1]/x"}`, 400, "ENDPOINT_BLOCKED"},
			{"Unresolvable", "POST", "/v1/endpoints", key, js, `{"url":"https://nowhere.example.com/x"}`, 400, "ENDPOINT_UNREACHABLE"},
			{"LongDescription", "POST", "/v1/endpoints", key, js, `{"url":"https://hooks.example.com/x","description":"` + strings.Repeat("d", 501) + `"}`, 400, "INVALID_REQUEST"},
			{"NegativeRate", "POST", "/v1/endpoints", key, js, `{"url":"https://hooks.example.com/x","rate_limit_rps":-1}`, 400, "INVALID_REQUEST"},
			{"RateTooHigh", "POST", "/v1/endpoints", key, js, `{"url":"https://hooks.example.com/x","rate_limit_rps":1001}`, 400, "INVALID_REQUEST"},
			{"BurstTooHigh", "POST", "/v1/endpoints", key, js, `{"url":"https://hooks.example.com/x","burst":10001}`, 400, "INVALID_REQUEST"},
			{"RateNotInteger", "POST", "/v1/endpoints", key, js, `{"url":"https://hooks.example.com/x","rate_limit_rps":1.5}`, 400, "INVALID_REQUEST"},
			{"HMACNotBool", "POST", "/v1/endpoints", key, js, `{"url":"https://hooks.example.com/x","hmac_enabled":"yes"}`, 400, "INVALID_REQUEST"},
			{"HeaderValueNotString", "POST", "/v1/endpoints", key, js, `{"url":"https://hooks.example.com/x","headers":{"X-A":1}}`, 400, "INVALID_REQUEST"},
			{"ForbiddenHeader", "POST", "/v1/endpoints", key, js, `{"url":"https://hooks.example.com/x","headers":{"Authorization":"Bearer x"}}`, 400, "INVALID_HEADERS"},
			{"ReservedHeaderPrefix", "POST", "/v1/endpoints", key, js, `{"url":"https://hooks.example.com/x","headers":{"X-Webhook-Signature":"x"}}`, 400, "INVALID_HEADERS"},
			{"HeaderInjection", "POST", "/v1/endpoints", key, js, `{"url":"https://hooks.example.com/x","headers":{"X-A":"a\r\nX-B: b"}}`, 400, "INVALID_HEADERS"},
			{"TooManyHeaders", "POST", "/v1/endpoints", key, js, jsonBody(map[string]any{"url": "https://hooks.example.com/x", "headers": tooMany}), 400, "INVALID_HEADERS"},
			{"HeadersTooBig", "POST", "/v1/endpoints", key, js, jsonBody(map[string]any{"url": "https://hooks.example.com/x", "headers": map[string]string{"X-Big": strings.Repeat("v", 8200)}}), 400, "INVALID_HEADERS"},
			{"DuplicateURL", "POST", "/v1/endpoints", key, js, `{"url":"https://hooks.example.com/bad"}`, 409, "DUPLICATE_URL"},
			{"BodyTooLarge", "POST", "/v1/endpoints", key, js, `{"url":"https://hooks.example.com/x","description":"` + strings.Repeat("d", 70*1024) + `"}`, 400, "PAYLOAD_TOO_LARGE"},
			{"NULInDescription", "POST", "/v1/endpoints", key, js, `{"url":"https://hooks.example.com/x","description":"a\u0000b"}`, 400, "INVALID_REQUEST"},
			{"ControlInLabel", "POST", "/v1/api-keys", key, js, `{"label":"a\u0007b"}`, 400, "INVALID_REQUEST"},
			{"CredentialsInURL", "POST", "/v1/endpoints", key, js, `{"url":"https://user:pw@93.184.216.34/x"}`, 400, "INVALID_ENDPOINT"},
			{"HexIPv4", "POST", "/v1/endpoints", key, js, `{"url":"https://0x5db8d822/x"}`, 400, "INVALID_ENDPOINT"},
			{"TranslatedV6", "POST", "/v1/endpoints", key, js, `{"url":"https://[::ffff:0:127.0.0.1]/x"}`, 400, "ENDPOINT_BLOCKED"},
			{"CaseDuplicateHeaders", "POST", "/v1/endpoints", key, js, `{"url":"https://hooks.example.com/x","headers":{"X-A":"1","x-a":"2"}}`, 400, "INVALID_HEADERS"},
			{"PatchNULDescription", "PATCH", epPath, key, js, `{"description":"\u0000"}`, 400, "INVALID_REQUEST"},
			{"PatchBlockedURL", "PATCH", epPath, key, js, `{"url":"https://10.0.0.1/x"}`, 400, "ENDPOINT_BLOCKED"},
			{"PatchBadHeaders", "PATCH", epPath, key, js, `{"headers":{"Host":"evil"}}`, 400, "INVALID_HEADERS"},
			{"PatchBadType", "PATCH", epPath, key, js, `{"burst":"many"}`, 400, "INVALID_REQUEST"},
			{"PatchMalformedJSON", "PATCH", epPath, key, js, `{`, 400, "INVALID_REQUEST"},
			{"MalformedEndpointID", "GET", "/v1/endpoints/ep_nonexistent_12345", key, "", "", 404, "NOT_FOUND"},
			{"UnknownEndpointID", "DELETE", "/v1/endpoints/ep_" + strings.Repeat("0", 32), key, "", "", 404, "NOT_FOUND"},
			{"MalformedKeyID", "DELETE", epPath + "/signing-keys/sk_bad", key, "", "", 404, "NOT_FOUND"},
			{"UnknownKeyID", "DELETE", epPath + "/signing-keys/sk_" + strings.Repeat("0", 32), key, "", "", 404, "NOT_FOUND"},
			{"LastKey", "DELETE", epPath + "/signing-keys/" + ep.SigningKeyId, key, "", "", 409, "CANNOT_DELETE_LAST_SIGNING_KEY"},
			{"MalformedAPIKeyID", "DELETE", "/v1/api-keys/nope", key, "", "", 404, "NOT_FOUND"},
			{"LimitZero", "GET", "/v1/endpoints?limit=0", key, "", "", 400, "INVALID_REQUEST"},
			{"LimitTooHigh", "GET", "/v1/endpoints?limit=101", key, "", "", 400, "INVALID_REQUEST"},
			{"LimitNotNumber", "GET", "/v1/endpoints?limit=ten", key, "", "", 400, "INVALID_REQUEST"},
			{"BadCursor", "GET", "/v1/endpoints?cursor=not-a-cursor", key, "", "", 400, "INVALID_REQUEST"},
			{"ForgedCursor", "GET", "/v1/endpoints?cursor=eyJpZCI6IngnOyBEUk9QIFRBQkxFIGVuZHBvaW50czsifQ", key, "", "", 400, "INVALID_REQUEST"},
			{"APIKeyBadMode", "POST", "/v1/api-keys", key, js, `{"mode":"prod"}`, 400, "INVALID_REQUEST"},
			{"APIKeyLongLabel", "POST", "/v1/api-keys", key, js, `{"label":"` + strings.Repeat("l", 101) + `"}`, 400, "INVALID_REQUEST"},
			{"UnknownPath", "GET", "/v1/nothing-here", key, "", "", 404, "NOT_FOUND"},
			{"WrongMethod", "PUT", "/v1/endpoints", key, js, `{}`, 405, "METHOD_NOT_ALLOWED"},
			{"WrongMethodOnID", "POST", epPath, key, js, `{}`, 405, "METHOD_NOT_ALLOWED"},
		}
		require.GreaterOrEqual(t, len(cases), 30)
		for _, c := range cases {
			before := e.snapshot()
			status, env, raw := e.do(c.method, c.path, c.key, c.ctype, []byte(c.body))
			require.Equal(t, c.status, status, "%s: %s", c.name, raw)
			require.Equal(t, c.code, env.Error.Code, "%s: %s", c.name, raw)
			require.NotEmpty(t, env.Error.Message, c.name)
			require.Equal(t, before, e.snapshot(), "%s changed a row", c.name)
			if c.code == "INVALID_REQUEST" && c.status == 400 {
				require.NotNil(t, env.Error.Details, "%s: details say which field broke which rule", c.name)
				require.Contains(t, *env.Error.Details, "field", c.name)
				require.Contains(t, *env.Error.Details, "rule", c.name)
			}
		}
	})
}

// TestValidationSaysWhichFieldAndRule checks the details of a schema failure.
func TestValidationSaysWhichFieldAndRule(t *testing.T) {
	t.Parallel()
	e := setup(t, "sqlite")
	_, env, _ := e.do("POST", "/v1/endpoints", e.a.key, "application/json", []byte(`{"url":"https://hooks.example.com/x","burst":10001}`))
	require.Equal(t, map[string]any{"field": "/burst", "rule": "maximum"}, *env.Error.Details)
	_, env, _ = e.do("GET", "/v1/endpoints?limit=0", e.a.key, "", nil)
	require.Equal(t, map[string]any{"field": "limit", "rule": "minimum"}, *env.Error.Details)
	_, env, _ = e.do("POST", "/v1/endpoints", e.a.key, "application/json", []byte(`{"description":"x"}`))
	require.Equal(t, "required", (*env.Error.Details)["rule"])
	require.Contains(t, env.Error.Message, "url")
}

// TestUnknownFieldsAreIgnored: SDKs send fields hookd does not know.
func TestUnknownFieldsAreIgnored(t *testing.T) {
	t.Parallel()
	e := setup(t, "sqlite")
	status, _, raw := e.do("POST", "/v1/endpoints", e.a.key, "application/json",
		[]byte(`{"url":"https://hooks.example.com/x","future_field":{"a":[1,2]},"mode":"x"}`))
	require.Equal(t, http.StatusCreated, status, string(raw))
}

// TestGarbageNeverBreaksTheServer throws odd bytes, methods and paths at
// every route on both databases: nothing may answer 5xx, every answer passes
// the contract check (error envelope included), and the server keeps
// serving.
func TestGarbageNeverBreaksTheServer(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, e *env) { garbage(t, e) })
}

func garbage(t *testing.T, e *env) {
	ep := e.createEndpoint(e.a, "https://hooks.example.com/garbage")
	paths := []string{"/v1/endpoints", "/v1/endpoints/" + ep.Id, "/v1/endpoints/" + ep.Id + "/pause",
		"/v1/endpoints/" + ep.Id + "/resume", "/v1/endpoints/" + ep.Id + "/signing-keys",
		"/v1/endpoints/" + ep.Id + "/signing-keys/" + ep.SigningKeyId, "/v1/endpoints/" + ep.Id + "/rotate-secret",
		"/v1/api-keys", "/v1/api-keys/key_x", "/healthz", "/readyz", "/v1/endpoints/%00", "/v1/../../etc/passwd", "/v1/endpoints?limit=%ff"}
	bodies := []string{"", "null", "{}", "[]", "\"str\"", "{\"url\":null}", "{\"url\":{}}", "{\"headers\":[]}",
		"{\"headers\":{\"\":\"\"}}", "\x00\x01\x02", "{\"url\":\"https://hooks.example.com/\\ud800\"}",
		strings.Repeat("[", 10000), "{\"rate_limit_rps\":1e309}", "{\"burst\":99999999999999999999}",
		"{\"url\":\"https://hooks.example.com/g\",\"description\":\"\\u0000\"}", "{\"description\":\"nul\\u0000\"}",
		"{\"label\":\"\\u0000\"}", "{\"url\":\"https://hooks.example.com/\u0000\"}", "{\"headers\":{\"X-A\":\"\\u0000\"}}"}
	methods := []string{"GET", "POST", "PATCH", "DELETE", "PUT", "OPTIONS"}
	client := &http.Client{Transport: &contractCheck{t: t, next: http.DefaultTransport}}
	for _, p := range paths {
		for _, m := range methods {
			for _, b := range bodies {
				req, err := http.NewRequest(m, e.url+p, bytes.NewReader([]byte(b)))
				require.NoError(t, err)
				req.Header.Set("Authorization", "Bearer "+e.a.key)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				require.NoError(t, err)
				body := readAll(t, resp)
				require.Less(t, resp.StatusCode, 500, "%s %s %q: %s", m, p, b, body)
			}
		}
	}
	resp, err := http.Get(e.url + "/healthz")
	require.NoError(t, err)
	readAll(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode)
}
