package daemon

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-relay/sluice/internal/config"
	"github.com/sluice-relay/sluice/internal/mail"
)

// Code logs Sluice's message id as "msg" (STYLE.md §5), which is also
// slog's key for the event text. Both must survive in the output: in JSON
// a second "msg" key overwrites the first for every parser.
func TestLogKeepsEventTextAndMessageID(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			var b bytes.Buffer
			log := NewLogger(&b, config.Log{Level: "info", Format: config.LogFormat(format)})
			log.With("session", "06h0000000000001").Info("message accepted", "msg", mail.ID("06h0000000000002"), "size", 10)
			log.With("msg", "06h0000000000003").WithGroup("g").Info("in a group", "msg", "x")
			lines := strings.Split(strings.TrimSpace(b.String()), "\n")
			if len(lines) != 2 {
				t.Fatalf("want 2 lines, got %q", b.String())
			}
			if format == "text" {
				for _, want := range []string{`msg="message accepted"`, "msg_id=06h0000000000002", "session=06h0000000000001"} {
					if !strings.Contains(lines[0], want) {
						t.Errorf("%s: want %s in it", lines[0], want)
					}
				}
				for _, want := range []string{"msg_id=06h0000000000003", "g.msg=x"} {
					if !strings.Contains(lines[1], want) {
						t.Errorf("%s: want %s in it", lines[1], want)
					}
				}
				return
			}
			var e map[string]any
			if err := json.Unmarshal([]byte(lines[0]), &e); err != nil {
				t.Fatal(err)
			}
			if e["msg"] != "message accepted" || e["msg_id"] != "06h0000000000002" || e["session"] != "06h0000000000001" {
				t.Errorf("parsed %v from %s", e, lines[0])
			}
			e = nil
			if err := json.Unmarshal([]byte(lines[1]), &e); err != nil {
				t.Fatal(err)
			}
			if e["msg"] != "in a group" || e["msg_id"] != "06h0000000000003" || e["g"].(map[string]any)["msg"] != "x" {
				t.Errorf("parsed %v from %s", e, lines[1])
			}
		})
	}
}

// A refused reload is one event: one line, with every problem in it.
func TestRefusedReloadIsOneLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sluice.yaml")
	bad := "node: {data_dir: " + dir + "}\nreceive_connectors:\n  - {name: A, bindings: [\"127.0.0.1:2525\"], remote_ip_ranges: [10.0.0.0/33], permissions: [anonymous]}\nsend_connectors:\n  - {name: D, address_spaces: [\"*\"], delivery: directory, directory: drop, bogus: 1}\n"
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	old, err := config.LoadDefault()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	got, problems := reload(NewLogger(&b, config.Log{Level: "info"}), path, old, nil, nil, nil)
	if got != old || len(problems) != 2 {
		t.Fatalf("reload kept %p (old %p), problems %q", got, old, problems)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "level=ERROR") || !strings.Contains(lines[0], "10.0.0.0/33") || !strings.Contains(lines[0], "bogus") {
		t.Errorf("want one Error line naming both problems:\n%s", b.String())
	}
}
