// Command hookd-bench measures hookd end to end on this machine: it starts
// a real hookd process on PostgreSQL, a fast local receiver, and a load
// generator, and prints throughput (closed loop) and latency (open loop),
// with CPU per message in hookd and in PostgreSQL and hookd's memory.
// `make bench` runs it.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookd/hookd/secrets"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "hookd-bench:", err)
		os.Exit(1)
	}
}

type options struct {
	hookd, adminURL      string
	duration             time.Duration
	senders, rate, bytes int
	extra                string
	apiMessages          int
	apiRounds            int
	scrape               time.Duration
	fanout, eventRate    int
	fifo                 bool
	fifoKeys             int
	inbound              bool
	batch                int
	sqlite               bool
	sendersHigh          int
	sweep                bool
	overload             time.Duration
	split                bool
	masterKey            string
}

func run() error {
	var o options
	flag.StringVar(&o.hookd, "hookd", "bin/hookd", "the hookd binary to measure")
	flag.StringVar(&o.adminURL, "admin-url", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "PostgreSQL server; a fresh database is created and dropped")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each phase")
	flag.IntVar(&o.senders, "senders", 20, "closed loop: concurrent senders")
	flag.IntVar(&o.rate, "rate", 500, "open loop: messages per second")
	flag.IntVar(&o.bytes, "payload", 1024, "payload size in bytes")
	flag.StringVar(&o.extra, "hookd-flags", "", "extra flags for hookd serve, space-separated")
	flag.IntVar(&o.apiMessages, "api-messages", 0, "instead of delivery, measure the read API (metrics, logs) over this many seeded messages")
	flag.IntVar(&o.apiRounds, "api-rounds", 200, "read API: timed requests per case")
	flag.DurationVar(&o.scrape, "scrape", 5*time.Second, "scrape hookd's /metrics this often during the run, as Prometheus would (0: never)")
	flag.IntVar(&o.fanout, "fanout", 0, "instead of sends, publish events (POST /v1/events) to this many subscribed endpoints")
	flag.IntVar(&o.eventRate, "event-rate", 50, "fan-out: events per second (open loop)")
	flag.BoolVar(&o.fifo, "fifo", false, "the endpoint delivers in order (ordering fifo)")
	flag.IntVar(&o.batch, "batch", 0, "closed loop: each sender posts batches of this many sends (POST /v1/webhooks/send-batch; 0: single sends)")
	flag.IntVar(&o.fifoKeys, "fifo-keys", 0, "with --fifo: sends spread over this many ordering keys (0: none)")
	flag.IntVar(&o.sendersHigh, "senders-high", 200, "a second closed loop with this many concurrent senders, where CPU rather than commits bounds (0: skip)")
	flag.BoolVar(&o.sweep, "sweep", true, "open loops at rising shares of the closed-loop throughput: the highest rate whose delivery p99 stays within 50 ms")
	flag.DurationVar(&o.overload, "overload", 30*time.Second, "offer twice the closed-loop throughput this long and report peak memory (0: skip)")
	flag.BoolVar(&o.sqlite, "sqlite", false, "run hookd on the embedded SQLite default (a fresh file) instead of PostgreSQL")
	flag.BoolVar(&o.split, "split", false, "run hookd as two processes, --role api and --role worker (PostgreSQL only); CPU per message is theirs together")
	flag.BoolVar(&o.inbound, "inbound", false, "instead of sends, post webhooks to an inbound endpoint's ingest URL (closed loop, open loop at --rate, duplicates)")
	flag.Parse()
	o.masterKey = secrets.GenerateMasterKey("bench").String() // one for every process
	if o.split {
		if o.sqlite {
			return errors.New("--split needs PostgreSQL: api and worker refuse SQLite")
		}
		o.extra += " --role api"
	}
	if o.apiMessages > 0 {
		o.extra += " --rate-limit-default 1000000" // the bench makes thousands of requests a minute
	}
	if o.inbound {
		o.extra += " --ingest-limit-per-endpoint 0 --ingest-limit-per-source 0" // capacity, not the limits, is measured
	}

	fmt.Printf("hookd-bench: %d cores (GOMAXPROCS %d), %s payloads, %s phases\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), size(o.bytes), o.duration)
	ctx := context.Background()
	dbURL, drop, err := freshDatabase(ctx, o.adminURL)
	if o.sqlite {
		dbURL, drop, err = freshSQLite()
	}
	if err != nil {
		return err
	}
	defer drop()

	rc := newReceiver()
	defer rc.srv.Close()

	h, err := startHookd(o, dbURL)
	if err != nil {
		return err
	}
	defer h.stop()
	if o.apiMessages > 0 {
		return apiBench(ctx, h, dbURL, o.apiMessages, o.apiRounds)
	}
	if o.fanout > 0 {
		return fanoutBench(h, rc, o)
	}
	if o.inbound {
		return inboundBench(h, rc, dbURL, o)
	}
	if o.scrape > 0 {
		stop := h.scrapeEvery(o.scrape)
		defer stop()
	}
	endpointBody := `{"url":"` + rc.url + `"}`
	if o.fifo {
		endpointBody = `{"url":"` + rc.url + `","ordering":"fifo"}`
	}
	endpointID, err := h.createEndpointWith(endpointBody)
	if err != nil {
		return err
	}
	fmt.Printf("hookd pid %d at %s, receiver at %s\n\n", h.cmd.Process.Pid, h.addr, rc.url)

	// Warm up connections and caches.
	if _, err := closedLoop(h, rc, endpointID, o, time.Second); err != nil {
		return err
	}

	fmt.Printf("machine check before: %s\n\n", machineCheck())
	res, err := closedPhase(h, rc, endpointID, o, o.senders)
	if err != nil {
		return err
	}
	closedRate := float64(res.unique) / res.elapsed.Seconds()
	if o.sendersHigh > 0 {
		if _, err := closedPhase(h, rc, endpointID, o, o.sendersHigh); err != nil {
			return err
		}
	}

	open, err := openLoop(h, rc, endpointID, o)
	if err != nil {
		return err
	}
	fmt.Printf("open loop, %d messages/s for %s:\n", o.rate, o.duration)
	fmt.Printf("  sent %d, received %d (unique %d), generator late by more than 1 ms: %d\n", open.sent, open.received, open.unique, open.late)
	fmt.Printf("  send answer latency (from scheduled t0): %s\n", open.sendLat)
	fmt.Printf("  delivery latency (t0 to receiver): %s\n", open.deliveryLat)
	fmt.Printf("  hookd memory: peak RSS %s\n", rss(h.cmd.Process.Pid))
	if open.unique != open.sent {
		return errors.New("VOID: not every sent message was received")
	}
	if o.sweep {
		if err := rateSweep(h, rc, endpointID, o, closedRate); err != nil {
			return err
		}
	}
	if o.overload > 0 {
		if err := overload(h, rc, endpointID, o, closedRate); err != nil {
			return err
		}
	}
	fmt.Printf("\nmachine check after: %s\n", machineCheck())
	return nil
}

// closedPhase runs a closed loop of senders for o.duration and prints
// what it measured; a run in which a sent message never arrived is void.
func closedPhase(h *hookd, rc *receiver, endpointID string, o options, senders int) (result, error) {
	o.senders = senders
	cpu, st0 := startCPU(h), readStat()
	res, err := closedLoop(h, rc, endpointID, o, o.duration)
	if err != nil {
		return result{}, err
	}
	fmt.Printf("closed loop, %d senders:\n", senders)
	fmt.Printf("  machine: %s\n", readStat().since(st0))
	fmt.Printf("  sent %d, received %d (unique %d)\n", res.sent, res.received, res.unique)
	fmt.Printf("  end-to-end throughput: %.0f messages/s (first send to last receipt)\n", float64(res.unique)/res.elapsed.Seconds())
	fmt.Printf("  send answer latency: %s\n", res.sendLat)
	fmt.Printf("  %s\n", cpu.perMessage(res.unique))
	fmt.Printf("  hookd memory: peak RSS %s\n\n", rss(h.cmd.Process.Pid))
	if res.unique != res.sent {
		return result{}, errors.New("VOID: not every sent message was received")
	}
	return res, nil
}

// cpuMeter measures the CPU time of hookd and of PostgreSQL from its start.
type cpuMeter struct {
	pids        []int
	hookd0, pg0 time.Duration
}

func startCPU(h *hookd) cpuMeter {
	m := cpuMeter{pids: h.pids(), pg0: postgresCPU()}
	m.hookd0 = m.hookdCPU()
	return m
}

// hookdCPU is the CPU time of hookd's processes so far.
func (m cpuMeter) hookdCPU() time.Duration {
	var total time.Duration
	for _, pid := range m.pids {
		total += procCPU(pid)
	}
	return total
}

// perMessage is the CPU line of a phase that handled n messages since the
// meter started.
func (m cpuMeter) perMessage(n int) string {
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
	return fmt.Sprintf("CPU per message: hookd %.0f µs, PostgreSQL %.0f µs", per(m.hookdCPU()-m.hookd0), per(postgresCPU()-m.pg0))
}

// sweepShares are the shares of the closed-loop throughput the sweep
// offers, in order.
var sweepShares = []float64{0.25, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0}

// rateSweep offers open loops at rising shares of the closed-loop
// throughput, 5 s each, until delivery p99 exceeds 50 ms, and reports the
// highest rate that stayed within it: the headroom.
func rateSweep(h *hookd, rc *receiver, endpointID string, o options, closedRate float64) error {
	const bound = 50 * time.Millisecond
	fmt.Printf("\nrate sweep (open loop, 5s each, until delivery p99 > %s):\n", ms(bound))
	best, bestShare := 0, 0.0
	for _, share := range sweepShares {
		so := o
		so.rate, so.duration = int(share*closedRate), 5*time.Second
		res, err := openLoop(h, rc, endpointID, so)
		if err != nil {
			return err
		}
		p99 := res.deliveryLat.quantile(0.99)
		fmt.Printf("  %3.0f %% (%d/s): delivery p50 %s, p99 %s; send answer p99 %s; generator late %d\n",
			share*100, so.rate, ms(res.deliveryLat.quantile(0.5)), ms(p99), ms(res.sendLat.quantile(0.99)), res.late)
		if p99 > bound {
			break
		}
		best, bestShare = so.rate, share
	}
	fmt.Printf("  headroom: %d messages/s with delivery p99 within %s, %.0f %% of the closed loop's %.0f/s\n", best, ms(bound), bestShare*100, closedRate)
	return nil
}

// overload offers twice the closed-loop throughput for o.overload from as
// many concurrent senders as it takes, then waits for every accepted
// message, and reports hookd's peak memory during the phase (the peak is
// reset before it, where the kernel allows).
func overload(h *hookd, rc *receiver, endpointID string, o options, closedRate float64) error {
	pid := h.cmd.Process.Pid
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0o600) // resets VmHWM
	oo := o
	oo.rate, oo.duration = int(2*closedRate), o.overload
	fmt.Printf("\noverload: %d messages/s offered (twice the closed loop) for %s, up to 4096 requests in flight:\n", oo.rate, oo.duration)
	rc.reset()
	n := int(oo.duration.Seconds() * float64(oo.rate))
	var accepted, refused atomic.Int64
	var mu sync.Mutex
	var lats dist
	start := schedule(n, oo.rate, 4096, func(t0 time.Time) {
		status, _, err := h.post("/v1/webhooks/send", sendBody(o, endpointID, payload(t0, o.bytes)))
		if err != nil || status != http.StatusAccepted {
			refused.Add(1)
			return
		}
		accepted.Add(1)
		mu.Lock()
		lats = append(lats, time.Since(t0))
		mu.Unlock()
	})
	offeredFor := time.Since(start)
	fmt.Printf("  accepted %d, refused or failed %d, in %s\n", accepted.Load(), refused.Load(), offeredFor.Round(time.Millisecond))
	fmt.Printf("  send answer latency (from scheduled t0): %s\n", lats)
	fmt.Printf("  hookd memory: peak RSS %s during the phase\n", rss(pid))
	if err := rc.wait(int(accepted.Load()), 10*time.Minute); err != nil {
		return err
	}
	res := rc.snapshot(int(accepted.Load()), start)
	fmt.Printf("  every accepted message delivered, the last %s after the first was offered\n", res.elapsed.Round(time.Millisecond))
	return nil
}

