// Package testport hands tests loopback ports that were free a moment
// ago, never the same one twice in one test binary: a port closed again
// is free for the system to hand out once more, and two parts of one
// test (an admin API and a receive connector) once got the same.
package testport

import (
	"fmt"
	"net"
	"sync"
	"testing"
)

var (
	mu    sync.Mutex
	given = map[int]bool{}
)

// Free returns a loopback port nothing listens on now.
func Free(t testing.TB) int {
	t.Helper()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("cannot pick a free port: %v", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		mu.Lock()
		first := !given[port]
		given[port] = true
		mu.Unlock()
		if first {
			return port
		}
	}
}

// Addr is Free as "127.0.0.1:port".
func Addr(t testing.TB) string { return fmt.Sprintf("127.0.0.1:%d", Free(t)) }
