package config

import (
	"fmt"
	"path/filepath"
)

// pathSetting is a setting that names a file or directory; a relative
// one is taken from base (said in words). Every path setting is listed
// here, once: both the Windows check and the resolution of relative
// paths walk this list.
type pathSetting struct {
	key  string
	path *string
	base string
}

const (
	fromConfig  = "the config file's directory"
	fromDataDir = "node.data_dir"
)

// pathSettings lists the path settings of c, with their keys, node.data_dir
// first (the others may be taken from it).
func pathSettings(c *Config) []pathSetting {
	out := []pathSetting{{"node.data_dir", &c.Node.DataDir, fromConfig}}
	for i := range c.ReceiveConnectors {
		rc := &c.ReceiveConnectors[i]
		p := fmt.Sprintf("receive_connectors[%d].tls.", i)
		out = append(out, pathSetting{p + "certificate", &rc.TLS.Certificate, fromConfig}, pathSetting{p + "key", &rc.TLS.Key, fromConfig})
	}
	for i := range c.SendConnectors {
		sc := &c.SendConnectors[i]
		p := fmt.Sprintf("send_connectors[%d].", i)
		out = append(out, pathSetting{p + "directory", &sc.Directory, fromDataDir}, pathSetting{p + "tls.ca_file", &sc.TLS.CAFile, fromConfig},
			pathSetting{p + "tls.client_certificate", &sc.TLS.ClientCertificate, fromConfig}, pathSetting{p + "tls.client_key", &sc.TLS.ClientKey, fromConfig})
	}
	return append(out, pathSetting{"admin.token_file", &c.Admin.TokenFile, fromConfig}, pathSetting{"admin.certificate", &c.Admin.Certificate, fromConfig},
		pathSetting{"admin.key", &c.Admin.Key, fromConfig}, pathSetting{"admin.client_ca", &c.Admin.ClientCA, fromConfig},
		pathSetting{"secrets.key_file", &c.Secrets.KeyFile, fromConfig})
}

// resolvePaths makes every relative path setting absolute: from the
// config file's directory, or from node.data_dir, which is made absolute
// first (also against the working directory, so that logs say exactly
// where mail is).
func (k *checker) resolvePaths() {
	for _, s := range pathSettings(k.c) {
		if p := *s.path; p != "" && !filepath.IsAbs(p) {
			base := k.base
			if s.base == fromDataDir {
				base = k.c.Node.DataDir
			}
			*s.path = filepath.Join(base, p)
		}
		if s.path == &k.c.Node.DataDir {
			if abs, err := filepath.Abs(*s.path); err == nil {
				*s.path = abs
			}
		}
	}
}

// checkPaths refuses the path settings that goos does not take as the
// admin meant them. It runs with decoding, before relative paths are
// resolved: a check of the file such a path names would only repeat the
// problem (see dropCascades).
func (d *decoder) checkPaths(c *Config, goos string) {
	if goos != "windows" {
		return
	}
	for _, s := range pathSettings(c) {
		if msg := windowsPathProblem(*s.path, s.base); msg != "" {
			d.errs = append(d.errs, Error{File: d.file, Line: lineOf(d.lines, s.key), Key: s.key, Msg: msg})
		}
	}
}

// windowsPathProblem says what is wrong with p as a path on Windows
// when it looks absolute but is not: rooted without a drive (\drop,
// /var/lib/sluice, for which filepath.IsAbs is false, so it would be
// joined to base), or on a drive without its root
// (D:data, from that drive's current directory, which a service does not
// choose). Paths are quoted as given: %q would double each backslash.
// "" for an absolute or UNC path, or a plain relative one.
func windowsPathProblem(p, base string) string {
	const unc = `UNC path (\\server\share\dir)`
	sep := func(i int) bool { return len(p) > i && (p[i] == '\\' || p[i] == '/') }
	switch {
	case sep(0) && sep(1): // \\server\share, \\?\C:\
		return ""
	case sep(0):
		return fmt.Sprintf("\"%s\" has no drive letter, so it is not absolute on Windows and would be taken from %s; give a drive letter (C:%s) or a %s", p, base, p, unc)
	case len(p) >= 2 && p[1] == ':' && isASCIILetter(p[0]) && !sep(2):
		return fmt.Sprintf("\"%s\" names a drive but not a path from its root, so it depends on that drive's current directory; give a drive letter and root (%s\\%s) or a %s", p, p[:2], p[2:], unc)
	}
	return ""
}

func isASCIILetter(b byte) bool { return 'a' <= b|0x20 && b|0x20 <= 'z' }
