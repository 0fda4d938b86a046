//go:build !windows

package config

import (
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
)

// What each refusal of the system says to do. These errors are made up:
// the tests run as root in CI, which may bind any port, and no test can
// make an address not this machine's on every machine.
func TestListenErrorSaysWhatToDo(t *testing.T) {
	cfg, err := Parse("sluice.yaml", []byte(`receive_connectors:
  - name: Printers
    bindings: ["0.0.0.0:25", "10.9.9.9:2525"]
    remote_ip_ranges: [10.0.0.0/8]
    permissions: [anonymous]
send_connectors: [{name: Drop, address_spaces: ["*"], directory: drop}]
`))
	if err != nil {
		t.Fatal(err)
	}
	opErr := func(b Binding, errno syscall.Errno) error {
		return &net.OpError{Op: "listen", Net: "tcp4", Addr: net.TCPAddrFromAddrPort(b.AddrPort), Err: os.NewSyscallError("bind", errno)}
	}
	rc := cfg.ReceiveConnectors[0]
	for _, tc := range []struct {
		name  string
		b     Binding
		errno syscall.Errno
		want  string
	}{
		{"a port below 1024 as another user than root", rc.Bindings[0], syscall.EACCES,
			`sluice.yaml:3: receive_connectors[0].bindings[0]: cannot listen on 0.0.0.0:25 for receive connector "Printers": ports below 1024 are for root only; run Sluice as root, or allow the binary to use them (setcap cap_net_bind_service=+ep `},
		{"an address of another machine", rc.Bindings[1], syscall.EADDRNOTAVAIL,
			`sluice.yaml:3: receive_connectors[0].bindings[1]: cannot listen on 10.9.9.9:2525 for receive connector "Printers": the address is not one of this machine's (ip addr lists them); give one of its addresses, or 0.0.0.0 for all of them`},
		{"a port a security policy forbids", rc.Bindings[1], syscall.EACCES,
			`sluice.yaml:3: receive_connectors[0].bindings[1]: cannot listen on 10.9.9.9:2525 for receive connector "Printers": the system does not allow it (permission denied); a security policy such as SELinux or AppArmor may forbid this port: allow it there, or use another port`},
		{"anything else: the system's words without the address again", rc.Bindings[1], syscall.EMFILE,
			`sluice.yaml:3: receive_connectors[0].bindings[1]: cannot listen on 10.9.9.9:2525 for receive connector "Printers": bind: too many open files`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := cfg.BindingError(tc.b, opErr(tc.b, tc.errno)).Error()
			if !strings.HasPrefix(got, tc.want) || strings.Count(got, tc.b.String()) != 1 {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}
