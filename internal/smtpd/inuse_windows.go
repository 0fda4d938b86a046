//go:build windows

package smtpd

import (
	"errors"
	"syscall"
)

// wsaEADDRINUSE is Winsock's "address already in use": Go's
// syscall.EADDRINUSE is an invented number on Windows that no socket
// call returns.
const wsaEADDRINUSE = syscall.Errno(10048)

func addrInUse(err error) bool {
	return errors.Is(err, wsaEADDRINUSE) || errors.Is(err, syscall.EADDRINUSE)
}
