package handlers

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FuzzJSONScan holds the fast JSON scanner to encoding/json on any bytes:
// jsonValid accepts exactly what json.Valid accepts, and on an object or
// array it accepts, jsonMembers and jsonItems split it into the members
// and items encoding/json decodes (a repeated member name: the last).
func FuzzJSONScan(f *testing.F) {
	for _, s := range []string{
		`{"endpoint_id":"ep_1","payload":{"a":[1,-2.5e+3,true,false,null,"x\"y\\u00e9\n"]},"k":{}}`,
		`{"a":1,"a":2, "\u0061" : 3 }`, ` [ 1 , [ ] , { } , "" ] `, `[1,]`, `{"a":1,}`, `{"a" 1}`,
		`01`, `-`, `-0.0e-0`, `1.`, `.5`, `1e`, `"\x"`, `"\u12G4"`, "\"a\tb\"", `tru`, `nul`, `{"a":1}}`,
		`{"a":1} x`, ``, `   `, "\xff", strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001), strings.Repeat(`{"a":`, 10001) + "1" + strings.Repeat("}", 10001),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		valid := json.Valid(b)
		if got := jsonValid(b); got != valid {
			t.Fatalf("%q: jsonValid %v, json.Valid %v", b, got, valid)
		}
		if !valid {
			return
		}
		raw := trimJSON(b)
		want, err := decodeAll(raw)
		if err != nil {
			t.Fatal(err)
		}
		var got any
		switch raw[0] {
		case '{':
			m := map[string]any{}
			err = jsonMembers(raw, func(name, value []byte) error {
				n, err := memberName(name)
				if err != nil {
					return err
				}
				m[n], err = decodeAll(value)
				return err
			})
			got = m
		case '[':
			items := []any{}
			err = jsonItems(raw, func(item []byte) error {
				v, err := decodeAll(item)
				items = append(items, v)
				return err
			})
			got = items
		default:
			return
		}
		if err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: split into %#v, encoding/json decodes %#v", b, got, want)
		}
	})
}