func size(n int) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%d KB", n/1024)
	}
	return fmt.Sprintf("%d B", n)
}

// freshSQLite is a new SQLite database file in a directory of its own.
func freshSQLite() (string, func(), error) {
	dir, err := os.MkdirTemp("", "hookd-bench-sqlite-")
	if err != nil {
		return "", nil, err
	}
	return "sqlite:" + filepath.Join(dir, "hookd.db"), func() { _ = os.RemoveAll(dir) }, nil
}

func freshDatabase(ctx context.Context, admin string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", nil, fmt.Errorf("PostgreSQL: %w", err)
	}
	name := fmt.Sprintf("hookd_bench_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		_ = conn.Close(ctx)
		return "", nil, err
	}
	u, _ := url.Parse(admin)
	u.Path = "/" + name
	return u.String(), func() {
		_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		_ = conn.Close(context.Background())
	}, nil
}

// receiver is the fast local receiver: it notes each message id and, when
// the payload starts with {"t0":<unix ns>, the delivery latency.
type receiver struct {
	srv  *http.Server
	url  string
	mu   sync.Mutex
	seen map[string]int
	lat  []time.Duration
	// lastByT0 is when the last first delivery of each payload t0 (one
	// published event) arrived.
	lastByT0 map[int64]time.Time
	last     atomic.Int64
	n        atomic.Int64
}

