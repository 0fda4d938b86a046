package tracking

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// TestBlocks: the lines come out whole, whatever the reads return and
// however long a line is; a line longer than maxLine is skipped.
func TestBlocks(t *testing.T) {
	lines := []string{"a", "", strings.Repeat("b", 3000), "c", strings.Repeat("d", 100), "e"}
	text := strings.Join(lines, "\n")
	for _, tc := range []struct {
		name string
		r    io.Reader
		buf  int
	}{
		{"one read", strings.NewReader(text), 1 << 16},
		{"byte by byte", iotest.OneByteReader(strings.NewReader(text)), 1 << 16},
		{"a buffer smaller than a line", strings.NewReader(text), 64},
		{"half reads, small buffer", iotest.HalfReader(strings.NewReader(text)), 7},
	} {
		var got []string
		_, err := blocks(tc.r, make([]byte, tc.buf), func(b []byte) {
			got = append(got, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
		})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, "\n") != text {
			t.Errorf("%s: lines\n%q\nwant\n%q", tc.name, got, lines)
		}
	}

	huge := "first\n" + strings.Repeat("x", maxLine+10) + "\nlast\n"
	var got []string
	if _, err := blocks(strings.NewReader(huge), make([]byte, 1<<20), func(b []byte) {
		got = append(got, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "|") != "first|last" {
		t.Errorf("a line over maxLine should be skipped, the rest read: %d lines", len(got))
	}

	if _, err := blocks(iotest.ErrReader(io.ErrUnexpectedEOF), make([]byte, 16), func([]byte) {}); err != io.ErrUnexpectedEOF {
		t.Errorf("a read error: %v", err)
	}
}

// TestPicker checks the prefilter on its own: which lines of a block it
// lets through.
func TestPicker(t *testing.T) {
	block := []byte(strings.Join([]string{
		`{"time":"2026-11-24T10:00:00Z","event":"RECEIVE","msg":"0a","sender":"App@Contoso.com"}`,
		`{"time":"2026-11-24T11:00:00Z","event":"SEND","msg":"0b","sender":"other@contoso.com","reply":"app@contoso.com said hi"}`,
		`{"time":"2026-11-24T12:00:00Z","event":"DSN","msg":"0c","sender":"x@contoso.com","related":"0a"}`,
		`{"time":"2026-11-24T13:00:00Z","event":"SEND","msg":"0a","sender":"APP@CONTOSO.COM"}`,
		`{"time":"2026-11-24T14:00:00Z","event":"FAIL","sender":"app@contoso.com"}`,
	}, "\n") + "\n")
	for _, tc := range []struct {
		name      string
		pf        prefilter
		checkTime bool
		cutoff    string // RFC 3339
		want      string // the times (hours) of the lines let through
	}{
		{"everything", prefilter{}, false, "", "10 11 12 13 14"},
		{"a needle in any case, anywhere in the line", prefilter{fold: [][]byte{[]byte("app@contoso.com")}}, false, "", "10 11 13 14"},
		{"two needles", prefilter{fold: [][]byte{[]byte("app@contoso.com"), []byte("said")}}, false, "", "11"},
		{"exact", prefilter{exact: [][]byte{eventKey(EventSend)}}, false, "", "11 13"},
		{"needle and exact", prefilter{fold: [][]byte{[]byte("app@")}, exact: [][]byte{eventKey(EventSend)}}, false, "", "11 13"},
		{"ids: msg or related", prefilter{ids: map[string]bool{"0a": true}}, false, "", "10 12 13"},
		{"ids and exact", prefilter{ids: map[string]bool{"0a": true}, exact: [][]byte{[]byte(`"0a"`)}}, false, "", "10 12 13"},
		{"window", prefilter{since: parseTime(t, "2026-11-24T11:00:00Z"), until: parseTime(t, "2026-11-24T13:00:00Z")}, true, "", "11 12 13"},
		{"window on a day it does not cut", prefilter{since: parseTime(t, "2026-11-24T11:00:00Z")}, false, "", "10 11 12 13 14"},
		{"cutoff", prefilter{}, false, "2026-11-24T12:00:00Z", "10 11 12"},
		{"cutoff and a needle", prefilter{fold: [][]byte{[]byte("app@contoso.com")}}, false, "2026-11-24T12:00:00Z", "10 11"},
	} {
		p := &picker{pf: &tc.pf, checkTime: tc.checkTime}
		if tc.cutoff != "" {
			cut := parseTime(t, tc.cutoff)
			p.cutoff = func() time.Time { return cut }
		}
		var got []string
		p.each(block, func(line []byte) { got = append(got, string(field(line, `"time":"`))[11:13]) })
		if s := strings.Join(got, " "); s != tc.want {
			t.Errorf("%s: %s; want %s", tc.name, s, tc.want)
		}
	}
}

func parseTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}
