package delivery

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hookd/hookd/netguard"
)

// MaxResponseBody is how much of a receiver's answer an attempt keeps.
const MaxResponseBody = 64 * 1024

// drainLimit is how much more of a long answer is read (and dropped) so the
// connection can be reused; beyond it the connection is closed.
const drainLimit = 256 * 1024

// errBlocked marks a destination refused by the safety rules at connect time.
var errBlocked = errors.New("destination blocked")

// SenderOptions configures NewSender.
type SenderOptions struct {
	// Policy decides which addresses may be dialled; its Resolver resolves
	// host names. Required.
	Policy *netguard.Policy
	// ExtraCAFile is a PEM bundle trusted in addition to the system roots.
	ExtraCAFile string
	// UserAgent is sent with every request.
	UserAgent string
	// MaxConnsPerHost bounds connections to one receiver; 0 means 64.
	MaxConnsPerHost int
}

// Sender makes delivery HTTP requests. It dials only addresses the Policy
// allows (checked on the resolved IP, at connect time), never uses proxy
// environment variables, never follows redirects, and reuses connections.
type Sender struct {
	client    *http.Client
	policy    *netguard.Policy
	userAgent string
}

// NewSender builds a Sender; the error names a bad CA file.
func NewSender(o SenderOptions) (*Sender, error) {
	if o.Policy == nil {
		return nil, errors.New("delivery: a netguard policy is required")
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if o.ExtraCAFile != "" {
		pem, err := os.ReadFile(o.ExtraCAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA bundle: %w", err)
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", o.ExtraCAFile)
		}
	}
	perHost := o.MaxConnsPerHost
	if perHost <= 0 {
		perHost = 64
	}
	s := &Sender{policy: o.Policy, userAgent: o.UserAgent}
	tr := &http.Transport{
		Proxy:                  nil, // never HTTP_PROXY: the dialler must check the target, not a proxy
		DialContext:            s.dial,
		TLSClientConfig:        &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    10 * time.Second,
		MaxIdleConns:           1024,
		MaxIdleConnsPerHost:    perHost,
		MaxConnsPerHost:        perHost,
		IdleConnTimeout:        90 * time.Second,
		ResponseHeaderTimeout:  0, // the attempt's context bounds everything
		MaxResponseHeaderBytes: 64 << 10,
		// Record the answer as it was sent: no Accept-Encoding, no
		// transparent decompression.
		DisableCompression: true,
		ForceAttemptHTTP2:  true,
	}
	s.client = &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return s, nil
}

// CloseIdle closes idle connections (at shutdown).
func (s *Sender) CloseIdle() { s.client.CloseIdleConnections() }

type traceKey struct{}

// trace collects the timings of one attempt. The transport may dial on
// another goroutine (and even finish a dial after the request took an idle
// connection), so every field is guarded by mu.
type trace struct {
	mu                       sync.Mutex
	start                    time.Time
	dnsStart, dnsDone        time.Time
	connStart, connDone      time.Time
	tlsStart, tlsDone        time.Time
	gotConn, firstByte, done time.Time
	resolvedIP               string
	reused                   bool
}

// dial resolves the host through the policy's resolver and connects to the
// first address the policy allows; a host whose every address is refused
// fails with errBlocked. This is where DNS rebinding is stopped.
func (s *Sender) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	tr, _ := ctx.Value(traceKey{}).(*trace)
	var addrs []netip.Addr
	if ip, perr := netip.ParseAddr(host); perr == nil {
		addrs = []netip.Addr{ip}
	} else {
		start := time.Now()
		res := s.policy.Resolver
		if res == nil {
			res = net.DefaultResolver
		}
		addrs, err = res.LookupNetIP(ctx, "ip", host)
		tr.set(func(t *trace) { t.dnsStart, t.dnsDone = start, time.Now() })
		if err != nil {
			return nil, fmt.Errorf("resolve %s: %w", host, err)
		}
	}
	var lastErr error
	for _, a := range addrs {
		if err := s.policy.CheckAddr(a); err != nil {
			lastErr = fmt.Errorf("%w: %s resolves to %s, which is not allowed", errBlocked, host, a.Unmap())
			continue
		}
		d := net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
		conn, err := d.DialContext(ctx, network, net.JoinHostPort(a.Unmap().String(), port))
		if err == nil {
			return conn, nil
		}
		lastErr = err
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("resolve %s: no addresses", host)
	}
	return nil, lastErr
}

