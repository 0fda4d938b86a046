package dsn

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: Parse reads bounces from anywhere, so it must never panic; and
// whatever it reads, Compose must be able to write again and Parse to read
// back with the same recipients.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/*.golden", "testdata/foreign/*.eml"} {
		files, _ := filepath.Glob(pattern)
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte("Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\nFinal-Recipient: rfc822; a@b\r\nAction: failed\r\nStatus: 5.1.1\r\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		r, err := Parse(msg)
		if err != nil {
			return
		}
		b, err := Compose(r, now, fixedID)
		if errors.Is(err, ErrNoRcpts) || errors.Is(err, ErrNullSender) || errors.Is(err, ErrNoReporter) {
			return
		}
		if err != nil {
			t.Fatalf("Compose of a parsed notice: %v\n%+v", err, r)
		}
		r2, err := Parse(b)
		if err != nil {
			t.Fatalf("Parse of a composed notice: %v\n%s", err, b)
		}
		if len(r2.Recipients) != len(r.Recipients) {
			t.Fatalf("%d recipients became %d:\n%s", len(r.Recipients), len(r2.Recipients), b)
		}
		for i := range r.Recipients {
			if a, b := r.Recipients[i].status(), r2.Recipients[i].status(); a != b {
				t.Fatalf("recipient %d: status %v became %v", i, a, b)
			}
		}
	})
}
