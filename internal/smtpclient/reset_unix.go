//go:build !windows

package smtpclient

import (
	"errors"
	"syscall"
)

// isReset reports whether err is the server resetting the connection:
// ECONNRESET on a read, EPIPE on a write after its reset.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
