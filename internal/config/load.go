package config

import (
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultName is how errors name the embedded default.
const DefaultName = "(embedded default)"

// Default returns the embedded default configuration's text.
func Default() []byte { return defaultYAML }

// Load reads, decodes and checks the config file at path. On any problem it
// returns Errors listing all of them, each with file, line and key.
func Load(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("cannot read config: %v", pathErr(err))}}
	}
	return Parse(path, src)
}

// LoadDefault loads the embedded default, with relative paths resolved
// from the current directory.
func LoadDefault() (*Config, error) { return Parse("", defaultYAML) }

// Parse decodes and checks config text. file names it in errors and is
// the base for relative paths ("" for the embedded default: the current
// directory).
func Parse(file string, src []byte) (*Config, error) {
	c, err := parse(file, src)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// LoadLenient is Load that also returns what could be read of a config
// with problems (nil after a syntax error), for tools that need one
// setting of it, like the admin API's address, whatever else is wrong.
func LoadLenient(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("cannot read config: %v", pathErr(err))}}
	}
	return parse(path, src)
}

func parse(file string, src []byte) (*Config, error) { return parseFor(file, src, runtime.GOOS) }

// parseFor is parse with the paths judged as goos takes them, so that
// tests on one system check what another refuses.
func parseFor(file string, src []byte, goos string) (*Config, error) {
	name := file
	if name == "" {
		name = DefaultName
	}
	if e, bad := notText(name, src); bad {
		return nil, Errors{e}
	}
	d := newDecoder(name)
	c := &Config{File: file, Source: src, lines: d.lines}
	// Notepad's "UTF-8 with BOM" and Windows PowerShell's Out-File
	// -Encoding utf8 start the file with a byte order mark; YAML 1.2 §5.2
	// allows one there, but go-yaml would read it as part of the first key.
	d.parse(bytes.TrimPrefix(src, []byte("\uFEFF")), c)
	d.checkPaths(c, goos)
	decodeErrs := len(d.errs)
	if decodeErrs > 0 && c.ReceiveConnectors == nil && d.errs[0].Key == "" {
		return nil, d.errs // a syntax error: there is nothing to check
	}
	ck := &checker{d: d, c: c, base: baseDir(file)}
	ck.applyDefaults()
	ck.check()
	if len(d.errs) > 0 {
		return c, dropCascades(d.errs, decodeErrs).sorted()
	}
	return c, nil
}

// dropCascades removes check errors about a key whose value could not be
// decoded (or a key inside or around it): the decoding error already says
// what is wrong there, and a check of the zero value left behind would
// only confuse.
func dropCascades(errs Errors, decoded int) Errors {
	out := errs[:decoded:decoded]
	for _, e := range errs[decoded:] {
		related := false
		for _, d := range errs[:decoded] {
			if within(e.Key, d.Key) || within(d.Key, e.Key) || d.covers != "" && within(e.Key, d.covers) {
				related = true
				break
			}
		}
		if !related {
			out = append(out, e)
		}
	}
	return out
}

// within reports whether key path a is b or inside it.
func within(a, b string) bool {
	return a == b || len(a) > len(b) && strings.HasPrefix(a, b) && (a[len(b)] == '.' || a[len(b)] == '[')
}

func baseDir(file string) string {
	if file == "" {
		return "."
	}
	return filepath.Dir(file)
}

// pathErr drops the repeated path from *PathError so messages read well.
func pathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