var t0RE = regexp.MustCompile(`^\{"t0":(\d+)`)

func newReceiver() *receiver {
	r := &receiver{seen: map[string]int{}, lastByT0: map[int64]time.Time{}}
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	r.url = "http://" + ln.Addr().String() + "/bench"
	r.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		now := time.Now()
		var lat time.Duration = -1
		var t0 int64
		if m := t0RE.FindSubmatch(body); m != nil {
			t0, _ = strconv.ParseInt(string(m[1]), 10, 64)
			lat = now.Sub(time.Unix(0, t0))
		}
		r.mu.Lock()
		id := req.Header.Get("X-Webhook-Id")
		if r.seen[id] == 0 && lat >= 0 {
			if now.After(r.lastByT0[t0]) {
				r.lastByT0[t0] = now
			}
		}
		r.seen[id]++
		if lat >= 0 {
			r.lat = append(r.lat, lat)
		}
		r.mu.Unlock()
		r.last.Store(now.UnixNano())
		r.n.Add(1)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r
}

func (r *receiver) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen, r.lat, r.lastByT0 = map[string]int{}, nil, map[int64]time.Time{}
	r.n.Store(0)
}

type hookd struct {
	cmd    *exec.Cmd
	worker *exec.Cmd // with --split: the --role worker process (cmd is --role api)
	addr   string
	key    string
	client *http.Client
}

