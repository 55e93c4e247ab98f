package eventtypes_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/eventtypes"
)

func TestNamesAndPatterns(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"order.created", "a", "user_signed-up.v2", strings.Repeat("x", 100)} {
		require.True(t, eventtypes.ValidName(ok), ok)
	}
	for _, bad := range []string{"", "order created", "order/created", "ordér", "order.*", strings.Repeat("x", 101)} {
		require.False(t, eventtypes.ValidName(bad), bad)
	}
	for _, ok := range []string{"*", "order.created", "order.*", "a.b.*"} {
		require.True(t, eventtypes.ValidPattern(ok), ok)
	}
	for _, bad := range []string{"", "**", "order*", "*.created", "order.*.x", "order.**", ".*", "a b.*"} {
		require.False(t, eventtypes.ValidPattern(bad), bad)
	}
	cases := []struct {
		patterns []string
		name     string
		want     bool
	}{
		{nil, "order.created", true},
		{[]string{"*"}, "x", true},
		{[]string{"order.created"}, "order.created", true},
		{[]string{"order.created"}, "order.created.v2", false},
		{[]string{"order.*"}, "order.created", true},
		{[]string{"order.*"}, "order.item.added", true},
		{[]string{"order.*"}, "order", false},
		{[]string{"order.*"}, "orders.created", false},
		{[]string{"user.deleted", "order.*"}, "user.deleted", true},
		{[]string{"user.deleted"}, "user.created", false},
	}
	for _, c := range cases {
		require.Equal(t, c.want, eventtypes.Matches(c.patterns, c.name), "%v %s", c.patterns, c.name)
	}
}

func TestSchemas(t *testing.T) {
	t.Parallel()
	sch, err := eventtypes.Compile([]byte(`{"type":"object","required":["id"],"properties":{"id":{"type":"integer"},"items":{"type":"array","items":{"type":"string"}}}}`))
	require.NoError(t, err)
	require.NoError(t, eventtypes.Validate(sch, []byte(`{"id": 12345678901234567890, "items": ["a"]}`)))
	err = eventtypes.Validate(sch, []byte(`{"id": 1, "items": ["a", 2]}`))
	var pe *eventtypes.PayloadError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "/items/1", pe.Location)
	require.ErrorAs(t, eventtypes.Validate(sch, []byte(`{"items": []}`)), &pe)
	require.Empty(t, pe.Location, "a missing member is the object's fault")
	require.Contains(t, pe.Message, "id")

	for _, bad := range []string{`{"type":"nonsense"}`, `{"type":`, `{"$ref":"https://example.com/s.json"}`, `{"$ref":"file:///etc/passwd"}`, `[` + strings.Repeat(" ", eventtypes.MaxSchemaBytes) + `]`} {
		_, err := eventtypes.Compile([]byte(bad))
		require.ErrorIs(t, err, eventtypes.ErrInvalidSchema, "%.40s", bad)
	}
}

func TestSchemaErrorsSayWhy(t *testing.T) {
	t.Parallel()
	_, err := eventtypes.Compile([]byte(`{"type":"objectt"}`))
	require.ErrorContains(t, err, "at /type: value must be one of")
	require.NotContains(t, err.Error(), "hookd:", "no internal names")
	_, err = eventtypes.Compile([]byte(`{"$ref":"https://example.com/s.json"}`))
	require.ErrorContains(t, err, "refers to https://example.com/s.json, outside itself")
}
