package config

import (
	"bytes"
	"regexp"
)

// What the bytes of a config file must be before YAML reads them.

// notText recognises a file that is not UTF-8 text at all. Windows
// PowerShell 5.1 writes UTF-16 with `>` and Out-File, so `sluice config
// default > sluice.yaml` makes one; go-yaml would read it as one long
// garbled value. NUL bytes (UTF-16 without a byte order mark, or a binary
// file) cannot occur in YAML text either (YAML 1.2 §5.1).
func notText(name string, src []byte) (Error, bool) {
	utf16 := bytes.HasPrefix(src, []byte{0xFF, 0xFE}) || bytes.HasPrefix(src, []byte{0xFE, 0xFF})
	if !utf16 && bytes.IndexByte(src, 0) < 0 {
		return Error{}, false
	}
	return Error{File: name, Msg: "the file is UTF-16 or binary, not UTF-8 text (Windows PowerShell's > and Out-File write UTF-16); " +
		"save it as UTF-8, e.g. in Notepad with Save As, Encoding UTF-8, or in PowerShell with Out-File -Encoding utf8"}, true
}

var docMarker = regexp.MustCompile(`^---[ \t]*(#.*)?\r?$`)

// dropEmptyDocuments blanks out each "---" that starts a document with
// nothing but comments in it: one before the config, or left over after
// it, is harmless, but go-yaml ends the stream at an empty document and
// silently drops everything after it ("---\n---\nnode: ..." read as an
// empty config). Blank lines keep the line numbers.
func dropEmptyDocuments(src []byte) []byte {
	lines := bytes.SplitAfter(src, []byte("\n"))
	marker, content := -1, false // the last "---" line, and whether its document has content yet
	// blank keeps only the line ending; src itself is not changed.
	blank := func(i int) {
		lines[i] = lines[i][len(bytes.TrimRight(lines[i], "\r\n")):]
	}
	changed := false
	for i, l := range lines {
		switch t := bytes.TrimSpace(l); {
		case docMarker.Match(bytes.TrimRight(l, "\n")):
			if marker >= 0 && !content {
				blank(marker)
				changed = true
			}
			marker, content = i, false
		case len(t) > 0 && t[0] != '#':
			content = true
		}
	}
	if marker >= 0 && !content {
		blank(marker)
		changed = true
	}
	if !changed {
		return src
	}
	return bytes.Join(lines, nil)
}
