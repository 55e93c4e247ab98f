package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/hookd/hookd/internal/poll"
	"github.com/hookd/hookd/internal/syncbuf"
	"github.com/hookd/hookd/internal/testdb"
	"github.com/hookd/hookd/secrets"
)

// child is hookd running as a separate process (this test binary
// re-entering main).
type child struct {
	cmd    *exec.Cmd
	addr   string
	stdout *syncbuf.Buffer
	stderr *syncbuf.Buffer
	exited chan struct{}
}

// startChild starts `hookd serve` with args and waits until it listens.
func startChild(t *testing.T, args ...string) *child {
	t.Helper()
	c := &child{stdout: &syncbuf.Buffer{}, stderr: &syncbuf.Buffer{}, exited: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0], "-test.run=^$")
	c.cmd.Env = append(os.Environ(), "HOOKD_TEST_RUN_MAIN=1",
		"HOOKD_TEST_ARGS="+strings.Join(append([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json"}, args...), " "))
	c.cmd.Stdout = c.stdout
	pipe, err := c.cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, c.cmd.Start())
	addrs := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		re := regexp.MustCompile(`"msg":"hookd is serving".*"addr":"([0-9.:]+)"`)
		for sc.Scan() {
			line := sc.Text()
			_, _ = c.stderr.Write([]byte(line + "\n"))
			if m := re.FindStringSubmatch(line); m != nil {
				addrs <- m[1]
			}
		}
	}()
	go func() { _ = c.cmd.Wait(); close(c.exited) }()
	t.Cleanup(func() { c.kill() })
	select {
	case c.addr = <-addrs:
	case <-c.exited:
		t.Fatalf("hookd exited early:\n%s", c.stderr)
	case <-time.After(patience):
		t.Fatalf("hookd did not start:\n%s", c.stderr)
	}
	return c
}

func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
}

func (c *child) url(path string) string { return "http://" + c.addr + path }

// deliveries counts the "delivery attempt" log lines of this process
// (successful attempts log at debug level).
func (c *child) deliveries() int { return strings.Count(c.stderr.String(), `"msg":"delivery attempt"`) }

// countingReceiver counts deliveries per X-Webhook-Id and answers 200 after
// a few milliseconds (a receiver's work, which keeps several attempts in
// flight at once).
type countingReceiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	byID    map[string]int
	total   atomic.Int64
	arrived atomic.Int64
	// Requests from the holdFrom-th on (if set) wait until hold is closed;
	// one whose sender went away meanwhile is not counted.
	holdFrom int64
	hold     chan struct{}
}

func newCountingReceiver(t *testing.T, delay time.Duration) *countingReceiver {
	t.Helper()
	r := &countingReceiver{byID: map[string]int{}, hold: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		if n := r.arrived.Add(1); r.holdFrom > 0 && n >= r.holdFrom {
			select {
			case <-r.hold:
			case <-req.Context().Done():
				return
			}
		}
		// The receiver's work, so that deliveries take time and several
		// workers (and processes) share them. Nothing waits on this delay
		// or races it: every check waits on a condition (poll.Until, hold).
		// A loaded machine only makes it longer, which slows deliveries and
		// spreads them further, never the other way.
		time.Sleep(delay)
		r.mu.Lock()
		r.byID[req.Header.Get("X-Webhook-Id")]++
		r.mu.Unlock()
		r.total.Add(1)
	}))
	t.Cleanup(r.srv.Close)
	t.Cleanup(r.release) // before Close (cleanups run last first): held requests end
	return r
}

// release lets held requests go on; calling it again does nothing.
func (r *countingReceiver) release() {
	select {
	case <-r.hold:
	default:
		close(r.hold)
	}
}

func (r *countingReceiver) counts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.byID))
	for k, v := range r.byID {
		out[k] = v
	}
	return out
}

