package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/smtptest"
)

// TestKill9LosesNothing is the durability promise tested for real: many
// senders in parallel, the relay killed with SIGKILL mid-stream several
// times and restarted on the same data directory, and at the end every
// message that got a 250 after DATA must have reached the upstream.
// Duplicates (a message delivered just before a kill, recorded as such
// only after it) are allowed and reported; a loss fails the test. Half
// the senders send 40 to 120 KB, so contents go both into the database
// and into segment files, and each of those must arrive whole.
// SLUICE_SOAK=N runs N kills instead of 3.
func TestKill9LosesNothing(t *testing.T) {
	kills := 3
	if v, err := strconv.Atoi(os.Getenv("SLUICE_SOAK")); err == nil && v > 0 {
		kills = v
	}
	const senders = 8
	up := smtptest.NewServer(t, smtptest.Options{})
	addr := freeAddr(t)
	s := startSluice(t, fmt.Sprintf(relayReceive+`send_connectors:
  - name: Exchange
    address_spaces: ["*"]
    smarthosts: ["%s"]
    tls: {mode: none}
    retry: {first: 1s, max_interval: 2s}
`, addr, up.Addr()), listen(addr))

	var (
		mu      sync.Mutex
		acked   = map[string]bool{}
		refused int
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	for w := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				subj := fmt.Sprintf("crash w%d-%05d", w, i)
				pad := 0
				if w%2 == 1 {
					pad = 40<<10 + rand.IntN(80<<10)
				}
				if err := sendSized(addr, "app@contoso.com", []string{"bob@fabrikam.com"}, subj, pad); err != nil {
					// Sluice is down or was killed mid-transaction: not
					// acknowledged, so it may or may not arrive.
					mu.Lock()
					refused++
					mu.Unlock()
					time.Sleep(50 * time.Millisecond) // back off while it restarts
					continue
				}
				mu.Lock()
				acked[subj] = true
				mu.Unlock()
			}
		}()
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(acked)
	}
	for k := range kills {
		// Let some traffic through, then kill at a random moment.
		target := count() + 100 + rand.IntN(200)
		deadline := time.Now().Add(30 * time.Second)
		for count() < target && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
		if err := s.proc.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-s.proc.exited
		t.Logf("kill %d: SIGKILL after %d acknowledged messages", k+1, count())
		s.start("serve", "-config", s.config)
		s.waitReady(listen(addr))
	}
	// Some more after the last restart, then stop sending.
	target := count() + 100
	for deadline := time.Now().Add(30 * time.Second); count() < target && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	mu.Lock()
	want := len(acked)
	mu.Unlock()
	if want == 0 {
		t.Fatal("no message was acknowledged at all")
	}
	var missing []string
	deadline := time.Now().Add(90 * time.Second)
	for {
		got := map[string]int{}
		msgs := up.Messages()
		for i, subj := range subjects(msgs) {
			got[subj]++
			if subj[7]%2 == 1 && !strings.Contains(string(msgs[i].Data), "\r\nend of "+subj+"\r\n") {
				t.Fatalf("content of %q arrived cut or mixed up (%d octets)", subj, len(msgs[i].Data))
			}
		}
		missing = missing[:0]
		for subj := range acked {
			if got[subj] == 0 {
				missing = append(missing, subj)
			}
		}
		if len(missing) == 0 {
			dups := 0
			for _, n := range got {
				dups += n - 1
			}
			t.Logf("%d kills: %d messages acknowledged, all delivered; %d not acknowledged (connection cut); %d upstream copies in all, %d duplicates",
				kills, want, refused, len(up.Messages()), dups)
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	sort.Strings(missing)
	t.Fatalf("LOST: %d of %d messages that got 250 never reached the upstream, e.g. %v", len(missing), want, missing[:min(10, len(missing))])
}
