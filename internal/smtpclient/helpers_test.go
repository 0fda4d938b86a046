package smtpclient

import (
	"bufio"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/mail"
	"github.com/sluice-relay/sluice/internal/reply"
)

// testTimeouts keep a broken test from hanging for the RFC's minutes.
var testTimeouts = Timeouts{Connect: 10 * time.Second, Greeting: 10 * time.Second, Command: 10 * time.Second,
	Mail: 10 * time.Second, Rcpt: 10 * time.Second, DataInit: 10 * time.Second, DataBlock: 10 * time.Second, DataEnd: 10 * time.Second}

// transcript collects a client's transcript and shows it in the test log.
type transcript struct {
	t     testing.TB
	mu    sync.Mutex
	lines []string
}

func (tr *transcript) add(dir byte, line string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.lines = append(tr.lines, string(dir)+" "+line)
	tr.t.Logf("client %c %s", dir, line)
}

func (tr *transcript) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return strings.Join(tr.lines, "\n")
}

func testOptions(t testing.TB) (Options, *transcript) {
	tr := &transcript{t: t}
	return Options{LocalName: "relay.contoso.example", Timeouts: testTimeouts, Transcript: tr.add}, tr
}

// dial connects to the server and says EHLO.
func dial(t testing.TB, addr string) (*Client, *transcript) {
	t.Helper()
	o, tr := testOptions(t)
	c, err := Dial(context.Background(), addr, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c, tr
}

// envelope is a message from a@contoso.example to rcpts.
func envelope(rcpts ...string) *Envelope {
	env := &Envelope{From: "a@contoso.example"}
	for _, r := range rcpts {
		env.Rcpts = append(env.Rcpts, mail.Recipient{Addr: mail.Address(r)})
	}
	return env
}

const testBody = "From: a@contoso.example\r\nSubject: test\r\n\r\nHello.\r\n"

// replyLines renders each reply as its line, "" for a zero reply.
func replyLines(rs ...reply.Reply) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		if r.Code != 0 {
			out[i] = r.Error()
		}
	}
	return out
}

// rawServer is a scripted server for what smtptest will not do: answer
// gets each command line and returns the reply to write ("" for none;
// "\n" separates the lines of a multi-line reply, which are written as
// given). After a 354 it reads the data and answers the line ".".
func rawServer(t testing.TB, greeting string, answer func(line string) string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				write := func(s string) {
					if s != "" {
						c.Write([]byte(strings.ReplaceAll(s, "\n", "\r\n") + "\r\n"))
					}
				}
				write(greeting)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					resp := answer(strings.TrimRight(line, "\r\n"))
					write(resp)
					if strings.HasPrefix(resp, "354") {
						for line != ".\r\n" {
							if line, err = r.ReadString('\n'); err != nil {
								return
							}
						}
						write(answer("."))
					}
					if strings.HasPrefix(resp, "221") {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}
