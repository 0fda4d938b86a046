// Command latency measures what smtp-source does not: the time from the
// end of DATA (the final dot sent) to the relay's 250, per message, at a
// given concurrency, over new connections per message like the harness.
// It prints one TSV row: label, size, conc, msgs, msgs/s, p50, p99, max (ms).
//
//	go run ./bench/latency -addr 127.0.0.1:2525 -c 20 -n 5000 -size 10240 -label sluice
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-relay/sluice/bench/internal/smtpmsg"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:2525", "relay address")
	conc := flag.Int("c", 20, "concurrent connections")
	n := flag.Int("n", 2000, "messages in all")
	size := flag.Int("size", 10240, "message size in bytes")
	label := flag.String("label", "relay", "label for the output row")
	header := flag.Bool("header", false, "print the TSV header first")
	flag.Parse()
	body := []byte(smtpmsg.Content(*size, "latency"))
	var next atomic.Int64
	lat := make([]time.Duration, *n)
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= *n {
					return
				}
				d, err := one(*addr, body)
				if err != nil {
					failed.Add(1)
					fmt.Fprintln(os.Stderr, "latency:", err)
					continue
				}
				lat[i] = d
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	ok := lat[:0]
	for _, d := range lat {
		if d > 0 {
			ok = append(ok, d)
		}
	}
	sort.Slice(ok, func(i, j int) bool { return ok[i] < ok[j] })
	if len(ok) == 0 {
		fmt.Fprintln(os.Stderr, "latency: no message was accepted")
		os.Exit(1)
	}
	pct := func(p float64) float64 { return float64(ok[int(p*float64(len(ok)-1))]) / 1e6 }
	if *header {
		fmt.Println("label\tsize\tconc\tmsgs\tmps\tp50_ms\tp99_ms\tmax_ms\tfailed")
	}
	fmt.Printf("%s\t%d\t%d\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t%d\n", *label, *size, *conc, len(ok),
		float64(len(ok))/elapsed.Seconds(), pct(0.5), pct(0.99), pct(1), failed.Load())
}

// one sends a message over a new connection and returns the time from
// the final dot to the 250.
func one(addr string, body []byte) (time.Duration, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	r := bufio.NewReader(c)
	expect := func(code string) error { return smtpmsg.Expect(r, code) }
	steps := []struct{ cmd, code string }{{"", "220"}, {"EHLO latency.test\r\n", "250"}, {"MAIL FROM:<a@example.com>\r\n", "250"},
		{"RCPT TO:<b@example.net>\r\n", "250"}, {"DATA\r\n", "354"}}
	for _, s := range steps {
		if s.cmd != "" {
			if _, err := c.Write([]byte(s.cmd)); err != nil {
				return 0, err
			}
		}
		if err := expect(s.code); err != nil {
			return 0, err
		}
	}
	if _, err := c.Write(body); err != nil {
		return 0, err
	}
	t := time.Now()
	if err := expect("250"); err != nil {
		return 0, err
	}
	d := time.Since(t)
	c.Write([]byte("QUIT\r\n"))
	return d, nil
}
