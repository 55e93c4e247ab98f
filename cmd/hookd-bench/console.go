package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// consoleBench measures the console against the running hookd: what its
// first load transfers (index.html, app.js, app.css and the icon, gzip-compressed as
// a browser asks), and, when Node.js, the console's npm packages and
// Chromium are installed, how long its messages page takes to show its
// first rows (console/e2e/bench.mjs).
func consoleBench(ctx context.Context, h *hookd, rounds int) error {
	var total, plain int
	files := []string{"", "app.js", "app.css", "favicon.svg"}
	for _, f := range files {
		for _, enc := range []string{"gzip", "identity"} {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+h.addr+"/console/"+f, nil)
			req.Header.Set("Accept-Encoding", enc)
			resp, err := http.DefaultTransport.RoundTrip(req) // (not decompressed on the way)
			if err != nil {
				return err
			}
			b, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				return fmt.Errorf("console %s: %d %w", f, resp.StatusCode, err)
			}
			if enc == "gzip" {
				total += len(b)
			} else {
				plain += len(b)
			}
		}
	}
	fmt.Printf("console:\n  first load: %.1f KB compressed (%.1f KB uncompressed), %d files\n", float64(total)/1000, float64(plain)/1000, len(files))

	chromium := os.Getenv("CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	node, ok := browserTools(chromium)
	if !ok {
		fmt.Println("  messages page: skipped (needs node, make console-deps and chromium)")
		return nil
	}
	cmd := exec.CommandContext(ctx, node, "e2e/bench.mjs") //nolint:gosec // node from PATH, the benchmark's own script
	cmd.Dir = "console"
	cmd.Env = append(os.Environ(), "HOOKD_URL=http://"+h.addr, "HOOKD_API_KEY="+h.key, "CHROMIUM="+chromium, fmt.Sprintf("ROUNDS=%d", rounds))
	out, err := cmd.CombinedOutput()
	fmt.Print(strings.TrimRight(string(out), "\n") + "\n")
	if err != nil {
		return fmt.Errorf("console bench: %w", err)
	}
	return nil
}

// browserTools finds Node.js and reports whether it, the console's npm
// packages and Chromium are all installed.
func browserTools(chromium string) (node string, ok bool) {
	node, errNode := exec.LookPath("node")
	_, errPkgs := os.Stat(filepath.Join("console", "node_modules", "playwright-core"))
	_, errChromium := os.Stat(chromium) //nolint:gosec // the operator's own setting, only checked for existence
	return node, errNode == nil && errPkgs == nil && errChromium == nil
}
