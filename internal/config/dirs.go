package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Directories Sluice writes to (node.data_dir, a send connector's drop
// directory) are checked at load as the user that loads the config, so
// that `sluice config check`, a start and a reload name the setting to
// change instead of failing later with the system's "mkdir ...:
// permission denied". Nothing is left behind here: a check must not
// change the system it checks (on Windows, which decides by ACLs, it
// tries what Sluice will do and undoes it at once).

// checkDirs checks node.data_dir and the drop directories.
func (k *checker) checkDirs() {
	bad := dirProblem(k.c.Node.DataDir, k.c.Node.DataDir, "node.data_dir")
	if bad != "" {
		k.errorf("node.data_dir", "%s", bad)
	}
	for i, sc := range k.c.SendConnectors {
		if sc.Delivery != DeliveryDirectory || sc.Directory == "" {
			continue
		}
		// Under a data_dir that has a problem, that problem is the one to fix.
		if bad != "" && inside(sc.Directory, k.c.Node.DataDir) {
			continue
		}
		key := fmt.Sprintf("send_connectors[%d].directory", i)
		if msg := dirProblem(sc.Directory, sc.Directory, key); msg != "" {
			k.errorf(key, "%s", msg)
		}
	}
}

// inside reports whether path is dir or under it.
func inside(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// dirProblem says why this process could not create or write directory
// path (root or inside it, root being the setting's value), ending with
// what to do about it; "" when it could.
func dirProblem(path, root, key string) string {
	for d, first := filepath.Clean(path), true; ; d, first = filepath.Dir(d), false {
		// A Stat error (missing, a file on the way, not searchable) sends
		// the search up to the ancestor that explains it.
		fi, err := os.Stat(d)
		if err == nil {
			switch {
			case !fi.IsDir() && first && d != filepath.Clean(root):
				return fmt.Sprintf("%s is a file, but Sluice keeps a directory there; move that file away, or change %s", d, key)
			case !fi.IsDir() && first:
				return fmt.Sprintf("%s is a file, not a directory; give a directory (Sluice creates it if it does not exist), or change %s", d, key)
			case !fi.IsDir():
				return fmt.Sprintf("%s cannot be created: %s is a file, not a directory; move that file away, or change %s", path, d, key)
			case writable(d) != nil && first:
				return fmt.Sprintf("%s is not writable by %s; %s, or change %s", d, who(), grant(root), key)
			case first:
				// It may make the files it keeps there: writable checked.

			// Above the directory it keeps, Sluice only makes directories:
			// on NTFS a right apart from making files (C:\ lets users
			// create folders in it, not files).
			case canMkdir(d) != nil && inside(d, root):
				// A directory Sluice makes in root: root's owner is wrong.
				return fmt.Sprintf("%s cannot be created: %s is not writable by %s; %s, or change %s", path, d, who(), grant(root), key)
			case canMkdir(d) != nil:
				return fmt.Sprintf("%s cannot be created: %s is not writable by %s; %s, or change %s", path, d, who(), create(root), key)
			}
			return ""
		}
		if filepath.Dir(d) == d {
			return rootProblem(path, d, key, err)
		}
	}
}

// rootProblem says why path cannot be created when not even its root
// (on Windows a drive or a share) can be looked at: the walk up from
// path ended there with err.
func rootProblem(path, root, key string, err error) string {
	if advice := MissingPathAdvice(path, err); advice != "" {
		return fmt.Sprintf("%s cannot be created: %s, or change %s", path, advice, key)
	}
	return fmt.Sprintf("%s cannot be created: %s cannot be read by %s: %s; change %s", path, root, who(), errText(err), key)
}

// errText is err without the path a *fs.PathError repeats, nor the full
// stop that ends Windows' texts ("Access is denied.").
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return strings.TrimSuffix(err.Error(), ".")
}

// ErrorAt is a problem with the setting at key found after loading, when
// Sluice uses it (a port another program holds, a directory it may not
// write): an Error at that key's line, like the load's own.
func (c *Config) ErrorAt(key, format string, args ...any) Error {
	file := c.File
	if file == "" {
		file = DefaultName
	}
	return Error{File: file, Line: lineOf(c.lines, key), Key: key, Msg: fmt.Sprintf(format, args...)}
}

// DirError explains err, from creating or writing something under root,
// the value of the directory setting key, as what to change; ok is false
// when err is not about a path or nothing can be found wrong with it.
func (c *Config) DirError(key, root string, err error) (e Error, ok bool) {
	var pe *fs.PathError
	if !errors.As(err, &pe) || !filepath.IsAbs(pe.Path) {
		return Error{}, false
	}
	p := filepath.Clean(pe.Path)
	if fi, serr := os.Stat(p); serr == nil && !fi.IsDir() && errors.Is(err, fs.ErrPermission) {
		// A file left by a run as another user, e.g. root's sluice.lock.
		e := c.ErrorAt(key, "%s is not writable by %s; %s, or change %s", p, who(), grant(root), key)
		e.cause = err
		return e, true
	}
	dir := p
	if pe.Op != "mkdir" {
		dir = filepath.Dir(p) // a file that cannot be created in it
	}
	msg := dirProblem(dir, root, key)
	if msg == "" {
		return Error{}, false
	}
	e = c.ErrorAt(key, "%s", msg)
	e.cause = err
	return e, true
}

func lineOf(lines map[string]int, path string) int {
	for p := path; p != ""; {
		if l, ok := lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}