// Request is one delivery to make.
type Request struct {
	URL     string
	Body    []byte
	Headers http.Header // complete: content type, user agent, signature, custom
	Timeout time.Duration
}

// Result is what one attempt observed.
type Result struct {
	Started       time.Time
	Status        int // 0 when no HTTP answer was received
	Header        http.Header
	Body          string // at most MaxResponseBody bytes, valid UTF-8
	BodyTruncated bool
	Err           error // transport failure, timeout or refusal
	Blocked       bool  // refused by the safety rules at connect time
	TimedOut      bool
	Duration      time.Duration
	DNS, Connect  *time.Duration
	TLS, TTFB     *time.Duration
	Transfer      *time.Duration
	ResolvedIP    string
	ConnReused    bool
	RequestHeader http.Header
}

// Do sends r and reports what happened. It never returns an error: every
// failure is in Result.Err.
func (s *Sender) Do(ctx context.Context, r Request) Result {
	tr := &trace{start: time.Now()}
	res := Result{Started: tr.start.UTC(), RequestHeader: r.Headers}
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	ctx = context.WithValue(ctx, traceKey{}, tr)
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		ConnectStart:      func(string, string) { tr.set(func(t *trace) { t.connStart = time.Now() }) },
		ConnectDone:       func(string, string, error) { tr.set(func(t *trace) { t.connDone = time.Now() }) },
		TLSHandshakeStart: func() { tr.set(func(t *trace) { t.tlsStart = time.Now() }) },
		TLSHandshakeDone:  func(tls.ConnectionState, error) { tr.set(func(t *trace) { t.tlsDone = time.Now() }) },
		GotConn: func(i httptrace.GotConnInfo) {
			tr.set(func(t *trace) {
				t.gotConn, t.reused = time.Now(), i.Reused
				if a, ok := i.Conn.RemoteAddr().(*net.TCPAddr); ok {
					t.resolvedIP = a.IP.String() // the address actually connected to
				}
			})
		},
		GotFirstResponseByte: func() { tr.set(func(t *trace) { t.firstByte = time.Now() }) },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		res.Err = err
		res.Duration = time.Since(tr.start)
		return res
	}
	req.Header = r.Headers.Clone()
	req.ContentLength = int64(len(r.Body))
	resp, err := s.client.Do(req)
	if err != nil {
		res.Err = err
		res.Blocked = errors.Is(err, errBlocked)
		res.TimedOut = errors.Is(err, context.DeadlineExceeded) || isTimeout(err)
		tr.fill(&res)
		return res
	}
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBody+1))
	if len(body) > MaxResponseBody {
		body = body[:MaxResponseBody]
		res.BodyTruncated = true
		// Read a bounded rest so the connection can be reused; a longer
		// answer is cut off by Close, which drops the connection.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	}
	_ = resp.Body.Close()
	tr.set(func(t *trace) { t.done = time.Now() })
	res.Status = resp.StatusCode
	res.Header = resp.Header
	res.Body = strings.ToValidUTF8(string(body), "\uFFFD")
	if readErr != nil && ctx.Err() != nil {
		// The answer's status arrived but its body did not in time: the
		// status decides the outcome; the error is kept for the record.
		res.Err = fmt.Errorf("reading the response body: %w", readErr)
	}
	tr.fill(&res)
	return res
}

// set changes the trace under its lock; a nil trace ignores it.
func (t *trace) set(f func(*trace)) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	f(t)
}

func (t *trace) fill(r *Result) {
	t.mu.Lock()
	defer t.mu.Unlock()
	end := t.done
	if end.IsZero() {
		end = time.Now()
	}
	r.Duration = end.Sub(t.start)
	r.DNS = span(t.dnsStart, t.dnsDone)
	r.Connect = span(t.connStart, t.connDone)
	r.TLS = span(t.tlsStart, t.tlsDone)
	r.TTFB = span(t.start, t.firstByte)
	r.Transfer = span(t.firstByte, t.done)
	r.ResolvedIP = t.resolvedIP
	r.ConnReused = t.reused
}

func span(a, b time.Time) *time.Duration {
	if a.IsZero() || b.IsZero() {
		return nil
	}
	d := b.Sub(a)
	return &d
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// RetryAfter reads a Retry-After header (seconds or an HTTP date) as a
// duration from now; ok is false when absent or unreadable.
func RetryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}