// pids are hookd's processes.
func (h *hookd) pids() []int {
	if h.worker != nil {
		return []int{h.cmd.Process.Pid, h.worker.Process.Pid}
	}
	return []int{h.cmd.Process.Pid}
}

func serveArgs(o options, dbURL, extra string) []string {
	args := []string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json", "--log-level", "info",
		"--database-url", dbURL, "--master-key", o.masterKey,
		"--data-dir", filepath.Join(os.TempDir(), "hookd-bench"),
		"--dev-allow-http", "--dev-allow-cidrs", "127.0.0.1/32",
		"--workers", "128", "--endpoint-concurrency", "128", "--db-max-conns", "50"}
	return append(args, strings.Fields(extra)...)
}

// startWorker starts the --role worker process of a --split run and waits
// until it serves.
func startWorker(o options, dbURL string) (*exec.Cmd, error) {
	cmd := exec.CommandContext(context.Background(), o.hookd, serveArgs(o, dbURL, strings.Replace(o.extra, "--role api", "--role worker", 1))...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", o.hookd, err)
	}
	serving := make(chan string, 1)
	go watchLog(stderr, serving)
	select {
	case <-serving:
		return cmd, nil
	case <-time.After(60 * time.Second):
		stopProcess(cmd)
		return nil, errors.New("the worker process did not start")
	}
}

