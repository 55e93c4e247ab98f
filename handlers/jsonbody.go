package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
)

var configureOnce sync.Once

// configureValidator sets kin-openapi's process-wide registries once: JSON
// bodies with anything after the value (`{"a":1} xyz`), which the default
// decoder lets through, are refused; `format: uuid` is checked (RFC 9562,
// so UUIDv7 ids pass), so a malformed message id in a path answers 404
// like any malformed id.
func configureValidator() {
	configureOnce.Do(func() {
		openapi3filter.RegisterBodyDecoder("application/json", strictJSONBody)
		openapi3.DefineStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC9562))
	})
}

var (
	errTrailingData = errors.New("unexpected data after the JSON value")
	// errNotUTF8: JSON text is UTF-8 (RFC 8259); other bytes would be
	// replaced by U+FFFD on decoding, changing what was sent.
	errNotUTF8 = errors.New("the request body is not valid UTF-8")
)

// loneSurrogateError is a \uD800–\uDFFF escape without its pair: no
// character, so decoding would store U+FFFD instead.
type loneSurrogateError struct{ Offset int }

func (e *loneSurrogateError) Error() string {
	return fmt.Sprintf("a JSON string has an unpaired UTF-16 surrogate escape at byte %d", e.Offset)
}

// strictJSONBody decodes exactly one JSON value (numbers kept as
// json.Number, as kin-openapi's own decoder does) followed only by white
// space. Bodies that are not valid UTF-8, or whose strings escape a lone
// UTF-16 surrogate, are refused rather than decoded with replacement
// characters.
func strictJSONBody(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: err}
	}
	if !utf8.Valid(b) {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: errNotUTF8}
	}
	if off := loneSurrogate(b); off >= 0 {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: &loneSurrogateError{Offset: off}}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: err}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: errTrailingData}
	}
	return v, nil
}

// loneSurrogate returns the byte offset of the first \u escape in b that
// names half of a UTF-16 surrogate pair without the other half, or -1.
// b need not be valid JSON: a malformed escape is the decoder's to report.
func loneSurrogate(b []byte) int {
	if !bytes.Contains(b, []byte(`\u`)) {
		return -1 // the common case: one fast scan
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			continue
		}
		if b[i+1] != 'u' {
			i++ // \\, \" and the like: skip the escaped byte
			continue
		}
		r, ok := hex4(b, i+2)
		if !ok {
			return -1
		}
		switch {
		case r >= 0xD800 && r <= 0xDBFF: // high half: a low half must follow
			if i+7 < len(b) && b[i+6] == '\\' && b[i+7] == 'u' {
				if lo, ok := hex4(b, i+8); ok && lo >= 0xDC00 && lo <= 0xDFFF {
					i += 11
					continue
				}
			}
			return i
		case r >= 0xDC00 && r <= 0xDFFF: // a low half on its own
			return i
		}
		i += 5
	}
	return -1
}

// hex4 reads four hex digits at b[at:].
func hex4(b []byte, at int) (rune, bool) {
	if at+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[at : at+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c-'a') + 10
		case c >= 'A' && c <= 'F':
			r |= rune(c-'A') + 10
		default:
			return 0, false
		}
	}
	return r, true
}
