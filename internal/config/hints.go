package config

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// What to change: the hints config errors add for the mistakes admins make.

// boolHint shows what was written where a boolean belongs and, for the
// usual near-misses, what to write: a quoted "true" is text, and YAML 1.1's
// yes/no/on/off (Ansible's habit) are text in YAML 1.2.
func boolHint(n ast.Node) string {
	s, ok := scalarText(n)
	if !ok {
		return kindName(n)
	}
	word := strings.ToLower(s)
	// Unquoted, true and false would have been a BoolNode.
	if _, text := n.(*ast.StringNode); text && (word == "true" || word == "false") {
		return fmt.Sprintf("%q in quotes, which is text; write %s without quotes", s, word)
	}
	switch word {
	case "yes", "on", "y":
		return fmt.Sprintf("%q; write true", s)
	case "no", "off", "n":
		return fmt.Sprintf("%q; write false", s)
	}
	return fmt.Sprintf("%q", s)
}

// numberHint shows what was written where a whole number belongs, as the
// admin wrote it: the node's own text keeps a quoted value's quotes,
// which %q would quote again ("\"many\"").
func numberHint(n ast.Node) string {
	if s, ok := scalarText(n); ok {
		return fmt.Sprintf("%q", s)
	}
	return kindName(n)
}

// hostPortMapping recognises what YAML makes of an unquoted host:port in
// a flow collection inside { }: a mapping of the host to the port.
func hostPortMapping(n ast.Node) bool {
	var pair *ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingValueNode:
		pair = m
	case *ast.MappingNode:
		if len(m.Values) != 1 {
			return false
		}
		pair = m.Values[0]
	default:
		return false
	}
	_, keyOK := scalarText(pair.Key)
	_, portOK := pair.Value.(*ast.IntegerNode)
	return keyOK && portOK
}

// missingSpace recognises "hostname:relay.contoso.com" where a mapping
// should be: without a space after the colon YAML reads one text value.
func missingSpace(n ast.Node, t reflect.Type) string {
	s, ok := scalarText(n)
	if !ok {
		return ""
	}
	key, value, ok := strings.Cut(s, ":")
	if _, known := yamlFields(t)[key]; !ok || !known {
		return ""
	}
	return fmt.Sprintf("; put a space after the colon: %s: %s", key, value)
}

// nestedField names the section of t that has key, for a key written one
// level too high: max_message_size on a connector instead of under
// limits:, certificate instead of under tls:.
func nestedField(key string, t reflect.Type) string {
	for i := 0; i < t.NumField(); i++ { // in field order, so the answer is stable
		f := t.Field(i)
		name := f.Tag.Get("yaml")
		if name == "" || name == "-" || f.Type.Kind() != reflect.Struct || reflect.PointerTo(f.Type).Implements(scalarType) {
			continue
		}
		if _, ok := yamlFields(f.Type)[key]; ok {
			return name
		}
	}
	return ""
}

// suggest names the closest known key, for typos like "remote_ip_range",
// or lists the known keys when none is close.
func suggest(key string, fields map[string]int) (string, string) {
	best, bestD := "", max(3, len(key)/3+1)
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
		if dist := editDistance(key, k); dist < bestD {
			best, bestD = k, dist
		}
	}
	if best != "" {
		return best, fmt.Sprintf("; did you mean %q?", best)
	}
	sort.Strings(names)
	return "", "; known keys here: " + strings.Join(names, ", ")
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

var duplicateKey = regexp.MustCompile(`^mapping key "(.*)" already defined at \[(\d+):\d+\]$`)

// syntaxHint adds what to change to go-yaml's messages for the mistakes
// admins make, or rewrites them where go-yaml's words would not help.
func syntaxHint(msg string) string {
	if m := duplicateKey.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%q is given twice here (also on line %s); keep one", m[1], m[2])
	}
	switch {
	case strings.Contains(msg, "'\t'"):
		return "a tab; YAML indents with spaces only: replace the tab with spaces"
	case strings.Contains(msg, "unknown escape character"):
		return msg + `; in double quotes \ starts an escape: write a Windows path in single quotes ('C:\sluice\relay.pem') or with / instead of \`
	case strings.Contains(msg, "mapping value is not allowed in this context"):
		return msg + `; put a value that holds ": " in quotes (banner: "Welcome: relay"), and check this line's indentation`
	case strings.Contains(msg, "value is not allowed in this context"):
		return msg + "; check this line's indentation against the lines above"
	}
	return msg
}