// api calls hookd's API with the key and decodes data into out (if not nil).
func api(t *testing.T, method, url, key, body string, out any) int {
	t.Helper()
	// Called from sending goroutines too: failures are reported with
	// t.Errorf, which is safe there (require's FailNow is not).
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Errorf("request %s %s: %v", method, url, err)
		return 0
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Logf("%s %s: %v", method, url, err)
		return 0
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		var env struct {
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(raw, &env); err != nil {
			t.Errorf("answer of %s %s: %v: %s", method, url, err, raw)
			return 0
		}
		if err := json.Unmarshal(env.Data, out); err != nil {
			t.Errorf("data of %s %s: %v: %s", method, url, err, raw)
			return 0
		}
	}
	return resp.StatusCode
}

// patience bounds the condition waits of these tests: a passing test never
// waits it out; it only says how long a failing one takes to fail.
const patience = time.Minute

// drainDelay is the --drain-delay of the tests that watch /readyz turn 503
// after a stop: the window they must look in, long enough for a loaded
// machine.
const drainDelay = 10 * time.Second

// deliveryArgs are the serve flags of the process tests. Their 3 s
// --rescue-after lets a crash test see its messages rescued soon; tests
// that count deliveries exactly once and kill nothing add steadyLease.
func deliveryArgs(dbURL string, key secrets.MasterKey, dataDir string) []string {
	return []string{"--database-url", dbURL, "--master-key", key.String(), "--data-dir", dataDir,
		"--dev-allow-http", "--dev-allow-cidrs", "127.0.0.1/32", "--attempt-timeout", "2s", "--rescue-after", "3s",
		"--poll-interval", "50ms", "--workers", "32", "--endpoint-concurrency", "16"}
}

// steadyLease overrides deliveryArgs' --rescue-after with the default: a
// process that a loaded machine stalls for more than 3 s (its lease
// heartbeat late) has its messages rescued by the other, which delivers
// them again — at least once is the promise, but then a test counting
// exactly-once deliveries fails for the machine's sake, not hookd's.
var steadyLease = []string{"--rescue-after", "1m"}

// sendAll sends n messages to the endpoint from 20 goroutines until stop is
// closed, taking turns between the bases, and returns the ids hookd
// accepted (202).
func sendAll(t *testing.T, bases []string, key, endpointID string, n int, stop <-chan struct{}) []string {
	t.Helper()
	var mu sync.Mutex
	var accepted []string
	refused := map[int]int{} // status → count (0: no answer)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				select {
				case <-stop:
					return
				default:
				}
				var res struct {
					MessageID string `json:"message_id"`
				}
				body := fmt.Sprintf(`{"endpoint_id":"%s","payload":{"i":%d,"pad":"%s"}}`, endpointID, i, strings.Repeat("x", 900))
				status := api(t, http.MethodPost, bases[int(i)%len(bases)]+"/v1/webhooks/send", key, body, &res)
				mu.Lock()
				if status == http.StatusAccepted {
					accepted = append(accepted, res.MessageID)
				} else {
					refused[status]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(refused) > 0 {
		t.Logf("sends not accepted, by status: %v", refused)
	}
	return accepted
}

// warnings are the WARN and ERROR lines of a log.
func warnings(log string) string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, `"level":"WARN"`) || strings.Contains(line, `"level":"ERROR"`) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// inspections holds each test's connection to its database (inspection).
var inspections sync.Map // inspectionKey → *pgx.Conn

type inspectionKey struct {
	t     *testing.T
	dbURL string
}

// inspection is the test's one connection to its database, for looking at
// rows from the test goroutine: opened on first use and kept until the test
// ends. Tests open it before they start hookd: the server's 100 connections
// are shared by every test run on the machine, and a connection opened per
// look, every few milliseconds while polling, churned them (a run in
// parallel with others was refused one: "too many clients").
func inspection(t *testing.T, dbURL string) *pgx.Conn {
	t.Helper()
	k := inspectionKey{t, dbURL}
	if c, ok := inspections.Load(k); ok {
		return c.(*pgx.Conn)
	}
	conn, err := pgx.Connect(context.Background(), dbURL)
	require.NoError(t, err)
	inspections.Store(k, conn)
	t.Cleanup(func() {
		inspections.Delete(k)
		_ = conn.Close(context.Background())
	})
	return conn
}

