//go:build windows

package config

import (
	"errors"
	"fmt"
	"syscall"
)

// Winsock's codes: Go's syscall.EADDRINUSE and friends are invented
// numbers on Windows that no socket call returns.
const (
	wsaEACCES        = syscall.Errno(10013)
	wsaEADDRINUSE    = syscall.Errno(10048)
	wsaEADDRNOTAVAIL = syscall.Errno(10049)
)

// privilegedPorts: Windows lets any user listen on any port.
const privilegedPorts = false

// denied: WSAEACCES on bind means a port Windows reserves (Hyper-V,
// WSL and Docker reserve ranges) or one another program holds exclusively.
const denied = "Windows does not allow it: the port is reserved (netsh interface ipv4 show excludedportrange protocol=tcp lists the reserved ranges) or held exclusively by another program (netstat -ano); use another port"

const listAddrs = "ipconfig"

func addrInUse(err error) bool {
	return errors.Is(err, wsaEADDRINUSE) || errors.Is(err, syscall.EADDRINUSE)
}

func addrNotAvail(err error) bool {
	return errors.Is(err, wsaEADDRNOTAVAIL) || errors.Is(err, syscall.EADDRNOTAVAIL)
}

func isDenied(err error) bool { return errors.Is(err, wsaEACCES) }

// findListener is the command that names the program on port: the last
// column of netstat -ano is its process id.
func findListener(port int) string {
	return fmt.Sprintf(`find it with: netstat -ano | findstr ":%d "`, port)
}
