// Package fakedns is an in-memory netguard.Resolver for tests: this machine
// has no public DNS, and tests must be able to change an answer between two
// lookups (DNS rebinding).
package fakedns

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
)

// Resolver answers from a table that tests set. Unknown names do not
// resolve. It is safe for concurrent use.
type Resolver struct {
	mu sync.Mutex
	m  map[string][]netip.Addr
}

// New returns an empty Resolver.
func New() *Resolver { return &Resolver{m: map[string][]netip.Addr{}} }

// Set makes host resolve to addrs (none: the name stops resolving).
func (r *Resolver) Set(host string, addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	as := make([]netip.Addr, len(addrs))
	for i, a := range addrs {
		as[i] = netip.MustParseAddr(a)
	}
	r.m[strings.ToLower(host)] = as
}

// LookupNetIP implements netguard.Resolver.
func (r *Resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	as, ok := r.m[strings.ToLower(host)]
	if !ok || len(as) == 0 {
		return nil, fmt.Errorf("lookup %s: no such host", host)
	}
	return append([]netip.Addr(nil), as...), nil
}
