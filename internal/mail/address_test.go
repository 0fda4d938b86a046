package mail

import (
	"strings"
	"testing"
	"time"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		in        string
		null      bool // allow <>
		utf8      bool
		want      Address
		wantRest  string
		wantError error
	}{
		{in: "<bob@contoso.com>", want: "bob@contoso.com"},
		{in: "<Bob@Contoso.COM>", want: "Bob@contoso.com"},
		{in: "<bob@contoso.com> SIZE=100 BODY=8BITMIME", want: "bob@contoso.com", wantRest: "SIZE=100 BODY=8BITMIME"},
		{in: " <bob@contoso.com>", want: "bob@contoso.com"},
		{in: "bob@contoso.com", want: "bob@contoso.com"}, // printers omit the brackets
		{in: "bob@contoso.com SIZE=1", want: "bob@contoso.com", wantRest: "SIZE=1"},
		{in: "<>", null: true, want: Null},
		{in: "<> SIZE=1", null: true, want: Null, wantRest: "SIZE=1"},
		{in: "<>", wantError: ErrNullNotHere},
		{in: "<@relay1,@relay2:bob@contoso.com>", want: "bob@contoso.com"},
		{in: `<"bob smith"@contoso.com>`, want: `"bob smith"@contoso.com`},
		{in: `<"a>b"@contoso.com>`, want: `"a>b"@contoso.com`},
		{in: "<bob@[10.0.0.1]>", want: "bob@[10.0.0.1]"},
		{in: "<bob@[IPv6:2001:DB8::1]>", want: "bob@[IPv6:2001:db8::1]"},
		{in: "<postmaster>", want: "postmaster"},
		{in: "<bob@contoso.com.>", want: "bob@contoso.com"},
		{in: "<bob>", wantError: ErrNoDomain},
		{in: "<bob@>", wantError: ErrBadDomain},
		{in: "<bob@-contoso.com>", wantError: ErrBadDomain},
		{in: "<bob@contoso..com>", wantError: ErrBadDomain},
		{in: "<bob@[10.0.0.256]>", wantError: ErrBadDomain},
		{in: "<.bob@contoso.com>", wantError: ErrBadLocal},
		{in: "<bob.@contoso.com>", wantError: ErrBadLocal},
		{in: "<bo..b@contoso.com>", wantError: ErrBadLocal},
		{in: "<bo b@contoso.com>", wantError: ErrBadLocal},
		{in: "<bob@contoso.com", wantError: ErrNoBrackets},
		{in: "<bob@contoso.com>SIZE=1", wantError: ErrNoBrackets},
		{in: "", wantError: ErrEmptyPath},
		{in: "<" + strings.Repeat("a", 65) + "@contoso.com>", wantError: ErrLocalTooLong},
		{in: "<a@" + strings.Repeat("b.", 128) + "com>", wantError: ErrTooLong},
		{in: "<jörg@bücher.example>", wantError: ErrNonASCII},
		{in: "<jörg@bücher.example>", utf8: true, want: "jörg@bücher.example"},
		{in: "<JÖRG@BÜCHER.example>", utf8: true, want: "JÖRG@bücher.example"},
	}
	for _, tc := range tests {
		got, rest, err := ParsePath(tc.in, tc.null, tc.utf8)
		if err != tc.wantError || got != tc.want || rest != tc.wantRest {
			t.Errorf("ParsePath(%q) = %q, %q, %v; want %q, %q, %v", tc.in, got, rest, err, tc.want, tc.wantRest, tc.wantError)
		}
	}
}

func TestAddressParts(t *testing.T) {
	a := Address(`"a@b"@contoso.com`)
	if a.Local() != `"a@b"` || a.Domain() != "contoso.com" {
		t.Errorf("Local %q Domain %q", a.Local(), a.Domain())
	}
	if Null.String() != "<>" || Null.Path() != "<>" || !Null.IsNull() {
		t.Error("null path renders wrong")
	}
}

func TestID(t *testing.T) {
	seen := map[ID]bool{}
	now := time.Now()
	var prev ID
	for i := 0; i < 60000; i++ { // the counter guarantees 65536 unique ids per millisecond
		id := newIDAt(now)
		if seen[id] {
			t.Fatalf("duplicate id %s after %d", id, i)
		}
		seen[id] = true
		if _, err := ParseID(string(id)); err != nil {
			t.Fatalf("ParseID(%s): %v", id, err)
		}
		prev = id
	}
	if got := prev.Time(); got.UnixMilli() != now.UnixMilli() {
		t.Errorf("Time() = %v, want %v", got, now)
	}
	later := newIDAt(now.Add(time.Millisecond))
	if later <= prev && later[:10] <= prev[:10] {
		t.Errorf("ids do not sort by time: %s then %s", prev, later)
	}
	for _, bad := range []string{"", "../../etc/passwd", "06H0PO0E3C004V99", "06h0po0e3c004v9w"} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) accepted", bad)
		}
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"<bob@contoso.com> SIZE=1", "<>", `<"a\"b"@x.y>`, "<@a,@b:c@d>", "<x@[IPv6:::1]>", "jörg@bücher.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, _, err := ParsePath(s, true, true)
		if err != nil {
			return
		}
		// Whatever parses must parse again to itself from its wire form,
		// or the queue would store an address it cannot send.
		b, rest, err := ParsePath(a.Path(), true, true)
		if err != nil || b != a || rest != "" {
			t.Fatalf("%q parsed to %q, whose path %q parses to %q, %q, %v", s, a, a.Path(), b, rest, err)
		}
	})
}