func countStatus(t *testing.T, dbURL, where string) int {
	t.Helper()
	var n int
	require.NoError(t, inspection(t, dbURL).QueryRow(context.Background(), "SELECT count(*) FROM messages WHERE "+where).Scan(&n))
	return n
}

// TestCrashLosesNothing SIGKILLs hookd while it delivers 2,000 messages,
// starts it again, and checks that every accepted message reaches the
// receiver and ends succeeded, with duplicates only among the messages that
// were in flight at the kill.
func TestCrashLosesNothing(t *testing.T) {
	t.Parallel()
	dbURL := testdb.NewPostgres(t)
	inspection(t, dbURL)
	key := secrets.GenerateMasterKey("crash")
	dir := t.TempDir()
	rc := newCountingReceiver(t, 3*time.Millisecond)
	// Deliveries after the 300th are held until the kill, so the kill
	// certainly comes part-way through (however fast or slow the machine)
	// and finds attempts in flight.
	rc.holdFrom = 301

	first := startChild(t, deliveryArgs(dbURL, key, dir)...)
	apiKey := keyRE.FindString(first.stdout.String())
	require.NotEmpty(t, apiKey)
	var ep struct{ ID string }
	require.Equal(t, http.StatusCreated, api(t, http.MethodPost, first.url("/v1/endpoints"), apiKey, `{"url":"`+rc.srv.URL+`/crash"}`, &ep))

	// Accept all 2,000 behind a pause, then let them flow and kill hookd
	// part-way through.
	require.Equal(t, http.StatusOK, api(t, http.MethodPost, first.url("/v1/endpoints/"+ep.ID+"/pause"), apiKey, "", nil))
	accepted := sendAll(t, []string{"http://" + first.addr}, apiKey, ep.ID, 2000, nil)
	require.Len(t, accepted, 2000)
	require.Equal(t, http.StatusOK, api(t, http.MethodPost, first.url("/v1/endpoints/"+ep.ID+"/resume"), apiKey, "", nil))
	poll.Until(t, patience, func() bool { return rc.total.Load() >= 300 && rc.arrived.Load() > 300 }, "the deliveries did not start")
	first.kill()
	atKill := rc.total.Load()
	inFlight := countStatus(t, dbURL, "status = 'delivering'")
	rc.release()
	t.Logf("at the kill: %d accepted, %d received, %d delivering", len(accepted), atKill, inFlight)
	require.Equal(t, int64(300), atKill, "the kill came part-way: the held deliveries were not received")
	require.Positive(t, inFlight, "attempts were in flight at the kill")

	second := startChild(t, deliveryArgs(dbURL, key, dir)...)
	poll.Until(t, 3*patience, func() bool { return countStatus(t, dbURL, "status <> 'succeeded'") == 0 },
		func() string { return "messages left undelivered:\n" + second.stderr.String() })
	counts := rc.counts()
	dups := 0
	for _, id := range accepted {
		require.GreaterOrEqual(t, counts[id], 1, "accepted message %s never arrived", id)
		dups += counts[id] - 1
	}
	t.Logf("after the restart: %d duplicates (at most %d allowed)", dups, inFlight)
	require.LessOrEqual(t, dups, inFlight)
	require.Equal(t, len(accepted), countStatus(t, dbURL, "status = 'succeeded'"))
}

