// Package eventtypes holds the rules of the event model: event type names,
// the subscription patterns endpoints use to choose event types, and the
// JSON Schemas an event type may set for its payloads.
package eventtypes

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// MaxName is the longest event type name; MaxSchemaBytes the largest
// schema. (The API's schema caps an endpoint's patterns at 100.)
const (
	MaxName        = 100
	MaxSchemaBytes = 32 * 1024
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)

// ValidName reports whether s is an event type name: 1 to 100 letters,
// digits, '.', '_' or '-'.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// ValidPattern reports whether p is a subscription pattern: "*" (every
// type), a name, or a name followed by ".*" ("order.*": every type that
// starts with "order.").
func ValidPattern(p string) bool {
	if p == "*" {
		return true
	}
	return ValidName(strings.TrimSuffix(p, ".*")) && !strings.Contains(strings.TrimSuffix(p, ".*"), "*") && len(p) <= MaxName+2
}

// Matches reports whether an endpoint subscribed with patterns receives
// events of type name; no patterns means every type.
func Matches(patterns []string, name string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		switch {
		case p == "*" || p == name:
			return true
		case strings.HasSuffix(p, ".*") && strings.HasPrefix(name, strings.TrimSuffix(p, "*")):
			return true
		}
	}
	return false
}

// ErrInvalidSchema is a schema that does not compile.
var ErrInvalidSchema = errors.New("invalid JSON Schema")

// Compile compiles a JSON Schema (draft 2020-12 unless it says otherwise
// in $schema). References to anything outside the schema are refused:
// hookd loads nothing from the network or the disk.
func Compile(schema []byte) (*jsonschema.Schema, error) {
	if len(schema) > MaxSchemaBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidSchema, MaxSchemaBytes)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSchema, err)
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(jsonschema.SchemeURLLoader{}) // no scheme: nothing is fetched
	const loc = "hookd:event-type-schema.json"
	if err := c.AddResource(loc, doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSchema, err)
	}
	sch, err := c.Compile(loc)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidSchema, compileMessage(err))
	}
	return sch, nil
}

// compileMessage says in words why a schema does not compile: the first
// rule of the JSON Schema metaschema it breaks, with where, or the
// reference it would have to load.
func compileMessage(err error) string {
	var load *jsonschema.LoadURLError
	if errors.As(err, &load) {
		return fmt.Sprintf("it refers to %s, outside itself; hookd loads no schemas from URLs or files (inline them under $defs)", load.URL)
	}
	var meta *jsonschema.SchemaValidationError
	var ve *jsonschema.ValidationError
	if errors.As(err, &meta) && errors.As(meta.Err, &ve) {
		if u, _ := deepest(*ve.DetailedOutput(), 0); u.Error != nil {
			return fmt.Sprintf("at %s: %s", cmp.Or(u.InstanceLocation, "/"), u.Error.String())
		}
		return "it is not a valid JSON Schema"
	}
	return err.Error()
}

// deepest is the first of the most deeply nested failures: the rule that
// was actually broken, not the allOf/anyOf around it.
func deepest(u jsonschema.OutputUnit, depth int) (jsonschema.OutputUnit, int) {
	best, bestDepth := u, depth
	for _, c := range u.Errors {
		if got, d := deepest(c, depth+1); d > bestDepth {
			best, bestDepth = got, d
		}
	}
	return best, bestDepth
}

// PayloadError is a payload that its event type's schema refuses: Location
// is the JSON pointer of the offending value ("" for the whole payload).
type PayloadError struct {
	Location, Message string
}

func (e *PayloadError) Error() string {
	at := e.Location
	if at == "" {
		at = "/"
	}
	return fmt.Sprintf("the payload does not match its event type's schema at %s: %s", at, e.Message)
}

// Validate checks payload (JSON) against sch; a mismatch is a
// *PayloadError naming the first failing value.
func Validate(sch *jsonschema.Schema, payload []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(payload))
	if err != nil {
		return &PayloadError{Message: err.Error()}
	}
	err = sch.Validate(v)
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	out := ve.BasicOutput()
	for _, u := range out.Errors {
		if u.Error != nil {
			return &PayloadError{Location: u.InstanceLocation, Message: u.Error.String()}
		}
	}
	return &PayloadError{Location: out.InstanceLocation, Message: ve.Error()}
}
