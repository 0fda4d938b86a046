package delivery

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// RFC 8305 §4: the families alternate from the one the resolver's RFC
// 6724 order puts first, keeping that order within each, so that the
// first maxAddrsPerHost tries reach both families.
func TestInterleave(t *testing.T) {
	cases := []struct{ in, want string }{
		{"2001:db8::1 2001:db8::2 2001:db8::3 192.0.2.1 192.0.2.2", "2001:db8::1 192.0.2.1 2001:db8::2 192.0.2.2 2001:db8::3"},
		{"192.0.2.1 192.0.2.2 2001:db8::1", "192.0.2.1 2001:db8::1 192.0.2.2"},
		{"192.0.2.1 192.0.2.2 192.0.2.3", "192.0.2.1 192.0.2.2 192.0.2.3"},
		{"2001:db8::1", "2001:db8::1"},
	}
	for _, tc := range cases {
		var in []netip.Addr
		for _, s := range strings.Fields(tc.in) {
			in = append(in, netip.MustParseAddr(s))
		}
		var got []string
		for _, a := range interleave(slices.Clone(in)) {
			got = append(got, a.String())
		}
		if g := strings.Join(got, " "); g != tc.want {
			t.Errorf("interleave(%s) = %s; want %s", tc.in, g, tc.want)
		}
	}
}
