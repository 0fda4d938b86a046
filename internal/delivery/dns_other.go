//go:build !windows

package delivery

import "net"

// noData: Go's resolver reports NODATA as not found itself.
func noData(*net.DNSError) bool { return false }
