package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/syncbuf"
	"github.com/sluice-relay/sluice/internal/testport"
)

// Deadlines for polling. They bound how long a broken build makes a test
// hang; nothing asserts that anything is faster than them.
const (
	startTimeout  = 20 * time.Second // process start until every port greets
	waitTimeout   = 20 * time.Second // a message to reach the drop directory, a log line
	stopTimeout   = 20 * time.Second // SIGTERM until exit
	clientTimeout = 60 * time.Second // one client run (swaks, python, curl)
)

// sluice is one running `sluice serve` process.
type sluice struct {
	t       *testing.T
	dir     string // the test's temporary directory: config and data
	config  string // the config file's path
	dataDir string
	dropDir string
	admin   string     // the admin API's address, 127.0.0.1:port
	proc    *process   // the one running now (or last)
	log     *logBuffer // its output
}

// process is one run of the binary.
type process struct {
	cmd    *exec.Cmd
	log    *logBuffer
	exited chan struct{}
	err    error // how it ended; valid once exited is closed
}

// endpoint is a listening port the harness waits for before the test runs.
type endpoint struct {
	addr        string // "127.0.0.1:port"
	from        string // client source address (a connector may serve only it); "" for any
	implicitTLS bool   // the connector speaks TLS from the first byte
}

// listen returns an endpoint for addr, reached from 127.0.0.1.
func listen(addr string) endpoint { return endpoint{addr: addr} }

// freeAddr returns "127.0.0.1:port" with a port nothing listens on right
// now, never one handed out before in this run. Another process could
// take it before Sluice binds it; on a test machine that does not happen.
func freeAddr(t *testing.T) string { return testport.Addr(t) }

// configText completes a test's config: node settings that put all state
// into the test's directory, the admin API on its own free port (tests run
// in parallel), and a drop-directory send connector for every address
// (unless the test has its own). body is the rest of the YAML, starting at
// column 0.
func (s *sluice) configText(body string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "node:\n  hostname: relay.test\n  data_dir: %s\n", s.dataDir)
	b.WriteString(body)
	if !strings.HasSuffix(body, "\n") {
		b.WriteString("\n")
	}
	if !strings.Contains(body, "\nadmin:") && !strings.HasPrefix(body, "admin:") {
		fmt.Fprintf(&b, "admin: {listen: \"%s\"}\n", s.admin)
	}
	if !strings.Contains(body, "send_connectors:") {
		b.WriteString("send_connectors:\n  - {name: Drop, address_spaces: [\"*\"], delivery: directory, directory: drop}\n")
	}
	return b.String()
}

// startSluice writes the config into a new temporary directory, starts
// `sluice serve -config` on it and returns once every endpoint answers with
// a 220 banner. The process is stopped with SIGTERM when the test ends and
// must then exit with status 0.
func startSluice(t *testing.T, body string, eps ...endpoint) *sluice {
	t.Helper()
	dir := t.TempDir()
	s := &sluice{
		t:       t,
		dir:     dir,
		config:  filepath.Join(dir, "sluice.yaml"),
		dataDir: filepath.Join(dir, "data"),
		dropDir: filepath.Join(dir, "data", "drop"),
		admin:   freeAddr(t),
	}
	s.writeConfig(body)
	s.start("serve", "-config", s.config)
	s.waitReady(eps...)
	return s
}

// writeConfig replaces the config file (for reload tests).
func (s *sluice) writeConfig(body string) {
	s.t.Helper()
	if err := os.WriteFile(s.config, []byte(s.configText(body)), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

// start runs the binary with args in s.dir and arranges for it to be
// stopped at the end of the test. A test may start it again once it has
// exited (a restart on the same data directory).
func (s *sluice) start(args ...string) {
	t := s.t
	t.Helper()
	if runtime.GOOS == "windows" {
		// os.Process.Signal sends only Kill on Windows, and Sluice is
		// stopped there as a service (or with Ctrl-C), reloaded with
		// sluice reload.
		t.Skip("the harness stops sluice serve with SIGTERM (and tests send SIGHUP), which Windows cannot send; run the end-to-end tests on Linux")
	}
	p := &process{cmd: exec.Command(sluiceBin, args...), log: &logBuffer{}, exited: make(chan struct{})}
	p.cmd.Dir = s.dir
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("cannot start %s: %v", sluiceBin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	s.proc, s.log = p, p.log
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() || testing.Verbose() {
			t.Logf("sluice %s (pid %d) log:\n%s", strings.Join(args, " "), p.cmd.Process.Pid, p.log.String())
		}
	})
}

// stop sends SIGTERM, then SIGKILL after stopTimeout, and reports a process
// that did not exit with status 0. A process that has already exited was
// stopped by its test, which checked how.
func (p *process) stop(t *testing.T) {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.err != nil {
			t.Errorf("sluice exited with %v after SIGTERM, want status 0", p.err)
		}
	case <-time.After(stopTimeout):
		p.cmd.Process.Kill()
		<-p.exited
		t.Errorf("sluice did not exit within %v of SIGTERM; killed it", stopTimeout)
	}
}

// signal sends sig to the running process.
func (s *sluice) signal(sig os.Signal) {
	s.t.Helper()
	if err := s.proc.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("cannot send %v to sluice: %v", sig, err)
	}
}

// waitExit waits for the process to end and returns how it ended.
func (s *sluice) waitExit() error {
	s.t.Helper()
	select {
	case <-s.proc.exited:
		return s.proc.err
	case <-time.After(stopTimeout):
		s.t.Fatalf("sluice did not exit within %v", stopTimeout)
		return nil
	}
}

// waitReady polls every endpoint until it answers with a 220 banner.
func (s *sluice) waitReady(eps ...endpoint) {
	s.t.Helper()
	deadline := time.Now().Add(startTimeout)
	for _, ep := range eps {
		for {
			banner, err := greet(ep)
			if err == nil {
				if !strings.HasPrefix(banner, "220 ") {
					s.t.Fatalf("%s (from %s) greets with %q, want a 220 banner", ep.addr, ep.fromOr(), banner)
				}
				break
			}
			select {
			case <-s.proc.exited:
				s.t.Fatalf("sluice exited before %s answered (%v)", ep.addr, s.proc.err)
			default:
			}
			if time.Now().After(deadline) {
				s.t.Fatalf("%s (from %s) did not greet within %v: %v", ep.addr, ep.fromOr(), startTimeout, err)
			}
			time.Sleep(20 * time.Millisecond) // polling interval, not synchronisation
		}
	}
}

func (ep endpoint) fromOr() string {
	if ep.from == "" {
		return "127.0.0.1"
	}
	return ep.from
}

// greet connects, reads the greeting line and says QUIT.
func greet(ep endpoint) (string, error) {
	c, err := dialFrom(ep.from, ep.addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if ep.implicitTLS {
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true}) // readiness only; tests verify
		if err := tc.Handshake(); err != nil {
			return "", err
		}
		c = tc
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	fmt.Fprintf(c, "QUIT\r\n")
	return strings.TrimRight(line, "\r\n"), nil
}

// dialFrom connects to addr from the source address from ("" for any).
func dialFrom(from, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	return d.Dial("tcp", addr)
}

// waitLog polls the daemon's log until it contains substr.
func (s *sluice) waitLog(substr string) string {
	s.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		if l := s.log.String(); strings.Contains(l, substr) {
			return l
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the log did not say %q within %v; it says:\n%s", substr, waitTimeout, s.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logBuffer collects the daemon's output; the process writes to it while
// tests read it.
type logBuffer = syncbuf.Buffer
