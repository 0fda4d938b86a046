package e2e

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-relay/sluice/internal/smtptest"
	"github.com/sluice-relay/sluice/internal/tracking"
)

// protocolLines returns the lines of the protocol logs of one direction
// ("receive", "send") with the given session, once its disconnect is in.
func (s *sluice) protocolLines(direction, session string) [][]string {
	s.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		var lines [][]string
		files, _ := filepath.Glob(filepath.Join(s.dataDir, "protocol", direction+"-*.log"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			cr := csv.NewReader(strings.NewReader(string(b)))
			cr.FieldsPerRecord = 7
			records, _ := cr.ReadAll() // up to a line the writer has not finished
			for _, r := range records {
				if r[2] == session {
					lines = append(lines, r)
				}
			}
		}
		if len(lines) > 0 && lines[len(lines)-1][5] == "-" {
			return lines
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the %s protocol log never finished session %s: %q", direction, session, lines)
		}
		time.Sleep(50 * time.Millisecond) // the protocol log is flushed every 200 ms
	}
}

// An operator goes from each line of a message's story to its
// conversation: `sluice track --json` gives the session of RECEIVE and
// of SEND and DEFER, and the protocol logs have that session's lines,
// each with the local end of its connection.
func TestTrackLeadsToConversations(t *testing.T) {
	up := smtptest.NewServer(t, smtptest.Options{Replies: map[string]string{"later@fabrikam.com": "451 4.3.0 try later"}})
	addr := freeAddr(t)
	s := startSluice(t, fmt.Sprintf(`receive_connectors:
  - name: Apps
    bindings: ["%s"]
    remote_ip_ranges: [127.0.0.0/8]
    permissions: [anonymous, relay]
    protocol_log: true
send_connectors:
  - name: Fabrikam
    address_spaces: ["*"]
    smarthosts: ["%s"]
    tls: {mode: none}
    protocol_log: true
    retry: {first: 10m, max_interval: 10m}
`, addr, up.Addr()), listen(addr))
	mustSend(t, addr, "app@contoso.com", []string{"bob@fabrikam.com", "later@fabrikam.com"}, "linked")
	client := up.WaitMessages(t, 1)[0].Client

	events := map[tracking.EventType]tracking.Event{}
	deadline := time.Now().Add(waitTimeout)
	for events[tracking.EventSend].Session == "" || events[tracking.EventDefer].Session == "" {
		if time.Now().After(deadline) {
			t.Fatalf("sluice track never showed SEND and DEFER with their session: %+v", events)
		}
		time.Sleep(100 * time.Millisecond) // the tracking log is flushed every 200 ms
		out := runClient(t, nil, sluiceBin, "track", "-config", s.config, "--message-id", "<linked@app.test>", "--json").out
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var e tracking.Event
			if json.Unmarshal([]byte(line), &e) == nil {
				events[e.Event] = e
			}
		}
	}
	for _, tc := range []struct {
		ev        tracking.EventType
		direction string
		local     string // the local column: Sluice's end of the connection
		want      string // a line of the conversation: event,data
	}{
		{tracking.EventReceive, "receive", addr, "<,RCPT TO:<later@fabrikam.com>"},
		{tracking.EventSend, "send", client, ">,RCPT TO:<bob@fabrikam.com>"},
		{tracking.EventDefer, "send", client, "<,451 4.3.0 try later"},
	} {
		e := events[tc.ev]
		if e.Session == "" {
			t.Errorf("%s has no session: %+v", tc.ev, e)
			continue
		}
		var conv []string
		for _, l := range s.protocolLines(tc.direction, e.Session) {
			if l[3] != tc.local {
				t.Errorf("%s log line %q: local %q; want %q", tc.direction, l, l[3], tc.local)
			}
			conv = append(conv, l[5]+","+l[6])
		}
		if !strings.Contains(strings.Join(conv, "\n")+"\n", tc.want+"\n") {
			t.Errorf("%s's conversation %s lacks %q:\n%s", tc.ev, e.Session, tc.want, strings.Join(conv, "\n"))
		}
	}
}
