//go:build windows

package smtpclient

import (
	"errors"
	"syscall"
)

// isReset reports whether err is the server resetting the connection.
// Go's syscall.ECONNRESET and EPIPE are invented numbers on Windows that
// no socket call returns: a reset arrives as WSAECONNRESET, a connection
// the stack gave up on as WSAECONNABORTED (Go's net/error_windows.go
// takes these two), and an overlapped read on a reset connection can
// fail with ERROR_NETNAME_DELETED ("The specified network name is no
// longer available").
func isReset(err error) bool {
	return errors.Is(err, syscall.WSAECONNRESET) || errors.Is(err, syscall.WSAECONNABORTED) ||
		errors.Is(err, syscall.ERROR_NETNAME_DELETED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
