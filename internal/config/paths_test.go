package config

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// On Windows a path that starts at a root without naming a drive
// (\drop, /var/lib/sluice) or that names a drive without its root
// (D:data) is not absolute: Go's filepath.IsAbs is false and the config
// joined it to the config file's directory without a word. Decided here
// for Windows on every system, so that Linux tests it too.
func TestWindowsPathProblem(t *testing.T) {
	for _, tc := range []struct {
		path, want string // want "": fine
	}{
		{path: `C:\Sluice\data`},
		{path: `c:/Sluice/data`},
		{path: `\\fileserver\drop\sluice`},
		{path: `//fileserver/drop/sluice`},
		{path: `\\?\C:\Sluice`},
		{path: `data`},
		{path: `.\data`},
		{path: `..\certs\relay.pem`},
		{path: ``},
		{path: `\drop`, want: `"\drop" has no drive letter, so it is not absolute on Windows and would be taken from the config file's directory; give a drive letter (C:\drop) or a UNC path (\\server\share\dir)`},
		{path: `/var/lib/sluice`, want: `"/var/lib/sluice" has no drive letter, so it is not absolute on Windows and would be taken from the config file's directory; give a drive letter (C:/var/lib/sluice) or a UNC path (\\server\share\dir)`},
		{path: `D:data`, want: `"D:data" names a drive but not a path from its root, so it depends on that drive's current directory; give a drive letter and root (D:\data) or a UNC path (\\server\share\dir)`},
		{path: `D:`, want: `"D:" names a drive but not a path from its root, so it depends on that drive's current directory; give a drive letter and root (D:\) or a UNC path (\\server\share\dir)`},
	} {
		if got := windowsPathProblem(tc.path, fromConfig); got != tc.want {
			t.Errorf("windowsPathProblem(%q) = %q\nwant %q", tc.path, got, tc.want)
		}
	}
}

// Every path setting refuses such a path at its own key and line, and
// only once: the file it names is not also reported missing.
func TestWindowsPathSettings(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sluice.yaml")
	src := `node:
  hostname: relay.contoso.com
  data_dir: \sluice
receive_connectors:
  - name: A
    bindings: ["127.0.0.1:2525"]
    remote_ip_ranges: [127.0.0.1]
    permissions: [anonymous]
    tls: {mode: starttls, certificate: /certs/relay.pem, key: D:relay.key}
send_connectors:
  - name: Drop
    address_spaces: ["*"]
    delivery: directory
    directory: \drop
    tls: {ca_file: /ca.pem, client_certificate: c:client.pem, client_key: /client.key}
admin:
  listen: 127.0.0.1:8025
  token_file: D:token.txt
  certificate: /admin.pem
  key: /admin.key
  client_ca: /clients.pem
secrets:
  key_file: /keys/sluice.key
`
	_, err := parseFor(file, []byte(src), "windows")
	var got []string
	if errs, ok := err.(Errors); ok {
		for _, e := range errs {
			got = append(got, fmt.Sprintf("%d: %s: %s", e.Line, e.Key, e.Msg))
		}
	}
	want := []string{
		`3: node.data_dir: "\sluice" has no drive letter, so it is`,
		`9: receive_connectors[0].tls.certificate: "/certs/relay.pem" has no drive letter,`,
		`9: receive_connectors[0].tls.key: "D:relay.key" names a drive but not a pat`,
		`14: send_connectors[0].directory: "\drop" has no drive letter, so it is not absolute on Windows and would be taken from node.data_dir;`,
		`15: send_connectors[0].tls.ca_file: "/ca.pem" has no drive letter, so it i`,
		`15: send_connectors[0].tls.client_certificate: "c:client.pem" names a drive but not a pa`,
		`15: send_connectors[0].tls.client_key: "/client.key" has no drive letter, so i`,
		`18: admin.token_file: "D:token.txt" names a drive but not a pat`,
		`19: admin.certificate: "/admin.pem" has no drive letter, so it`,
		`20: admin.key: "/admin.key" has no drive letter, so it`,
		`21: admin.client_ca: "/clients.pem" has no drive letter, so i`,
		`23: secrets.key_file: "/keys/sluice.key" has no drive letter,`,
	}
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = strings.HasPrefix(got[i], want[i])
	}
	if !ok {
		t.Errorf("got:\n%s\nwant lines starting:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
