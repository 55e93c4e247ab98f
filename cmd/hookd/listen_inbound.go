package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// inboundListener is `hookd listen --inbound`: it long-polls an inbound
// endpoint's listen URL and prints (and forwards) what arrives.
type inboundListener struct {
	api, key, id, forwardTo string
	out, errOut             io.Writer
}

// listenMessage is one message of a listen answer.
type listenMessage struct {
	MessageID    string            `json:"message_id"`
	ContentType  string            `json:"content_type"`
	Headers      map[string]string `json:"headers"`
	Body         json.RawMessage   `json:"body"`
	BodyEncoding *string           `json:"body_encoding"`
	SizeBytes    int               `json:"size_bytes"`
	ReceivedAt   time.Time         `json:"received_at"`
}

// forwardClient posts to --forward-to: bounded, and adding no
// Accept-Encoding of its own (the webhook's headers are sent as received).
var forwardClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableCompression: true, Proxy: http.ProxyFromEnvironment}}

// listenRetry is how long the listener waits after a failed poll.
const listenRetry = 2 * time.Second

func listenInbound(ctx context.Context, l inboundListener, ready chan<- string) error {
	client := &http.Client{Timeout: 40 * time.Second} // above the server's 25 s wait
	fmt.Fprintf(l.errOut, "hookd listen: waiting for webhooks to inbound endpoint %s at %s", l.id, l.api)
	if l.forwardTo != "" {
		fmt.Fprintf(l.errOut, ", forwarding to %s", l.forwardTo)
	}
	fmt.Fprintln(l.errOut)
	// The first call answers at once with the cursor of now: webhooks
	// from then on are shown.
	_, cursor, err := l.poll(ctx, client, "", "0")
	if err != nil {
		return err
	}
	if ready != nil {
		ready <- l.api
	}
	for ctx.Err() == nil {
		msgs, next, err := l.poll(ctx, client, cursor, "")
		if err != nil && ctx.Err() == nil {
			var fatal *fatalListenError
			if errors.As(err, &fatal) {
				return err
			}
			fmt.Fprintf(l.errOut, "hookd listen: %v; retrying\n", err)
			select {
			case <-ctx.Done():
			case <-time.After(listenRetry):
			}
			continue
		}
		// (A stop, Ctrl-C, cuts the poll in flight: the loop ends.)
		for _, m := range msgs {
			l.show(ctx, m)
		}
		cursor = next
	}
	return nil
}

// fatalListenError ends the listener (a wrong key or endpoint).
type fatalListenError struct{ msg string }

func (e *fatalListenError) Error() string { return e.msg }

func (l inboundListener) poll(ctx context.Context, client *http.Client, cursor, wait string) ([]listenMessage, string, error) {
	q := url.Values{}
	if cursor != "" {
		q.Set("after", cursor)
	}
	if wait != "" {
		q.Set("wait", wait)
	}
	u := l.api + "/v1/inbound-endpoints/" + url.PathEscape(l.id) + "/listen?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", &fatalListenError{err.Error()}
	}
	req.Header.Set("Authorization", "Bearer "+l.key)
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusNotFound {
		return nil, "", &fatalListenError{fmt.Sprintf("hookd answered %d: %s (check --api-key and --inbound)", resp.StatusCode, bytes.TrimSpace(raw))}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("hookd answered %d: %s", resp.StatusCode, bytes.TrimSpace(raw))
	}
	var out struct {
		Data []listenMessage `json:"data"`
		Meta struct {
			NextCursor string `json:"next_cursor"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, "", fmt.Errorf("the listen answer does not decode: %w", err)
	}
	return out.Data, out.Meta.NextCursor, nil
}

// body is the message's exact bytes.
func (m listenMessage) body() ([]byte, error) {
	if m.BodyEncoding != nil && *m.BodyEncoding == "base64" {
		var s string
		if err := json.Unmarshal(m.Body, &s); err != nil {
			return nil, err
		}
		return base64.StdEncoding.DecodeString(s)
	}
	return m.Body, nil
}

func (l inboundListener) show(ctx context.Context, m listenMessage) {
	body, err := m.body()
	fmt.Fprintf(l.out, "── %s webhook %s (%s, %d bytes)\n", m.ReceivedAt.Local().Format("15:04:05.000"), m.MessageID, m.ContentType, m.SizeBytes)
	h := http.Header{}
	for k, v := range m.Headers {
		h.Set(k, v)
	}
	printHeaders(l.out, h)
	if err != nil {
		fmt.Fprintf(l.out, "   body: does not decode: %v\n", err)
		return
	}
	fmt.Fprintf(l.out, "   body: %s\n", printable(body))
	if l.forwardTo == "" {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.forwardTo, bytes.NewReader(body))
	if err != nil {
		fmt.Fprintf(l.out, "   forward: %v\n", err)
		return
	}
	for k, v := range m.Headers {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := forwardClient.Do(req)
	if err != nil {
		fmt.Fprintf(l.out, "   forwarded to %s: %v\n", l.forwardTo, err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	fmt.Fprintf(l.out, "   forwarded to %s: %d in %d ms\n", l.forwardTo, resp.StatusCode, time.Since(start).Milliseconds())
}
