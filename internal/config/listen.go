package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
)

// Why a listener could not be opened, said as what to do, at the line of
// the setting that asked for it: the system's "listen tcp4 127.0.0.1:25:
// bind: address already in use" names the address twice and the fix
// never. `sluice serve` and a refused reload report the same text.

// BindingError explains err, from listening on b, at the first receive
// connector binding that asks for b.
func (c *Config) BindingError(b Binding, err error) Error {
	key, names := "receive_connectors", []string(nil)
	for i, rc := range c.ReceiveConnectors {
		for j, x := range rc.Bindings {
			if x != b {
				continue
			}
			if names == nil {
				key = fmt.Sprintf("receive_connectors[%d].bindings[%d]", i, j)
			}
			names = append(names, rc.Name)
			break
		}
	}
	who := fmt.Sprintf("receive connector %q", strings.Join(names, `", "`))
	if len(names) > 1 {
		who = fmt.Sprintf("receive connectors %q", strings.Join(names, `", "`))
	}
	return c.ListenError(key, who, b.String(), int(b.Port()), err)
}

// ListenError explains err, from listening on addr for who (the admin
// API, a receive connector), as a problem with the setting at key.
func (c *Config) ListenError(key, who, addr string, port int, err error) Error {
	e := c.listenError(key, who, addr, port, err)
	e.cause = err
	return e
}

func (c *Config) listenError(key, who, addr string, port int, err error) Error {
	switch {
	case addrInUse(err):
		return c.ErrorAt(key, "cannot listen on %s for %s: another program listens there already (%s); stop it, or change %s",
			addr, who, findListener(port), key)
	case isDenied(err) && port < 1024 && privilegedPorts:
		return c.ErrorAt(key, "cannot listen on %s for %s: ports below 1024 are for root only; run Sluice as root, or allow the binary to use them (setcap cap_net_bind_service=+ep %s), or use a port of 1024 or above",
			addr, who, executable())
	case isDenied(err):
		return c.ErrorAt(key, "cannot listen on %s for %s: %s", addr, who, denied)
	case addrNotAvail(err):
		return c.ErrorAt(key, "cannot listen on %s for %s: the address is not one of this machine's (%s lists them); give one of its addresses, or 0.0.0.0 for all of them", addr, who, listAddrs)
	}
	return c.ErrorAt(key, "cannot listen on %s for %s: %v", addr, who, innerError(err))
}

// innerError drops net.OpError's "listen tcp4 127.0.0.1:25: ", which
// the message says already.
func innerError(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

func executable() string {
	if p, err := os.Executable(); err == nil {
		return p
	}
	return "/usr/local/bin/sluice"
}
