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
	if r, ok := i.(*gen.SendRequest); ok {
		b, err := readBody(c.Request().Body, c.Request().ContentLength)
		if err != nil {
			return err
		}
		if v, ok := decodeSend(b); ok {
			*r = v
			return nil
		}
		c.Request().Body = io.NopCloser(bytes.NewReader(b))
	}
	return s.DefaultJSONSerializer.Deserialize(c, i)
}

var errNotPlain = errors.New("not a plain member: encoding/json decides")

// sendFields are the members of a send body, read from gen.SendRequest so
// that a member the spec adds, which decodeSend does not decode, is left to
// encoding/json rather than dropped.
var sendFields = func() []string {
	t := reflect.TypeFor[gen.SendRequest]()
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}()

// decodeSend decodes b, a send body, into what encoding/json decodes it
// into, when it is a valid JSON object in UTF-8 whose members are plain: names
// without escapes that are exactly a field's or no field's even ignoring
// case, a payload that is an object, strings without escapes, a whole
// number of hours and at most one header map. ok is false otherwise, and
// the caller decodes with encoding/json.
func decodeSend(b []byte) (r gen.SendRequest, ok bool) {
	if !jsonValid(b) || !utf8.Valid(b) { // (encoding/json replaces bytes that are not UTF-8)
		return r, false
	}
	raw := bytes.TrimRight(b[skipSpace(b, 0):], " \t\r\n")
	if raw[0] != '{' {
		return r, false
	}
	err := jsonMembers(raw, func(rawName, value []byte) error {
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
			r.Payload = json.RawMessage(value) // b is the request's own copy of the body
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
			for _, f := range sendFields {
				if strings.EqualFold(name, f) {
					return errNotPlain
				}
			}
			for _, c := range []byte(name) {
				if c >= 0x80 {
					return errNotPlain // Unicode case folding: leave it to encoding/json
				}
			}
		}
		return nil
	})
	return r, err == nil
}

// plainString is the text of value, a valid JSON string without escapes,
// if it is one (no decoding needed: the body is UTF-8).
func plainString(value []byte) (string, bool) {
	if len(value) < 2 || value[0] != '"' || bytes.IndexByte(value, '\\') >= 0 {
		return "", false
	}
	return string(value[1 : len(value)-1]), true
}
