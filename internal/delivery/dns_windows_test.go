package delivery

import (
	"context"
	"net"
	"os"
	"syscall"
	"testing"
)

// With no node.dns_servers, Windows' GetAddrInfoW answers WSANO_DATA
// (11004) for a name that exists with no record of the type asked. Go
// counts only 11001, 9003 and 9501 as not found (net/lookup_windows.go)
// and keeps of the code only its text, so a domain with no MX and no
// address was retried until expiry instead of bouncing at once. Runs on
// the Windows CI only.
func TestNotFoundWSANoData(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"WSANO_DATA as Go reports it", &net.DNSError{Err: os.NewSyscallError("getaddrinfow", syscall.Errno(11004)).Error(), Name: "nodata.example"}, true},
		{"WSANO_DATA wrapped", &net.DNSError{Err: "no data", Name: "nodata.example", UnwrapErr: os.NewSyscallError("getaddrinfow", syscall.Errno(11004))}, true},
		{"WSAHOST_NOT_FOUND", &net.DNSError{Err: "no such host", Name: "nx.example", IsNotFound: true}, true},
		{"WSATRY_AGAIN", &net.DNSError{Err: os.NewSyscallError("getaddrinfow", syscall.Errno(11002)).Error(), Name: "slow.example", IsTemporary: true}, false},
		{"a timeout", &net.DNSError{Err: "i/o timeout", Name: "slow.example", IsTimeout: true, UnwrapErr: context.DeadlineExceeded}, false},
	} {
		if got := notFound(tc.err); got != tc.want {
			t.Errorf("%s: notFound(%v) = %v; want %v", tc.name, tc.err, got, tc.want)
		}
	}
}
