package smtpclient

import (
	"net"
	"os"
	"syscall"
	"testing"
)

// Windows reports a reset with Winsock's own codes, not the invented
// syscall.ECONNRESET: each is the server hanging up, which delivery
// words as such (before the greeting: "closed the connection before its
// greeting"), not "cannot connect". Runs on the Windows CI only.
func TestClosedByWinsockReset(t *testing.T) {
	for _, tc := range []struct {
		errno  syscall.Errno
		closed bool
	}{
		{syscall.WSAECONNRESET, true},
		{syscall.WSAECONNABORTED, true},
		{syscall.ERROR_NETNAME_DELETED, true},
		{syscall.Errno(10060), false}, // WSAETIMEDOUT
		{syscall.Errno(10065), false}, // WSAEHOSTUNREACH
	} {
		err := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("wsarecv", tc.errno)}
		if got := (&ConnError{Command: "greeting", Err: err}).Closed(); got != tc.closed {
			t.Errorf("Closed() = %v for %v (%d); want %v", got, tc.errno, uint32(tc.errno), tc.closed)
		}
	}
}
