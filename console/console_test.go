package console_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/console"
)

func get(t *testing.T, h http.Handler, method, path string, header map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	return b
}

// TestServesTheBuildWithItsHeaders: every file of dist/ is served as
// built, gzip-compressed when asked, revalidated by ETag, with the
// security headers on every answer.
func TestServesTheBuildWithItsHeaders(t *testing.T) {
	h, err := console.Handler(console.Options{})
	require.NoError(t, err)
	for path, file := range map[string]string{"/console/": "dist/index.html", "/console/app.js": "dist/app.js", "/console/app.css": "dist/app.css", "/console/favicon.svg": "dist/favicon.svg"} {
		want, err := os.ReadFile(file)
		require.NoError(t, err)

		r := get(t, h, http.MethodGet, path, nil)
		require.Equal(t, http.StatusOK, r.StatusCode, path)
		require.Equal(t, want, body(t, r), path)
		require.Equal(t, console.CSP, r.Header.Get("Content-Security-Policy"))
		require.Equal(t, "nosniff", r.Header.Get("X-Content-Type-Options"))
		require.Equal(t, "DENY", r.Header.Get("X-Frame-Options"))
		require.Equal(t, "no-referrer", r.Header.Get("Referrer-Policy"))
		require.Empty(t, r.Header.Get("Content-Encoding"))

		z := get(t, h, http.MethodGet, path, map[string]string{"Accept-Encoding": "br, gzip;q=0.8"})
		require.Equal(t, "gzip", z.Header.Get("Content-Encoding"), path)
		zr, err := gzip.NewReader(bytes.NewReader(body(t, z)))
		require.NoError(t, err)
		plain, err := io.ReadAll(zr)
		require.NoError(t, err)
		require.Equal(t, want, plain, path)
		require.Empty(t, get(t, h, http.MethodGet, path, map[string]string{"Accept-Encoding": "gzip;q=0"}).Header.Get("Content-Encoding"))

		etag := r.Header.Get("ETag")
		require.NotEmpty(t, etag)
		require.Equal(t, http.StatusNotModified, get(t, h, http.MethodGet, path, map[string]string{"If-None-Match": etag}).StatusCode)
	}
	require.Contains(t, get(t, h, http.MethodGet, "/console/app.js", nil).Header.Get("Content-Type"), "javascript")

	r := get(t, h, http.MethodGet, "/console", nil)
	require.Equal(t, http.StatusMovedPermanently, r.StatusCode)
	require.Equal(t, "/console/", r.Header.Get("Location"))
	require.Equal(t, http.StatusNotFound, get(t, h, http.MethodGet, "/console/missing.js", nil).StatusCode)
	r = get(t, h, http.MethodPost, "/console/", nil)
	require.Equal(t, http.StatusMethodNotAllowed, r.StatusCode)
	require.Equal(t, console.CSP, r.Header.Get("Content-Security-Policy"))
}

// TestPolicyAndPageHoldNoInlineCode: the policy allows no inline script or
// style and no framing, and the page keeps to it: scripts and styles come
// from its own files, nothing is loaded from elsewhere, and the bundle
// never turns a string into markup or code. (The browser tests check the
// same at run time: no policy violation and no request to another origin.)
func TestPolicyAndPageHoldNoInlineCode(t *testing.T) {
	require.Equal(t, console.CSP, console.Options{}.Policy())
	require.Equal(t, console.CSP+"; connect-src 'self' https://hookd.example.com", console.Options{DownloadOrigin: "https://hookd.example.com"}.Policy())
	require.Contains(t, console.CSP, "require-trusted-types-for 'script'")
	require.Contains(t, console.CSP, "default-src 'self'")
	require.Contains(t, console.CSP, "frame-ancestors 'none'")
	require.NotContains(t, console.CSP, "unsafe-")
	page, err := os.ReadFile("dist/index.html")
	require.NoError(t, err)
	html := string(page)
	scripts := regexp.MustCompile(`(?s)<script([^>]*)>(.*?)</script>`).FindAllStringSubmatch(html, -1)
	require.NotEmpty(t, scripts)
	for _, s := range scripts {
		require.Contains(t, s[1], `src="app.js"`)
		require.Empty(t, strings.TrimSpace(s[2]), "inline script")
	}
	require.NotContains(t, html, "<style")
	require.NotRegexp(t, `\sstyle=|\son[a-z]+=`, html)
	require.NotRegexp(t, `(src|href)="(https?:)?//`, html, "a file from elsewhere")
	js, err := os.ReadFile("dist/app.js")
	require.NoError(t, err)
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
		require.NotContains(t, string(js), sink, "the bundle uses %s: text must go in as text", sink)
	}
}