// TestTwoProcessesShareTheWork runs two hookd processes on one database:
// each delivers at least 20% of 2,000 messages and none is delivered twice.
func TestTwoProcessesShareTheWork(t *testing.T) {
	t.Parallel()
	dbURL := testdb.NewPostgres(t)
	inspection(t, dbURL)
	key := secrets.GenerateMasterKey("two")
	rc := newCountingReceiver(t, 2*time.Millisecond)
	// Debug level: each process logs every attempt it makes, successes too.
	a := startChild(t, append(append(deliveryArgs(dbURL, key, t.TempDir()), steadyLease...), "--log-level", "debug")...)
	apiKey := keyRE.FindString(a.stdout.String())
	b := startChild(t, append(append(deliveryArgs(dbURL, key, t.TempDir()), steadyLease...), "--log-level", "debug")...)
	require.Contains(t, a.stderr.String(), `"send_handoff":true`, "role all on PostgreSQL hands sends to its workers")
	var ep struct{ ID string }
	require.Equal(t, http.StatusCreated, api(t, http.MethodPost, a.url("/v1/endpoints"), apiKey, `{"url":"`+rc.srv.URL+`/two"}`, &ep))

	// Half the sends go to each process.
	var accepted []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range []*child{a, b} {
		wg.Go(func() {
			ids := sendAll(t, []string{"http://" + c.addr}, apiKey, ep.ID, 1000, nil)
			mu.Lock()
			accepted = append(accepted, ids...)
			mu.Unlock()
		})
	}
	wg.Wait()
	require.Len(t, accepted, 2000)
	poll.Until(t, 2*patience, func() bool { return countStatus(t, dbURL, "status <> 'succeeded'") == 0 }, func() string {
		return fmt.Sprintf("messages left undelivered: %d queued, %d delivering, %d pending_retry, %d received\nA:\n%s\nB:\n%s",
			countStatus(t, dbURL, "status = 'queued'"), countStatus(t, dbURL, "status = 'delivering'"), countStatus(t, dbURL, "status = 'pending_retry'"),
			rc.total.Load(), warnings(a.stderr.String()), warnings(b.stderr.String()))
	})
	for id, n := range rc.counts() {
		if n != 1 {
			for _, c := range []*child{a, b} {
				for _, line := range strings.Split(c.stderr.String(), "\n") {
					if strings.Contains(line, id) || strings.Contains(line, "rescued") || strings.Contains(line, "WARN") || strings.Contains(line, "ERROR") {
						t.Logf("%p: %s", c, line)
					}
				}
			}
		}
		require.Equal(t, 1, n, "message %s delivered %d times", id, n)
	}
	require.Len(t, rc.counts(), 2000)
	// A process logs an attempt just after its record commits: the last
	// lines may still be on their way.
	poll.Until(t, patience, func() bool { return a.deliveries()+b.deliveries() >= 2000 }, "attempts not logged")
	da, db := a.deliveries(), b.deliveries()
	t.Logf("process A delivered %d, process B %d", da, db)
	require.Equal(t, 2000, da+db)
	require.GreaterOrEqual(t, da, 400)
	require.GreaterOrEqual(t, db, 400)
}

