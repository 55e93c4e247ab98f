package customheaders_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"
	"testing"

	"github.com/hookd/hookd/customheaders"
)

// FuzzValidate checks Validate on header maps as the API receives them: a
// JSON object (the fuzzed text) plus `extra` generated headers of `pad`
// bytes each, to reach the count and size limits.
//   - Validate accepts exactly the maps that obey the documented rules,
//     written out independently below: at most MaxCount entries, at most
//     MaxBytes of names and values, names that are RFC 9110 tokens, not
//     forbidden, not reserved and unique ignoring case, values with no
//     control character but tab; every refusal wraps ErrInvalid.
//   - An accepted map goes over the wire unchanged: written as an HTTP
//     header block and read back, it gives exactly its own names, each with
//     its value (less the surrounding blanks HTTP drops), and nothing else,
//     so no value can inject a header.
func FuzzValidate(f *testing.F) {
	f.Add(`{"X-Tenant":"acme","Cookie":"a=b"}`, uint8(0), uint16(0))
	f.Add(`{"X-A":"a\r\nX-Injected: yes"}`, uint8(0), uint16(0))
	f.Add(`{"X-A":"1","x-a":"2"}`, uint8(0), uint16(0))
	f.Add(`{"X-Webhook-Signature":"sha256=00"}`, uint8(0), uint16(0))
	f.Add(`{"Proxy-Foo":"x","TE":"trailers"}`, uint8(0), uint16(0))
	f.Add(`{"X-Tab":"a\tb","X-Obs":"caf\u00e9"}`, uint8(0), uint16(0))
	f.Add(`{"X-Del":"\u007f"}`, uint8(0), uint16(0))
	f.Add(`{"X-Surrogate":"\ud800"}`, uint8(0), uint16(0))
	f.Add(`{"X-\u212a":"kelvin"}`, uint8(0), uint16(0))
	f.Add(`{"":"empty name"}`, uint8(0), uint16(0))
	f.Add(`{"X-Blank":"  padded  "}`, uint8(0), uint16(0))
	f.Add(`{}`, uint8(50), uint16(1))
	f.Add(`{"X-One":"v"}`, uint8(50), uint16(1))
	f.Add(`{}`, uint8(1), uint16(8192-len("X-Fill-00")))
	f.Add(`{}`, uint8(1), uint16(8193-len("X-Fill-00")))
	f.Fuzz(func(t *testing.T, object string, extra uint8, pad uint16) {
		var h map[string]string
		if err := json.Unmarshal([]byte(object), &h); err != nil {
			return // not a header object; the API refuses it before Validate
		}
		if h == nil {
			h = map[string]string{}
		}
		for i := range int(extra % 64) {
			h[fmt.Sprintf("X-Fill-%02d", i)] = strings.Repeat("v", int(pad%(customheaders.MaxBytes+64)))
		}

		err := customheaders.Validate(h)
		if err != nil && !errors.Is(err, customheaders.ErrInvalid) {
			t.Fatalf("Validate: %v does not wrap ErrInvalid", err)
		}
		if why := breaksRules(h); (err == nil) != (why == "") {
			t.Fatalf("Validate(%q) = %v, but by the rules: %q", h, err, why)
		}
		if err == nil {
			roundTrip(t, h)
		}
	})
}

// breaksRules names the first documented rule h breaks, or "".
func breaksRules(h map[string]string) string {
	if len(h) > 50 {
		return "more than 50 headers"
	}
	total := 0
	for name, value := range h {
		total += len(name) + len(value)
	}
	if total > 8*1024 {
		return "more than 8 KiB"
	}
	seen := map[string]bool{}
	for name, value := range h {
		if name == "" || strings.TrimLeft(name, tchars) != "" {
			return "name not a token: " + name
		}
		lower := strings.ToLower(name)
		if seen[lower] {
			return "name twice: " + name
		}
		seen[lower] = true
		if forbiddenNames[lower] {
			return "forbidden name: " + name
		}
		for _, p := range []string{"x-webhook-", "webhook-", "proxy-"} {
			if strings.HasPrefix(lower, p) {
				return "reserved prefix: " + name
			}
		}
		for i := range len(value) {
			if c := value[i]; (c < 0x20 && c != '\t') || c == 0x7f {
				return "control character in " + name
			}
		}
	}
	return ""
}

// tchars are the characters of an RFC 9110 token.
const tchars = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// forbiddenNames are set by hookd or the transport, or are hop-by-hop.
var forbiddenNames = map[string]bool{
	"host": true, "authorization": true, "content-length": true,
	"content-type": true, "transfer-encoding": true, "connection": true,
	"keep-alive": true, "te": true, "trailer": true, "upgrade": true,
	"content-encoding": true, "expect": true,
	"proxy-authorization": true, "proxy-authenticate": true, "proxy-connection": true,
}

// roundTrip writes h as an HTTP/1.1 header block and reads it back.
func roundTrip(t *testing.T, h map[string]string) {
	t.Helper()
	hdr := http.Header{}
	for name, value := range h {
		hdr[name] = []string{value} // as given, not canonicalised
	}
	var buf bytes.Buffer
	if err := hdr.Write(&buf); err != nil {
		t.Fatal(err)
	}
	buf.WriteString("\r\n")
	got, err := textproto.NewReader(bufio.NewReader(&buf)).ReadMIMEHeader()
	if err != nil {
		t.Fatalf("an accepted header set does not read back: %v\n%q", err, buf.String())
	}
	if len(got) != len(h) {
		t.Fatalf("%d headers went out, %d came back: %q", len(h), len(got), got)
	}
	for name, value := range h {
		vs := got[textproto.CanonicalMIMEHeaderKey(name)]
		if want := strings.Trim(value, " \t"); len(vs) != 1 || vs[0] != want {
			t.Fatalf("header %q: sent %q, read back %q", name, value, vs)
		}
	}
}