func startHookd(o options, dbURL string) (*hookd, error) {
	h, err := startAPI(o, dbURL)
	if err != nil || !o.split {
		return h, err
	}
	if h.worker, err = startWorker(o, dbURL); err != nil {
		h.stop()
		return nil, err
	}
	return h, nil
}

func startAPI(o options, dbURL string) (*hookd, error) {
	cmd := exec.CommandContext(context.Background(), o.hookd, serveArgs(o, dbURL, o.extra)...)
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w (run make build first)", o.hookd, err)
	}
	h := &hookd{cmd: cmd, client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
	keyc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		re := regexp.MustCompile(`hk_live_[A-Za-z0-9]{32}`)
		for sc.Scan() {
			if k := re.FindString(sc.Text()); k != "" {
				keyc <- k
			}
		}
	}()
	addrc := make(chan string, 1)
	go watchLog(stderr, addrc)
	for h.key == "" || h.addr == "" {
		select {
		case h.key = <-keyc:
		case h.addr = <-addrc:
		case <-time.After(60 * time.Second):
			h.stop()
			return nil, errors.New("hookd did not start (no API key or address printed)")
		}
	}
	return h, nil
}

var servingLine = regexp.MustCompile(`"msg":"hookd is serving".*"addr":"([0-9.:]+)"`)

// watchLog reads a hookd process's log: it sends the address on serving
// once the process serves, and passes warnings and errors on to stderr.
func watchLog(log io.Reader, serving chan<- string) {
	sc := bufio.NewScanner(log)
	for sc.Scan() {
		if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
			select {
			case serving <- m[1]:
			default: // told already
			}
		} else if strings.Contains(sc.Text(), `"level":"ERROR"`) || strings.Contains(sc.Text(), `"level":"WARN"`) {
			fmt.Fprintln(os.Stderr, sc.Text())
		}
	}
}

func (h *hookd) stop() {
	stopProcess(h.cmd)
	if h.worker != nil {
		stopProcess(h.worker)
	}
}

func stopProcess(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
	}
}

func (h *hookd) post(path, body string) (int, []byte, error) {
	return h.do(http.MethodPost, path, strings.NewReader(body))
}

func (h *hookd) get(path string) (int, []byte, error) { return h.do(http.MethodGet, path, nil) }

