// Package console serves the hookd console: a web page, built from the
// TypeScript in src/ into dist/ (committed, our own code only) and embedded
// in the binary, that works only through the public API with the API key
// its user signs in with.
package console

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// Prefix is where the console is served.
const Prefix = "/console"

// CSP is the console's Content-Security-Policy: its own scripts, styles
// and API only, no inline script or style, no string turned into markup
// or code (Trusted Types), never framed.
const CSP = "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'; require-trusted-types-for 'script'; trusted-types 'none'"

// Options configure Handler.
type Options struct {
	// DownloadOrigin, when not empty, is an origin ("https://host[:port]")
	// other than the console's own that export downloads redirect to
	// (hookd's --public-url); the policy lets the console fetch from it.
	DownloadOrigin string
}

// Policy is the Content-Security-Policy the handler sends.
func (o Options) Policy() string {
	if o.DownloadOrigin == "" {
		return CSP
	}
	return CSP + "; connect-src 'self' " + o.DownloadOrigin
}

//go:embed dist
var dist embed.FS

type asset struct {
	body, gzipped []byte // gzipped is nil when gzip would not save
	contentType   string
	etag          string
}

func gzipOf(b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // (a valid level)
	_, _ = zw.Write(b)
	_ = zw.Close()
	if buf.Len() >= len(b) {
		return nil
	}
	return buf.Bytes()
}

// Handler serves the console's files under Prefix; /console itself
// redirects to /console/. Every answer carries the security headers; the
// files are revalidated by ETag, so an upgrade shows at the next load.
func Handler(o Options) (http.Handler, error) {
	policy := o.Policy()
	assets := map[string]asset{}
	err := fs.WalkDir(dist, "dist", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := dist.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = "application/octet-stream"
		}
		assets[strings.TrimPrefix(p, "dist/")] = asset{body: b, gzipped: gzipOf(b), contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", policy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name := strings.TrimPrefix(r.URL.Path, Prefix)
		switch name {
		case "":
			http.Redirect(w, r, Prefix+"/", http.StatusMovedPermanently)
			return
		case "/":
			name = "index.html"
		default:
			name = strings.TrimPrefix(name, "/")
		}
		a, ok := assets[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h.Set("ETag", a.etag)
		if r.Header.Get("If-None-Match") == a.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", a.contentType)
		h.Set("Vary", "Accept-Encoding")
		body := a.body
		if a.gzipped != nil && acceptsGzip(r) {
			h.Set("Content-Encoding", "gzip")
			body = a.gzipped
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	}), nil
}

// acceptsGzip says whether the request's Accept-Encoding lists gzip
// (without q=0).
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") {
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}
