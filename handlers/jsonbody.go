package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/labstack/echo/v4"
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
// characters; a member that differs only in case from a property of schema
// is refused with a 400 INVALID_REQUEST naming it (see foldedMember).
func strictJSONBody(body io.Reader, _ http.Header, schema *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	b, err := readBody(body, 0)
	if err != nil {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: err}
	}
	if !utf8.Valid(b) {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: errNotUTF8}
	}
	if off := loneSurrogate(b); off >= 0 {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: &loneSurrogateError{Offset: off}}
	}
	raw := json.RawMessage(b)
	if jsonValid(b) {
		raw = trimJSON(b)
	} else {
		// encoding/json says what is wrong.
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(&raw); err != nil {
			return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: err}
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: errTrailingData}
		}
	}
	var v any
	if setsDefaults(schema) {
		// The validator writes the defaults it sets back into the body,
		// from the value it validated: that value must be whole.
		v, err = decodeAll(raw)
	} else {
		v, err = valueFor(raw, schema)
	}
	if err != nil {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: err}
	}
	if name, prop, found := foldedMember(v, schema); found {
		return nil, invalid("/"+name, "case", fmt.Sprintf("request body member %q: member names are case-sensitive; the property is %q", name, prop))
	}
	return v, nil
}

// valueFor decodes raw, one valid JSON value without white space around
// it, into what the validator
// checks against schema: what encoding/json decodes into an interface
// value (numbers as json.Number), except that an object the schema allows
// to be any object at all (freeForm: a message payload) is decoded only as
// far as its type, as an empty object. The validator checks nothing inside
// such an object and the handlers keep it as its bytes, so building its
// tree was spent work: a tenth of hookd's CPU per send before.
func valueFor(raw json.RawMessage, schema *openapi3.SchemaRef) (any, error) {
	var s *openapi3.Schema
	if schema != nil {
		s = schema.Value
	}
	switch first := firstByte(raw); {
	case s == nil:
	case first == '{' && freeForm(s):
		return map[string]any{}, nil
	case !onlyShapes(s):
		// Keywords beside properties and items (allOf, not, …) may apply
		// to a member too: decode it whole.
	case first == '{' && len(s.Properties) > 0:
		out := map[string]any{}
		err := jsonMembers(raw, func(rawName, value []byte) error {
			name, err := memberName(rawName)
			if err != nil {
				return err
			}
			v, err := valueFor(value, s.Properties[name])
			out[name] = v // a repeated name: the last one counts, as in encoding/json
			return err
		})
		return out, err
	case first == '[' && s.Items != nil:
		out := []any{}
		err := jsonItems(raw, func(item []byte) error {
			v, err := valueFor(item, s.Items)
			out = append(out, v)
			return err
		})
		return out, err
	}
	return decodeAll(raw)
}

// decodeAll decodes raw, valid JSON, as the validator's own decoder does
// (numbers as json.Number). Strings without escapes, numbers and literals,
// most of a body's members, are read directly.
func decodeAll(raw json.RawMessage) (any, error) {
	if str, ok := plainString(raw); ok {
		return str, nil
	}
	switch first := firstByte(raw); {
	case first == '-' || (first >= '0' && first <= '9'):
		if end, ok := scanNumber(raw, 0); ok && end == len(raw) {
			return json.Number(raw), nil
		}
	case string(raw) == "true", string(raw) == "false":
		return string(raw) == "true", nil
	case string(raw) == "null":
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	err := dec.Decode(&v)
	return v, err
}

// setsDefaults reports whether schema, or a schema inside it, has a
// default, which the validator would set in the value it decoded.
func setsDefaults(schema *openapi3.SchemaRef) bool {
	if schema == nil {
		return false
	}
	return judged(&defaultSetters, schema, func() bool {
		seen := map[*openapi3.Schema]bool{}
		var walk func(r *openapi3.SchemaRef) bool
		walk = func(r *openapi3.SchemaRef) bool {
			if r == nil || r.Value == nil || seen[r.Value] {
				return false
			}
			s := r.Value
			seen[s] = true
			if s.Default != nil || walk(s.Items) || walk(s.AdditionalProperties.Schema) || walk(s.Not) {
				return true
			}
			for _, refs := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
				for _, r := range refs {
					if walk(r) {
						return true
					}
				}
			}
			for _, p := range s.Properties {
				if walk(p) {
					return true
				}
			}
			return false
		}
		return walk(schema)
	})
}

