//go:build windows

package delivery

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// wsaNoData is WSANO_DATA, GetAddrInfoW's answer (with no
// node.dns_servers, Windows' own resolver) for a name that exists with no
// record of the type asked: an answer, as NODATA is from Go's resolver.
const wsaNoData = syscall.Errno(11004)

// noData reports whether e is WSANO_DATA. Go counts only
// WSAHOST_NOT_FOUND, DNS_ERROR_RCODE_NAME_ERROR and DNS_INFO_NO_RECORDS
// as not found (net/lookup_windows.go) and keeps of any other code only
// its text, which Go writes the same way here (in English where Windows
// has that language, else in the system's).
func noData(e *net.DNSError) bool {
	return errors.Is(e, wsaNoData) || e.Err == os.NewSyscallError("getaddrinfow", wsaNoData).Error()
}
