package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/hookd/hookd/gen"
)

// jsonSerializer is Echo's JSON serializer with a faster decoder for the
// body of a send, the request every message starts with. The validator has
// checked that body already; decoding it again with encoding/json scanned
// the payload twice more (the second of the two decodes a send used to
// pay). decodeSend gives the struct encoding/json gives, or leaves the body
// to encoding/json.
type jsonSerializer struct{ echo.DefaultJSONSerializer }

func (s jsonSerializer) Deserialize(c echo.Context, i any) error {
	var decoded bool
	var err error
	switch r := i.(type) {
	case *gen.SendRequest:
		decoded, err = decodeFast(c, r, decodeSend)
	case *gen.SendBatchRequest:
		decoded, err = decodeFast(c, r, decodeSendBatch)
	}
	if decoded || err != nil {
		return err
	}
	return s.DefaultJSONSerializer.Deserialize(c, i)
}

// decodeFast reads the request's body and decodes it into r with decode,
// when decode takes it; otherwise it puts the body back for encoding/json.
func decodeFast[T any](c echo.Context, r *T, decode func([]byte) (T, bool)) (bool, error) {
	b, err := readBody(c.Request().Body, c.Request().ContentLength)
	if err != nil {
		return false, err
	}
	if v, ok := decode(b); ok {
		*r = v
		return true, nil
	}
	c.Request().Body = io.NopCloser(bytes.NewReader(b))
	return false, nil
}

var errNotPlain = errors.New("not a plain member: encoding/json decides")

// sendFields are the members of a send body, read from gen.SendRequest so
// that a member the spec adds, which decodeSend does not decode, is left to
// encoding/json rather than dropped.
var sendFields = jsonFieldNames(reflect.TypeFor[gen.SendRequest]())

// sendBatchFields are the members of a batch send body (see sendFields).
var sendBatchFields = jsonFieldNames(reflect.TypeFor[gen.SendBatchRequest]())

// jsonFieldNames are the member names encoding/json gives t's fields.
func jsonFieldNames(t reflect.Type) []string {
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}

// decodeSend decodes b, a send body, into what encoding/json decodes it
// into, when it is a valid JSON object in UTF-8 whose members are plain: names
// without escapes that are exactly a field's or no field's even ignoring
// case, a payload that is an object, strings without escapes, a whole
// number of hours and at most one header map. ok is false otherwise, and
// the caller decodes with encoding/json.
func decodeSend(b []byte) (r gen.SendRequest, ok bool) {
	raw, ok := plainJSONObject(b)
	if !ok {
		return r, false
	}
	r, err := decodeSendObject(raw)
	return r, err == nil
}

// decodeSendBatch is decodeSend for a batch send body: ok only when its
// messages member (given once) is an array of sends decodeSend would take,
// and every other member is one encoding/json ignores.
func decodeSendBatch(b []byte) (r gen.SendBatchRequest, ok bool) {
	raw, ok := plainJSONObject(b)
	if !ok {
		return r, false
	}
	seen := false
	err := jsonMembers(raw, func(rawName, value []byte) error {
		if bytes.IndexByte(rawName, '\\') >= 0 {
			return errNotPlain
		}
		name := string(rawName[1 : len(rawName)-1])
		if name != "messages" {
			return ignoredMember(name, sendBatchFields)
		}
		// encoding/json decodes a repeated array into the same elements,
		// merging them: leave that to it.
		if seen || value[0] != '[' {
			return errNotPlain
		}
		seen = true
		r.Messages = make([]gen.SendRequest, 0, 16)
		return jsonItems(value, func(item []byte) error {
			m, err := decodeSendObject(item)
			if err != nil {
				return err
			}
			r.Messages = append(r.Messages, m)
			return nil
		})
	})
	return r, err == nil
}

// plainJSONObject is b, when it is one valid JSON object in UTF-8, without
// the white space around it.
func plainJSONObject(b []byte) ([]byte, bool) {
	if !jsonValid(b) || !utf8.Valid(b) { // (encoding/json replaces bytes that are not UTF-8)
		return nil, false
	}
	raw := trimJSON(b)
	return raw, raw[0] == '{'
}

// ignoredMember is nil when encoding/json ignores a member called name in
// an object whose fields are named fields: no field's name, even ignoring
// case (Unicode case folding is left to encoding/json).
func ignoredMember(name string, fields []string) error {
	for _, f := range fields {
		if strings.EqualFold(name, f) {
			return errNotPlain
		}
	}
	for _, c := range []byte(name) {
		if c >= 0x80 {
			return errNotPlain
		}
	}
	return nil
}

// decodeSendObject decodes raw, a valid JSON value, when it is a send
// whose members are plain (see decodeSend); errNotPlain otherwise.
func decodeSendObject(raw []byte) (r gen.SendRequest, err error) {
	if raw[0] != '{' {
		return r, errNotPlain
	}
	err = jsonMembers(raw, func(rawName, value []byte) error {
		if bytes.IndexByte(rawName, '\\') >= 0 {
			return errNotPlain
		}
		switch name := string(rawName[1 : len(rawName)-1]); name {
		case "endpoint_id":
			s, ok := plainString(value)
			if !ok {
				return errNotPlain
			}
			r.EndpointId = s
		case "payload":
			if value[0] != '{' {
				return errNotPlain
			}
			// The body is the request's own copy (Deserialize reads it
			// for itself); the capacity is capped so that an append to one
			// payload cannot write over what follows it.
			r.Payload = json.RawMessage(value[:len(value):len(value)])
		case "idempotency_key", "ordering_key":
			s, ok := plainString(value)
			if !ok {
				return errNotPlain
			}
			if name == "idempotency_key" {
				r.IdempotencyKey = &s
			} else {
				r.OrderingKey = &s
			}
		case "retention_hours":
			n, err := strconv.Atoi(string(value)) // a valid JSON number Atoi takes is -?digits
			if err != nil {
				return errNotPlain
			}
			r.RetentionHours = &n
		case "headers":
			// encoding/json merges a repeated map member into the first.
			if r.Headers != nil || value[0] != '{' {
				return errNotPlain
			}
			var h gen.Headers
			if err := json.Unmarshal(value, &h); err != nil {
				return errNotPlain
			}
			r.Headers = &h
		default:
			// encoding/json would take a name equal to a field's but for
			// case for that field (or a field not decoded above).
			return ignoredMember(name, sendFields)
		}
		return nil
	})
	return r, err
}

// plainString is the text of value, a valid JSON string without escapes,
// if it is one (no decoding needed: the body is UTF-8).
func plainString(value []byte) (string, bool) {
	if len(value) < 2 || value[0] != '"' || bytes.IndexByte(value, '\\') >= 0 {
		return "", false
	}
	return string(value[1 : len(value)-1]), true
}
