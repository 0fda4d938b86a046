package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReload: SIGHUP applies a changed config (a new connector's port
// starts answering, a removed one's stops) and refuses a broken one,
// keeping the running config and saying so in the log.
func TestReload(t *testing.T) {
	t.Parallel()
	skipWithout(t, "swaks")
	first, second, third := freeAddr(t), freeAddr(t), freeAddr(t)
	one := "receive_connectors:\n" + relayConnector("First", first, "", "")
	two := one + relayConnector("Second", second, "", "")
	s := startSluice(t, one, listen(first))

	send := func(t *testing.T, addr, rcpt string) {
		t.Helper()
		r := swaks(t, addr, "--from", "app@contoso.com", "--to", rcpt)
		r.wantExit(t, true)
		r.want(t, "250 2.6.0")
		if !t.Failed() {
			waitMessage(t, s.dropDir, rcpt)
		}
	}

	t.Run("new connector", func(t *testing.T) {
		s.writeConfig(two)
		s.signal(syscall.SIGHUP)
		s.waitReady(listen(second))
		send(t, second, "via-second@fabrikam.example")
		send(t, first, "via-first@fabrikam.example")
	})

	t.Run("broken config is refused", func(t *testing.T) {
		s.writeConfig(two + "  - name: Third\n    bindings: [" + third + "]\n" +
			"    remote_ip_ranges: [10.0.0.0/33]\n    permissions: [anonymous]\n")
		s.signal(syscall.SIGHUP)
		l := s.waitLog("reload refused")
		if !strings.Contains(l, "is not a CIDR range") {
			t.Errorf("the log does not say why the reload was refused (the bad CIDR):\n%s", l)
		}
		if c, err := dialFrom("", third); err == nil {
			c.Close()
			t.Errorf("%s of the refused config answers", third)
		}
		send(t, first, "after-refused-first@fabrikam.example")
		send(t, second, "after-refused-second@fabrikam.example")
	})

	t.Run("removed connector", func(t *testing.T) {
		s.writeConfig(one)
		s.signal(syscall.SIGHUP)
		deadline := time.Now().Add(waitTimeout)
		for {
			c, err := dialFrom("", second)
			if err != nil {
				break
			}
			c.Close()
			if time.Now().After(deadline) {
				t.Fatalf("%s still answers %v after its connector was removed and SIGHUP sent", second, waitTimeout)
			}
			time.Sleep(20 * time.Millisecond)
		}
		send(t, first, "after-removal@fabrikam.example")
	})

	// The log and the admin API are built at start: a change to them is
	// not applied by a reload, and the log says so instead of nothing.
	t.Run("restart-only section", func(t *testing.T) {
		s.writeConfig("log: {level: debug}\n" + one)
		s.signal(syscall.SIGHUP)
		l := s.waitLog("apply only when Sluice restarts")
		if !strings.Contains(l, "sections=[log]") {
			t.Errorf("the warning does not name the log section:\n%s", l)
		}
		send(t, first, "after-log-change@fabrikam.example")
	})

	// sluice reload does what SIGHUP does, through the admin API (the way
	// on Windows), and prints why a config is refused.
	t.Run("sluice reload", func(t *testing.T) {
		s.writeConfig("log: {level: debug}\n" + two)
		r := runClient(t, nil, sluiceBin, "reload", "-config", s.config)
		r.wantExit(t, true)
		r.want(t, "configuration reloaded", "applied only at the next restart: log")
		s.waitReady(listen(second))
		send(t, second, "after-cli-reload@fabrikam.example")

		s.writeConfig(two + "  - name: Third\n    bindings: [" + third + "]\n" +
			"    remote_ip_ranges: [10.0.0.0/33]\n    permissions: [anonymous]\n")
		r = runClient(t, nil, sluiceBin, "reload", "-config", s.config)
		r.wantExit(t, false)
		r.want(t, "reload refused; the running configuration is kept", "is not a CIDR range")
		send(t, second, "after-cli-refused@fabrikam.example")
	})
}

// TestShutdownDuringData: SIGTERM while a client is in the middle of DATA.
// The client still finishes its message and gets 250, the message is not
// lost, an idle session is told 421, no new connection is accepted, and
// the process exits with status 0.
func TestShutdownDuringData(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	cfg := "receive_connectors:\n" + relayConnector("Default", addr, "", "")
	s := startSluice(t, cfg, listen(addr))
	const rcpt = "sigterm@fabrikam.example"

	idle := dialRaw(t, "", addr)
	idle.expect("220 ")
	idle.cmd("EHLO idle.test", "250")

	c := dialRaw(t, "", addr)
	c.expect("220 ")
	c.cmd("EHLO busy.test", "250")
	c.cmd("MAIL FROM:<app@contoso.com>", "250")
	c.cmd("RCPT TO:<"+rcpt+">", "250")
	c.cmd("DATA", "354") // the session is in DATA once 354 is sent
	c.write("From: <app@contoso.com>\r\nSubject: in transfer at SIGTERM\r\n\r\nfirst half\r\n")

	s.signal(syscall.SIGTERM)
	s.waitLog("shutting down")
	idle.expect("421 4.3.2")

	// The listener closes: new connections are refused.
	deadline := time.Now().Add(waitTimeout)
	for {
		nc, err := dialFrom("", addr)
		if err != nil {
			break
		}
		nc.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections %v after SIGTERM", addr, waitTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}

	c.write("second half, sent after SIGTERM\r\n.\r\n")
	c.expect("250 ")
	c.c.Close()

	if err := s.waitExit(); err != nil {
		t.Errorf("sluice exited with %v after SIGTERM, want status 0", err)
	}

	// Restart on the same data directory: a binary with a queue may have
	// stopped before delivering to the drop directory, and must then
	// deliver now; one that had delivered must not deliver again (which
	// would rewrite the file: a new file under the same name).
	var before os.FileInfo
	if got := messagesTo(t, s.dropDir, rcpt); len(got) == 1 {
		var err error
		if before, err = os.Stat(got[0].path); err != nil {
			t.Fatal(err)
		}
	} else {
		t.Logf("%d messages for <%s> in the drop directory at exit; expecting it after a restart", len(got), rcpt)
	}
	s.start("serve", "-config", s.config)
	s.waitReady(listen(addr))
	m := waitMessage(t, s.dropDir, rcpt)
	s.barrier(addr, "fabrikam.example")
	if got := messagesTo(t, s.dropDir, rcpt); len(got) != 1 {
		t.Fatalf("%d messages for <%s> after the restart, want exactly 1", len(got), rcpt)
	}
	after, err := os.Stat(m.path)
	if err != nil {
		t.Fatal(err)
	}
	if before != nil && !os.SameFile(before, after) {
		t.Errorf("the message accepted during shutdown was delivered again after the restart (%s was rewritten)", m.path)
	}
	wantNormalized(t, m.msg, "first half\r\nsecond half, sent after SIGTERM\r\n")
	if !strings.Contains(string(m.msg), "Subject: in transfer at SIGTERM") {
		t.Errorf("stored message is not the one sent:\n%s", head(m.msg))
	}
}

// TestSecondInstanceRefused: a second `sluice serve` on a data directory
// in use exits at once with a message naming the directory and the
// running process, and the first goes on accepting mail. (Two on one
// queue would write contents over each other's.)
func TestSecondInstanceRefused(t *testing.T) {
	t.Parallel()
	skipWithout(t, "swaks")
	addr := freeAddr(t)
	first := startSluice(t, "receive_connectors:\n"+relayConnector("First", addr, "", ""), listen(addr))

	second := &sluice{t: t, dir: first.dir, config: first.dir + "/second.yaml",
		dataDir: first.dataDir, dropDir: first.dropDir, admin: freeAddr(t)}
	second.writeConfig("receive_connectors:\n" + relayConnector("Second", freeAddr(t), "", ""))
	second.start("serve", "-config", second.config)
	if err := second.waitExit(); err == nil {
		t.Fatal("the second sluice serve on one data directory exited with status 0, want a failure")
	}
	out := second.log.String()
	for _, want := range []string{first.dataDir, "in use by another Sluice", "pid " + strconv.Itoa(first.proc.cmd.Process.Pid)} {
		if !strings.Contains(out, want) {
			t.Errorf("the second sluice says %q, want it to name %q", strings.TrimSpace(out), want)
		}
	}

	r := swaks(t, addr, "--from", "app@contoso.com", "--to", "still@fabrikam.example")
	r.wantExit(t, true)
	r.want(t, "250 2.6.0")
	waitMessage(t, first.dropDir, "still@fabrikam.example")
}

// TestHealthAsksTheRunningSluice: `sluice health` reports what the
// running Sluice finds; when that Sluice refuses the CLI (a wrong admin
// token), it says so and fails instead of passing off the config file's
// findings as the node's health. With no Sluice running, it checks the
// config file and says that is all it did.
func TestHealthAsksTheRunningSluice(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	token := filepath.Join(dir, "admin.token")
	wrong := filepath.Join(dir, "wrong.token")
	if err := os.WriteFile(token, []byte("right-token-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wrong, []byte("wrong-token-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, admin := freeAddr(t), freeAddr(t)
	s := startSluice(t, fmt.Sprintf("admin: {listen: %q, token_file: %s}\nreceive_connectors:\n", admin, token)+
		relayConnector("Apps", addr, "", ""), listen(addr))

	ok := runClient(t, nil, sluiceBin, "health", "-config", s.config)
	ok.wantExit(t, true)
	ok.wantNot(t, "checking the config file only")

	refused := runClient(t, nil, sluiceBin, "health", "-config", s.config, "--token-file", wrong)
	refused.wantExit(t, false)
	refused.want(t, "did not report its health", "--offline")
	refused.wantNot(t, "checking the config file only")

	down := runClient(t, nil, sluiceBin, "health", "-config", s.config, "--admin", "http://"+freeAddr(t))
	down.want(t, "cannot reach Sluice's admin API", "checking the config file only")
}

// TestSIGHUPWhileStarting: a SIGHUP that comes while Sluice is still
// starting (opening and loading the queue, which takes a while with a
// backlog; a config tool reloading right after a start) does not kill
// it, as SIGHUP's default action would: it starts, and serves.
func TestSIGHUPWhileStarting(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	dir := t.TempDir()
	s := &sluice{t: t, dir: dir, config: filepath.Join(dir, "sluice.yaml"), dataDir: filepath.Join(dir, "data"),
		dropDir: filepath.Join(dir, "data", "drop"), admin: freeAddr(t)}
	s.writeConfig("receive_connectors:\n" + relayConnector("Default", addr, "", ""))
	s.start("serve", "-config", s.config)
	// The lock file gets the pid early in the start, long before the
	// listeners open.
	lock := filepath.Join(s.dataDir, "sluice.lock")
	pid := strconv.Itoa(s.proc.cmd.Process.Pid)
	deadline := time.Now().Add(startTimeout)
	for {
		if b, _ := os.ReadFile(lock); strings.TrimSpace(string(b)) == pid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not get the pid %s within %v", lock, pid, startTimeout)
		}
		time.Sleep(time.Millisecond) // polling interval
	}
	s.signal(syscall.SIGHUP)
	s.waitReady(listen(addr))
}

// TestSecondSignalStopsAtOnce: while a graceful stop waits for a message
// in transfer (up to a minute or the data timeout), a second SIGTERM
// ends the process at once, as an operator pressing Ctrl-C again or an
// init system insisting expects. Nothing that got a 250 depends on the
// wait: it is on disk already.
func TestSecondSignalStopsAtOnce(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	s := startSluice(t, "receive_connectors:\n"+relayConnector("Default", addr, "", ""), listen(addr))
	c := dialRaw(t, "", addr)
	c.expect("220 ")
	c.cmd("EHLO slow.test", "250")
	c.cmd("MAIL FROM:<app@contoso.com>", "250")
	c.cmd("RCPT TO:<slow@fabrikam.example>", "250")
	c.cmd("DATA", "354")
	c.write("Subject: never finished\r\n\r\n")

	s.signal(syscall.SIGTERM)
	s.waitLog("shutting down")
	s.signal(syscall.SIGTERM)
	select {
	case <-s.proc.exited:
	case <-time.After(stopTimeout):
		t.Fatalf("sluice still runs %v after a second SIGTERM", stopTimeout)
	}
}
