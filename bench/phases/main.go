// Command phases times each step of a message at one connection: the
// connect, every reply (220, EHLO, MAIL, RCPT, DATA, the final dot, QUIT)
// and the close, one new connection per message like smtp-source. It
// prints the mean, p50 and p90 of each step and the mean of the final
// dot → 250 per 1,000 messages, which shows what changes as a store
// fills (it found a fresh WAL's growth: ~480 µs for its first ~2,300
// messages, ~350 after). Run it against a trivial server too: that is
// the floor of the client's round trips on the machine.
//
//	go run ./bench/phases -addr 127.0.0.1:2525 -n 5000 -size 10240
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sluice-relay/sluice/bench/internal/smtpmsg"
)

var steps = []string{"connect", "220", "EHLO", "MAIL", "RCPT", "DATA", "dot", "QUIT", "close"}

const dot = 6 // index of the final dot's step

func main() {
	addr := flag.String("addr", "127.0.0.1:2525", "relay address")
	n := flag.Int("n", 5000, "messages")
	size := flag.Int("size", 10240, "message size in bytes")
	flag.Parse()
	cmds := []string{"EHLO phases.example\r\n", "MAIL FROM:<a@example.com>\r\n",
		"RCPT TO:<b@example.net>\r\n", "DATA\r\n", smtpmsg.Content(*size, "phases"), "QUIT\r\n"}
	took := make([][]time.Duration, len(steps))
	for i := range *n {
		t, err := message(*addr, cmds)
		if err != nil {
			fmt.Fprintf(os.Stderr, "phases: message %d: %v\n", i+1, err)
			os.Exit(1)
		}
		for s := range steps {
			took[s] = append(took[s], t[s])
		}
	}
	fmt.Print("final dot → 250, mean per 1,000 messages (µs):")
	for i := 0; i+1000 <= len(took[dot]); i += 1000 {
		fmt.Printf(" %.0f", micros(mean(took[dot][i:i+1000])))
	}
	fmt.Println()
	var total time.Duration
	for s, name := range steps {
		d := slices.Sorted(slices.Values(took[s]))
		total += mean(d)
		fmt.Printf("%-8s mean %7.1f µs  p50 %7.1f  p90 %7.1f\n", name, micros(mean(d)), micros(d[len(d)/2]), micros(d[len(d)*9/10]))
	}
	fmt.Printf("%-8s mean %7.1f µs (%.0f msg/s)\n", "message", micros(total), float64(time.Second)/float64(total))
}

// message sends one message on a new connection and returns each
// step's time.
func message(addr string, cmds []string) ([]time.Duration, error) {
	t := make([]time.Duration, 0, len(steps))
	last := time.Now()
	mark := func() {
		now := time.Now()
		t = append(t, now.Sub(last))
		last = now
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	mark()
	r := bufio.NewReader(c)
	if err := smtpmsg.Expect(r, "220"); err != nil {
		return nil, err
	}
	mark()
	want := []string{"250", "250", "250", "354", "250", "221"}
	for i, cmd := range cmds {
		if _, err := c.Write([]byte(cmd)); err != nil {
			return nil, err
		}
		if err := smtpmsg.Expect(r, want[i]); err != nil {
			return nil, fmt.Errorf("after %q: %w", strings.TrimSpace(cmd[:min(len(cmd), 20)]), err)
		}
		mark()
	}
	// The server closes after 221: wait for it.
	r.ReadByte()
	mark()
	return t, nil
}

func mean(d []time.Duration) time.Duration {
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return sum / time.Duration(max(len(d), 1))
}

func micros(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