// do sends an authenticated API request and reads the whole answer.
func (h *hookd) do(method, path string, body io.Reader) (int, []byte, error) {
	req, _ := http.NewRequestWithContext(context.Background(), method, "http://"+h.addr+path, body)
	req.Header.Set("Authorization", "Bearer "+h.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (h *hookd) createEndpoint(u string) (string, error) {
	return h.createEndpointWith(`{"url":"` + u + `"}`)
}

func (h *hookd) createEndpointWith(body string) (string, error) {
	status, b, err := h.post("/v1/endpoints", body)
	if err != nil || status != http.StatusCreated {
		return "", fmt.Errorf("create endpoint: %d %s: %w", status, b, err)
	}
	var r struct{ Data struct{ ID string } }
	return r.Data.ID, json.Unmarshal(b, &r)
}

// sendSeq numbers the sends, to spread them over the ordering keys.
var sendSeq atomic.Int64

// sendBody is a send's JSON; with --fifo-keys it names one of that many
// ordering keys, in turn.
func sendBody(o options, endpointID, payload string) string {
	if o.fifoKeys > 0 {
		return fmt.Sprintf(`{"endpoint_id":"%s","payload":%s,"ordering_key":"k%d"}`, endpointID, payload, sendSeq.Add(1)%int64(o.fifoKeys))
	}
	return `{"endpoint_id":"` + endpointID + `","payload":` + payload + `}`
}

func payload(t0 time.Time, n int) string {
	head := fmt.Sprintf(`{"t0":%d,"pad":"`, t0.UnixNano())
	pad := n - len(head) - 2
	if pad < 0 {
		pad = 0
	}
	return head + strings.Repeat("x", pad) + `"}`
}

type result struct {
	sent, received, unique int
	late                   int
	elapsed                time.Duration
	sendLat, deliveryLat   dist
}

// dist summarises latencies.
type dist []time.Duration

func (d dist) String() string {
	if len(d) == 0 {
		return "no samples"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	p := func(q float64) time.Duration { return s[int(q*float64(len(s)-1))] }
	return fmt.Sprintf("p50 %s, p90 %s, p99 %s, max %s (n=%d)", ms(p(0.5)), ms(p(0.9)), ms(p(0.99)), ms(s[len(s)-1]), len(s))
}

// quantile is the q-quantile of d (0 when d is empty).
func (d dist) quantile(q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func (r *receiver) wait(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		r.mu.Lock()
		got := len(r.seen)
		r.mu.Unlock()
		if got >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d messages arrived", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *receiver) snapshot(sent int, start time.Time) result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return result{sent: sent, received: int(r.n.Load()), unique: len(r.seen), deliveryLat: slices.Clone(r.lat),
		elapsed: time.Unix(0, r.last.Load()).Sub(start)}
}

func closedLoop(h *hookd, rc *receiver, endpointID string, o options, d time.Duration) (result, error) {
	rc.reset()
	start := time.Now()
	stopAt := start.Add(d)
	var sent atomic.Int64
	var mu sync.Mutex
	var lats dist
	var firstErr error
	var wg sync.WaitGroup
	for range o.senders {
		wg.Go(func() {
			var local dist
			for time.Now().Before(stopAt) {
				t := time.Now()
				path, body, want, n := "/v1/webhooks/send", sendBody(o, endpointID, payload(t, o.bytes)), http.StatusAccepted, 1
				if o.batch > 0 {
					items := make([]string, o.batch)
					for i := range items {
						items[i] = sendBody(o, endpointID, payload(t, o.bytes))
					}
					path, body, want, n = "/v1/webhooks/send-batch", `{"messages":[`+strings.Join(items, ",")+`]}`, http.StatusOK, o.batch
				}
				status, b, err := h.post(path, body)
				if err != nil || status != want {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("send: %d %s: %w", status, b, err)
					}
					mu.Unlock()
					return
				}
				local = append(local, time.Since(t))
				sent.Add(int64(n))
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if firstErr != nil {
		return result{}, firstErr
	}
	if err := rc.wait(int(sent.Load()), 120*time.Second); err != nil {
		return result{}, err
	}
	res := rc.snapshot(int(sent.Load()), start)
	res.sendLat = lats
	return res, nil
}

func openLoop(h *hookd, rc *receiver, endpointID string, o options) (result, error) {
	rc.reset()
	n := int(o.duration.Seconds() * float64(o.rate))
	var mu sync.Mutex
	var lats dist
	var late, failed atomic.Int64
	start := schedule(n, o.rate, 64, func(t0 time.Time) {
		if time.Since(t0) > time.Millisecond {
			late.Add(1)
		}
		status, _, err := h.post("/v1/webhooks/send", sendBody(o, endpointID, payload(t0, o.bytes)))
		lat := time.Since(t0)
		if err != nil || status != http.StatusAccepted {
			failed.Add(1)
			return
		}
		mu.Lock()
		lats = append(lats, lat)
		mu.Unlock()
	})
	if failed.Load() > 0 {
		return result{}, fmt.Errorf("%d sends failed", failed.Load())
	}
	if err := rc.wait(n, 60*time.Second); err != nil {
		return result{}, err
	}
	res := rc.snapshot(n, start)
	res.sendLat, res.late = lats, int(late.Load())
	return res, nil
}

// schedule runs do for n times t0, rate per second from 50 ms after now,
// on workers goroutines (an open loop: a late answer does not delay the
// next send), and returns the first t0 after they all returned.
func schedule(n, rate, workers int, do func(t0 time.Time)) time.Time {
	interval := time.Second / time.Duration(rate)
	start := time.Now().Add(50 * time.Millisecond)
	jobs := make(chan time.Time, n)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for t0 := range jobs {
				do(t0)
			}
		})
	}
	for i := range n {
		t0 := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(t0))
		jobs <- t0
	}
	close(jobs)
	wg.Wait()
	return start
}

// procCPU is a process's user+system CPU time so far.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndex(s, ")")+2:])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+k) * time.Second / 100 // USER_HZ = 100
}

// postgresCPU sums the CPU time of every postgres process.
func postgresCPU() time.Duration {
	var total time.Duration
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.HasPrefix(string(comm), "postgres") {
			total += procCPU(pid)
		}
	}
	return total
}

