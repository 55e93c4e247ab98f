package delivery

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLogErrorDropsTheURL: an endpoint URL may carry the receiver's token,
// so the logged error keeps the operation and cause but not the URL.
func TestLogErrorDropsTheURL(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("attempt: %w", &url.Error{Op: "Post", URL: "https://hooks.example.com/T0/B0/s3cr3tT0ken?sig=abc", Err: context.DeadlineExceeded})
	got := logError(err)
	require.Equal(t, "Post: context deadline exceeded", got)
	require.NotContains(t, got, "s3cr3tT0ken")
	require.Equal(t, "plain", logError(errors.New("plain")))
}