// TestScaleOutAPIAndWorkerProcesses runs two --role api and two --role
// worker processes on one PostgreSQL database as one service: 400 sends
// alternate between the api processes; every message arrives exactly once,
// each worker delivers at least 20%, the api processes deliver none and run
// no engine (they never LISTEN for due messages), every message reads
// succeeded through either api, and a worker's /readyz answers 200, then
// 503 after SIGTERM while it drains.
func TestScaleOutAPIAndWorkerProcesses(t *testing.T) {
	t.Parallel()
	const total = 400
	dbURL := testdb.NewPostgres(t)
	inspection(t, dbURL)
	key := secrets.GenerateMasterKey("scale")
	rc := newCountingReceiver(t, 3*time.Millisecond)
	start := func(role string, extra ...string) *child {
		args := append(append(deliveryArgs(dbURL, key, t.TempDir()), steadyLease...), "--role", role, "--log-level", "debug")
		return startChild(t, append(args, extra...)...)
	}
	api1 := start("api")
	apiKey := keyRE.FindString(api1.stdout.String())
	require.NotEmpty(t, apiKey)
	api2 := start("api")
	// The drain delay is the window in which the test must see /readyz at
	// 503 after SIGTERM: long enough for a loaded machine to look.
	w1 := start("worker", "--drain-delay", drainDelay.String())
	w2 := start("worker")
	apis := []*child{api1, api2}
	require.Equal(t, http.StatusOK, get(t, w1.url("/readyz"), ""))
	require.Equal(t, http.StatusNotFound, get(t, w1.url("/v1/endpoints"), apiKey), "a worker serves no API")
	for _, c := range []*child{api1, w1} {
		require.Contains(t, c.stderr.String(), `"send_handoff":true`, "api processes hand messages to worker processes")
	}
	// The api processes hand messages over only to workers they heard
	// from; until then, the workers claim.
	for _, a := range []*child{api1, api2} {
		poll.Until(t, patience, func() bool {
			return strings.Count(a.stderr.String(), "a worker process takes this process's new messages") >= 2
		}, "the api processes hear of both workers")
	}

	var ep struct{ ID string }
	require.Equal(t, http.StatusCreated, api(t, http.MethodPost, api1.url("/v1/endpoints"), apiKey, `{"url":"`+rc.srv.URL+`/scale"}`, &ep))
	began := time.Now()
	ids := sendAll(t, []string{"http://" + api1.addr, "http://" + api2.addr}, apiKey, ep.ID, total, nil)
	require.Len(t, ids, total, "every send was accepted")
	poll.Until(t, patience, func() bool { return countStatus(t, dbURL, "status <> 'succeeded'") == 0 }, "messages left undelivered")
	t.Logf("%d messages sent and delivered in %s", total, time.Since(began).Round(time.Millisecond))

	counts := rc.counts()
	require.Len(t, counts, total)
	for _, id := range ids {
		require.Equal(t, 1, counts[id], "message %s", id)
	}
	// A worker logs an attempt just after its record commits: the last
	// lines may still be on their way.
	poll.Until(t, patience, func() bool { return w1.deliveries()+w2.deliveries() >= total }, "attempts not logged")
	d1, d2 := w1.deliveries(), w2.deliveries()
	t.Logf("worker 1 delivered %d, worker 2 %d", d1, d2)
	require.Equal(t, total, d1+d2)
	require.GreaterOrEqual(t, d1, total/5)
	require.GreaterOrEqual(t, d2, total/5)
	for _, a := range apis {
		require.Zero(t, a.deliveries(), "an api process delivers nothing")
		require.Contains(t, a.stderr.String(), `"role":"api"`)
		require.Contains(t, a.stderr.String(), `"delivery":false`)
	}
	for i, id := range ids {
		var m struct{ Status string }
		require.Equal(t, http.StatusOK, api(t, http.MethodGet, apis[i%2].url("/v1/messages/"+id), apiKey, "", &m))
		require.Equal(t, "succeeded", m.Status)
	}

	// The api processes handed the messages to the workers at their
	// commit: the workers took nearly all of them without a claim (a few
	// a worker had no free worker for were given back, and claimed).
	sum := func(re string) int {
		n := 0
		for _, w := range []*child{w1, w2} {
			for _, m := range regexp.MustCompile(re).FindAllStringSubmatch(w.stderr.String(), -1) {
				v, err := strconv.Atoi(m[1])
				require.NoError(t, err)
				n += v
			}
		}
		return n
	}
	took := sum(`"msg":"took messages handed over by an api process","handed":(\d+)`) - sum(`"msg":"gave back handed messages","count":(\d+)`)
	t.Logf("the workers took %d of %d messages as they were handed over", took, total)
	require.Greater(t, took, total/2)

	// Only the workers listen for due messages: the api processes have no
	// engine, and listen only for the workers. Sessions are named by role.
	rows, err := inspection(t, dbURL).Query(context.Background(), `SELECT application_name FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN "hookd_due"%' ORDER BY 1`)
	require.NoError(t, err)
	listeners, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"hookd worker", "hookd worker"}, listeners)
	rows, err = inspection(t, dbURL).Query(context.Background(), `SELECT application_name FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN "hookd_workers"' ORDER BY 1`)
	require.NoError(t, err)
	listeners, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, []string{"hookd api", "hookd api"}, listeners)

	// SIGTERM: the worker stays up for its drain delay with /readyz 503.
	require.NoError(t, w1.cmd.Process.Signal(syscall.SIGTERM))
	poll.Until(t, drainDelay, func() bool { return get(t, w1.url("/readyz"), "") == http.StatusServiceUnavailable }, "/readyz during the drain")
	require.Equal(t, http.StatusOK, get(t, w1.url("/healthz"), ""))
	select {
	case <-w1.exited:
		require.Equal(t, 0, w1.cmd.ProcessState.ExitCode())
	case <-time.After(drainDelay + patience):
		t.Fatal("the worker did not exit after SIGTERM")
	}
}
