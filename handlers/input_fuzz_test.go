package handlers

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzBadQueryParam: a query is refused exactly when Go's own parser would
// drop part of it, so nothing the handlers read was silently lost, and
// nothing Go reads fine is refused.
func FuzzBadQueryParam(f *testing.F) {
	for _, s := range []string{"", "a=1&b=2", "endpoint_id=ep_1%zz", "a=1;b=2", "cursor=%%%x", "%zz=1", "a=%4", "a=%41&&b", "=x", "a&b=", "%e2%82%ac=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		name, reason, bad := badQueryParam(raw)
		_, err := url.ParseQuery(raw)
		if bad != (err != nil) {
			t.Fatalf("badQueryParam(%q) = %v (%q, %q), url.ParseQuery error %v", raw, bad, name, reason, err)
		}
		if bad && (reason == "" || utf8.RuneCountInString(name) > maxNameEcho+1) {
			t.Fatalf("badQueryParam(%q): name %q reason %q", raw, name, reason)
		}
	})
}

// FuzzLoneSurrogate: for valid JSON, loneSurrogate finds an unpaired
// surrogate escape exactly when decoding would put U+FFFD where the input
// had none.
func FuzzLoneSurrogate(f *testing.F) {
	for _, s := range []string{`{"s":"\ud800"}`, `{"s":"\ud83d\ude00"}`, `{"s":"\\ud800"}`, `{"s":"\udc00"}`, `{"\ud800\u0041":1}`,
		`["\uD800\uDBFF\uDC00"]`, `"\\\ud800"`, `{"a":"é"}`, `"\ud800`, `"\u12"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		off := loneSurrogate(b)
		if off >= len(b) || off < -1 {
			t.Fatalf("offset %d out of range for %d bytes", off, len(b))
		}
		var v any
		if !utf8.Valid(b) || json.Unmarshal(b, &v) != nil {
			return // only decodable JSON has a meaning to compare with
		}
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		replaced := bytes.Contains(out, []byte("\ufffd")) && !hasReplacementChar(b)
		if replaced != (off >= 0) {
			t.Fatalf("%q: loneSurrogate = %d, decoding replaced a character: %v", b, off, replaced)
		}
	})
}

// hasReplacementChar reports whether b spells U+FFFD itself, raw or escaped.
func hasReplacementChar(b []byte) bool {
	s := strings.ToLower(string(b))
	return strings.Contains(s, "\ufffd") || strings.Contains(s, `\ufffd`)
}