func rss(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.Atoi(strings.Fields(line)[1])
			return fmt.Sprintf("%d MB", kb/1024)
		}
	}
	return "?"
}

// scrapeEvery GETs /metrics every d until stop is called, as a Prometheus
// server would; with metrics off (404) it does nothing more.
func (h *hookd) scrapeEvery(d time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+h.addr+"/metrics", nil)
			resp, err := h.client.Do(req)
			if err != nil {
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusNotFound {
				return
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// machineCheck times a fixed single-core job (SHA-256 over 64 MiB): on a
// shared host a busy neighbour slows every number this tool prints, and this
// line shows when that happened.
func machineCheck() string {
	buf := make([]byte, 1<<20)
	start := time.Now()
	for range 64 {
		sha256.Sum256(buf)
	}
	mbps := 64 / time.Since(start).Seconds()
	return fmt.Sprintf("SHA-256 on one core %.0f MB/s, %s", mbps, fsyncCheck())
}

// fsyncCheck times 8 KB writes each followed by fdatasync, as a commit's
// WAL flush does, in the temporary directory.
func fsyncCheck() string {
	f, err := os.CreateTemp("", "hookd-bench-fsync")
	if err != nil {
		return "fsync not measured: " + err.Error()
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 8192)
	const n = 50
	start := time.Now()
	for i := range n {
		if _, err := f.WriteAt(buf, int64(i%8)*8192); err != nil {
			return "fsync not measured: " + err.Error()
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return "fsync not measured: " + err.Error()
		}
	}
	return fmt.Sprintf("write+fdatasync %.2f ms (%s)", float64(time.Since(start).Microseconds())/1000/n, os.TempDir())
}

// cpuStat is the machine-wide CPU time from /proc/stat, in clock ticks.
type cpuStat struct{ busy, idle, steal uint64 }

func readStat() cpuStat {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuStat{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var st cpuStat
	for i := 1; i < len(f) && i <= 8; i++ {
		v, _ := strconv.ParseUint(f[i], 10, 64)
		switch i {
		case 4, 5:
			st.idle += v
		case 8:
			st.steal += v
		default:
			st.busy += v
		}
	}
	return st
}

// since says how busy the machine was between two readings: the share of
// CPU time in use, and the share the hypervisor gave to other guests (steal).
func (s cpuStat) since(before cpuStat) string {
	busy, idle, steal := s.busy-before.busy, s.idle-before.idle, s.steal-before.steal
	total := busy + idle + steal
	if total == 0 {
		return "no /proc/stat"
	}
	return fmt.Sprintf("CPU %.0f %% busy, %.1f %% stolen by the hypervisor", 100*float64(busy)/float64(total), 100*float64(steal)/float64(total))
}
