package config

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem in a config file: where it is and what to change.
type Error struct {
	File string // path as given, "(embedded default)" for the built-in one
	Line int    // 1-based, 0 when the problem has no single place
	Key  string // key path, "receive_connectors[1].remote_ip_ranges[0]"
	Msg  string // what is wrong and what to write instead

	covers string // a misspelt key's intended path, whose checks it makes moot
	cause  error  // the system's error behind a problem found after load
}

// Unwrap returns the system's error behind a problem found when Sluice
// used a setting (errors.Is(err, syscall.EADDRINUSE)), nil for the load's own.
func (e Error) Unwrap() error { return e.cause }

func (e Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one load, sorted by line.
type Errors []Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

func (es Errors) sorted() Errors {
	sort.SliceStable(es, func(i, j int) bool { return es[i].Line < es[j].Line })
	return es
}
