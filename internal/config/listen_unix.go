//go:build !windows

package config

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
)

// privilegedPorts: Unix keeps ports below 1024 for root (Linux: or the
// CAP_NET_BIND_SERVICE capability).
const privilegedPorts = true

// denied: EACCES on a port of 1024 or above comes from a security policy.
const denied = "the system does not allow it (permission denied); a security policy such as SELinux or AppArmor may forbid this port: allow it there, or use another port"

const listAddrs = "ip addr"

func addrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

func addrNotAvail(err error) bool { return errors.Is(err, syscall.EADDRNOTAVAIL) }

func isDenied(err error) bool { return errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) }

// findListener is the command that names the program on port.
func findListener(port int) string {
	if runtime.GOOS == "linux" {
		return fmt.Sprintf("find it with: ss -ltnp 'sport = :%d'", port)
	}
	return fmt.Sprintf("find it with: lsof -nP -iTCP:%d -sTCP:LISTEN", port)
}
