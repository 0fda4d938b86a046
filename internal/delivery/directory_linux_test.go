package delivery_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sluice-relay/sluice/internal/queue"
)

// unwritableDir returns a directory this process really cannot create a
// file in, and a function that makes it writable again. Root passes
// every permission check, so for root (as tests often run) it is a
// symlink to /sys/kernel: sysfs refuses to create files with EACCES even
// for root, the same error as a drop directory owned by another user.
func unwritableDir(t *testing.T, path string) (fix func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Mkdir(path, 0o555); err != nil {
			t.Fatal(err)
		}
		return func() { os.Chmod(path, 0o755) }
	}
	f, err := os.OpenFile("/sys/kernel/.sluice-test", os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err == nil {
		f.Close()
		os.Remove(f.Name())
	}
	if !errors.Is(err, syscall.EACCES) {
		t.Skipf("running as root and /sys/kernel does not refuse a new file with EACCES (%v): no directory here is unwritable for root; run the test as another user", err)
	}
	if err := os.Symlink("/sys/kernel", path); err != nil {
		t.Fatal(err)
	}
	return func() {
		os.Remove(path)
		os.Mkdir(path, 0o750)
	}
}

// A drop directory Sluice may not write into is its next hop failing, as
// one it cannot open is: the queue goes into Retry with its retry count
// (health counts those), and its last error says what to change without
// the temporary file's name. Before, each message was deferred on its
// own while the queue said Retry with 0 retries, and the error read
// "cannot write to drop directory: dropdir: write …/.<id>.eml.<n>.tmp:
// permission denied".
func TestDropDirectoryNotWritable(t *testing.T) {
	r := stopped(t, "", "")
	drop := filepath.Join(r.dir, "drop")
	fix := unwritableDir(t, drop)
	id := r.put("unwritable", "bob@contoso.com")
	r.run()
	want := "451 4.3.0 cannot write to drop directory " + drop + ": permission denied; give the user Sluice runs as ("
	qi := r.waitQueue("Drop", "the queue in retry", func(qi queue.QueueInfo) bool { return qi.RetryCount == 1 })
	if qi.Status != queue.HopRetry || !strings.HasPrefix(qi.LastError, want) || qi.LastRetryTime.IsZero() ||
		strings.Contains(qi.LastError, ".tmp") || strings.Contains(qi.LastError, "dropdir:") {
		t.Fatalf("queue %+v; want Retry with a last retry time and last error %q...", qi, want)
	}
	if !strings.Contains(qi.LastError, "write access to it, or change the send connector's directory") {
		t.Errorf("last error %q does not say what to change", qi.LastError)
	}
	// A second attempt fails too: opening the directory works, which
	// must not take the queue out of Retry in between. An operator's
	// retry is out of schedule: its failure leaves the retry count.
	if err := r.q.RetryQueue("Drop"); err != nil {
		t.Fatal(err)
	}
	first := qi.LastRetryTime
	qi = r.waitQueue("Drop", "the second failure", func(qi queue.QueueInfo) bool { return qi.LastRetryTime.After(first) })
	if qi.Status != queue.HopRetry || qi.RetryCount != 1 {
		t.Errorf("status %s, retry count %d after a retry out of schedule failed; want Retry, 1", qi.Status, qi.RetryCount)
	}
	m, _ := r.q.Message(id)
	if rc := m.Recipients[0]; !strings.HasPrefix(rc.LastError, want) {
		t.Errorf("recipient's last error %q", rc.LastError)
	}
	if l := r.logLines("next hop took a connection; queue out of retry"); len(l) != 0 {
		t.Errorf("the queue left retry between failures: %q", l)
	}
	// Sluice's own side needs an admin: Error, per the README.
	if l := r.logLines("cannot write to drop directory"); len(l) != 2 || !strings.Contains(l[0], "level=ERROR") || !strings.Contains(l[0], "queue=Drop") {
		t.Errorf("log lines of the failure: %q\n%s", l, r.logs)
	}
	fix()
	if err := r.q.RetryQueue("Drop"); err != nil {
		t.Fatal(err)
	}
	r.waitDone(id)
	if qi, _ := r.q.QueueByName("Drop"); qi.RetryCount != 0 {
		t.Errorf("queue after the directory is writable: %+v", qi)
	}
}