// memberName decodes a member name (its quoted text).
func memberName(raw []byte) (string, error) {
	if name, ok := plainString(raw); ok {
		return name, nil
	}
	var name string
	err := json.Unmarshal(raw, &name)
	return name, err
}

// firstByte is the first byte of raw (a JSON value without white space
// before it), or 0.
func firstByte(raw []byte) byte {
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

// Judgements of schemas, made once per schema (the spec's schemas live as
// long as the process): freeForm, onlyShapes and setsDefaults.
var freeForms, shapeOnly, defaultSetters sync.Map // schema pointer → bool

// judged returns what judge says of key, asking it once.
func judged(cache *sync.Map, key any, judge func() bool) bool {
	if v, ok := cache.Load(key); ok {
		return v.(bool)
	}
	v := judge()
	cache.Store(key, v)
	return v
}

// undocumented is s without the keywords that only document it.
func undocumented(s *openapi3.Schema) openapi3.Schema {
	bare := *s
	bare.Extensions, bare.Title, bare.Description, bare.Example, bare.ExternalDocs, bare.Deprecated = nil, "", "", nil, nil, false
	return bare
}

// freeForm reports whether s accepts any JSON object and nothing else:
// `type: object` and no other keyword that constrains a value (its
// documentation aside). Any constraint, including ones added to the spec
// later, makes it false, and its values are then decoded in full.
func freeForm(s *openapi3.Schema) bool {
	return judged(&freeForms, s, func() bool {
		return reflect.DeepEqual(undocumented(s), openapi3.Schema{Type: &openapi3.Types{openapi3.TypeObject}})
	})
}

// onlyShapes reports whether s constrains a value only through its type,
// its properties (with the required ones and additional ones) and the
// number of them, or its items and their number: whatever else it says
// (allOf, anyOf, oneOf, not, uniqueItems, the 3.1 keywords) could apply
// to a member that valueFor would decode only as far as its type.
func onlyShapes(s *openapi3.Schema) bool {
	return judged(&shapeOnly, s, func() bool {
		bare := undocumented(s)
		bare.Type, bare.Nullable = nil, false
		bare.Properties, bare.Required, bare.AdditionalProperties, bare.MinProps, bare.MaxProps = nil, nil, openapi3.AdditionalProperties{}, 0, nil
		bare.Items, bare.MinItems, bare.MaxItems = nil, 0, nil
		return reflect.DeepEqual(bare, openapi3.Schema{})
	})
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

// foldedMember finds, in v decoded for schema, an object member whose name
// is not a property of its object's schema but equals one (prop) under
// strings.EqualFold, the rule by which encoding/json matches struct fields.
// The validator takes such a member for an unknown one and checks nothing,
// but the handlers bind the body again with encoding/json, which takes it
// for the property: {"payload":{},"PAYLOAD":"x"} would be sent with the
// payload "x". Objects whose schema declares no properties (payloads,
// header maps) are not looked into.
func foldedMember(v any, schema *openapi3.SchemaRef) (name, prop string, found bool) {
	if schema == nil || schema.Value == nil {
		return "", "", false
	}
	s := schema.Value
	switch v := v.(type) {
	case map[string]any:
		for _, name := range slices.Sorted(maps.Keys(v)) {
			if p, ok := s.Properties[name]; ok {
				if inner, prop, found := foldedMember(v[name], p); found {
					return name + "/" + inner, prop, true
				}
				continue
			}
			for _, prop := range slices.Sorted(maps.Keys(s.Properties)) {
				if strings.EqualFold(name, prop) {
					return name, prop, true
				}
			}
		}
	case []any:
		for i, item := range v {
			if inner, prop, found := foldedMember(item, s.Items); found {
				return fmt.Sprint(i) + "/" + inner, prop, true
			}
		}
	}
	return "", "", false
}

// lowerMediaType lower-cases the media type of a request's Content-Type,
// which is case-insensitive (RFC 9110) and which the validator reads
// lower-cased, so that Echo's binder, which compares it exactly, binds every
// body the validator accepted rather than answering an undocumented 415.
func lowerMediaType(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header
		if ct := h.Get(echo.HeaderContentType); ct != "" {
			base, params, hasParams := strings.Cut(ct, ";")
			lower := strings.ToLower(strings.TrimSpace(base))
			if hasParams {
				lower += ";" + params
			}
			h.Set(echo.HeaderContentType, lower)
		}
		return next(c)
	}
}
