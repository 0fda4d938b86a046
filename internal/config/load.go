package config

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
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
	name := file
	if name == "" {
		name = DefaultName
	}
	d := newDecoder(name)
	c := &Config{File: file, Source: src}
	d.parse(src, c)
	if len(d.errs) > 0 {
		// Decoding problems make later checks misleading (a key that was
		// misspelt looks missing); report those first and alone.
		return nil, d.errs.sorted()
	}
	ck := &checker{d: d, c: c, base: baseDir(file)}
	ck.applyDefaults()
	ck.check()
	if len(d.errs) > 0 {
		return nil, d.errs.sorted()
	}
	return c, nil
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
