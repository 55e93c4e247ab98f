package customheaders

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, Validate(nil))
	require.NoError(t, Validate(map[string]string{"X-Tenant": "acme", "User-Agent-Extra": "x", "Cookie": "a=b"}))

	many := map[string]string{}
	for i := range 51 {
		many[fmt.Sprintf("X-H%d", i)] = "v"
	}
	fifty := map[string]string{}
	for i := range 50 {
		fifty[fmt.Sprintf("X-H%d", i)] = "v"
	}
	require.NoError(t, Validate(fifty))

	bad := []map[string]string{
		many,
		{"X-Big": strings.Repeat("a", 8*1024)},
		{"Host": "evil"},
		{"authorization": "Bearer x"},
		{"Content-Length": "1"},
		{"Content-Type": "text/plain"},
		{"Transfer-Encoding": "chunked"},
		{"Connection": "close"},
		{"X-Webhook-Signature": "sha256=00"},
		{"x-webhook-id": "1"},
		{"Webhook-Id": "1"},
		{"Proxy-Authorization": "x"},
		{"Bad Name": "x"},
		{"": "x"},
		{"X-Ok": "line\r\nInjected: yes"},
		{"X-Ok": "nul\x00"},
		{"X-A": "1", "x-a": "2"},
		{"Content-Encoding": "gzip"},
		{"Expect": "100-continue"},
		{"user-agent": "mine"},
	}
	for _, h := range bad {
		require.ErrorIs(t, Validate(h), ErrInvalid, "%v", h)
	}
	// 8 KiB exactly is fine.
	require.NoError(t, Validate(map[string]string{"X-Big": strings.Repeat("a", 8*1024-5)}))
}
