package config

import (
	"bytes"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/sluice-relay/sluice/internal/secret"
)

// scalar is implemented by value types that parse and check themselves
// (CIDR, Size, Duration, ...). The error text says what to write instead.
type scalar interface {
	setScalar(s string) error
}

// decoder turns a YAML AST into config structs. It is our own rather than
// go-yaml's Unmarshal because a strict decoder stops at the first problem,
// and `sluice config check` must list every problem with its line.
type decoder struct {
	file    string
	errs    Errors
	lines   map[string]int  // key path → line, for checks after decoding
	given   map[string]bool // key paths written with a value (not empty, not ~)
	anchors map[string]ast.Node
	notUTF8 bool // the text has bytes that are not UTF-8
}

func newDecoder(file string) *decoder {
	return &decoder{file: file, lines: map[string]int{}, given: map[string]bool{}, anchors: map[string]ast.Node{}}
}

// parse reads YAML text into dst, a pointer to a struct.
func (d *decoder) parse(src []byte, dst any) {
	d.notUTF8 = !utf8.Valid(src)
	f, err := parser.ParseBytes(dropEmptyDocuments(src), 0)
	if err != nil {
		d.errs = append(d.errs, syntaxError(d.file, err))
		return
	}
	if len(f.Docs) > 1 {
		d.errorf(f.Docs[1].Body, "", "the file has more than one YAML document (--- starts another); keep one")
	}
	if len(f.Docs) == 0 || f.Docs[0].Body == nil {
		return
	}
	d.decode(f.Docs[0].Body, reflect.ValueOf(dst).Elem(), "")
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

func (d *decoder) errorf(n ast.Node, path, format string, args ...any) {
	d.errs = append(d.errs, Error{File: d.file, Line: line(n), Key: path, Msg: fmt.Sprintf(format, args...)})
}

func line(n ast.Node) int {
	if n == nil || n.GetToken() == nil {
		return 0
	}
	return n.GetToken().Position.Line
}

// resolve unwraps anchors, aliases and tags so decode sees plain nodes.
func (d *decoder) resolve(n ast.Node) ast.Node {
	for {
		switch v := n.(type) {
		case *ast.AnchorNode:
			if name, ok := v.Name.(*ast.StringNode); ok {
				d.anchors[name.Value] = v.Value
			}
			n = v.Value
		case *ast.AliasNode:
			target, ok := d.anchors[v.Value.String()]
			if !ok {
				return v
			}
			n = target
		case *ast.TagNode:
			n = v.Value
		default:
			return n
		}
	}
}

var scalarType = reflect.TypeFor[scalar]()

func (d *decoder) decode(n ast.Node, v reflect.Value, path string) {
	n = d.resolve(n)
	if _, ok := n.(*ast.AliasNode); ok {
		d.errorf(n, path, "unknown alias %s; define the anchor before using it", n.String())
		return
	}
	if _, isNull := n.(*ast.NullNode); isNull || n == nil {
		return // an empty value keeps the default
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	if v.Addr().Type().Implements(scalarType) {
		s, ok := scalarText(n)
		if !ok {
			hint := ""
			if hostPortMapping(n) {
				hint = `; inside { } or [ ] write an address:port in quotes, e.g. "10.0.0.1:25"`
			}
			d.errorf(n, path, "expected a single value, found %s%s", kindName(n), hint)
			return
		}
		if !d.utf8(n, path, s) {
			return
		}
		if err := v.Addr().Interface().(scalar).setScalar(s); err != nil {
			d.errorf(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.String:
		s, ok := scalarText(n)
		if !ok {
			d.errorf(n, path, "expected a text value, found %s", kindName(n))
			return
		}
		if !d.utf8(n, path, s) {
			return
		}
		if secret.IsEncrypted(s) {
			// Secret values decrypt themselves; any other text would go
			// upstream (or into a log) as enc:v1:... as it stands.
			d.errorf(n, path, "only a send connector's auth.password, oauth2.client_secret and oauth2.refresh_token are decrypted, so this would be used as it stands; write it in clear")
			return
		}
		v.SetString(s)
	case reflect.Bool:
		b, ok := n.(*ast.BoolNode)
		if !ok {
			d.errorf(n, path, "expected true or false, found %s", boolHint(n))
			return
		}
		v.SetBool(b.Value)
	case reflect.Int, reflect.Int64:
		s, ok := scalarText(n)
		i, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
		if !ok || err != nil || i < 0 {
			d.errorf(n, path, "expected a whole number of 0 or more, found %q", n.String())
			return
		}
		v.SetInt(i)
	default:
		panic(fmt.Sprintf("config: no decoder for %s at %s", v.Type(), path))
	}
}

// utf8 refuses a value with bytes that are not UTF-8, from a file saved
// as Windows-1252 or Latin-1: they would reach banners, logs and JSON as
// garbage. go-yaml has already turned each such byte into U+FFFD.
// Comments are not values, so an accent there does no harm.
func (d *decoder) utf8(n ast.Node, path, s string) bool {
	if !d.notUTF8 || !strings.ContainsRune(s, utf8.RuneError) {
		return true
	}
	d.errorf(n, path, "%q has bytes that are not UTF-8 (shown as \uFFFD; the file was saved in another encoding, e.g. Windows-1252); save the file as UTF-8", s)
	return false
}

func (d *decoder) decodeStruct(n ast.Node, v reflect.Value, path string) {
	var pairs []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		pairs = m.Values
	case *ast.MappingValueNode:
		pairs = []*ast.MappingValueNode{m}
	default:
		d.errorf(n, path, "expected a mapping of keys to values, found %s%s", kindName(n), missingSpace(n, v.Type()))
		return
	}
	fields := yamlFields(v.Type())
	for _, p := range pairs {
		key := p.Key.String()
		if _, merge := p.Key.(*ast.MergeKeyNode); merge {
			d.errorf(p.Key, path, "merge keys (<<) are not supported; repeat the keys")
			continue
		}
		sub := join(path, key)
		idx, ok := fields[key]
		if !ok {
			if under := nestedField(key, v.Type()); under != "" {
				d.errorf(p.Key, sub, "unknown key %q; it belongs under %s: (%s)", key, under, join(join(path, under), key))
				continue
			}
			near, hint := suggest(key, fields)
			d.errorf(p.Key, sub, "unknown key %q%s", key, hint)
			if near != "" {
				// Checks would now call the intended key missing; the
				// misspelling is the one problem to report.
				d.errs[len(d.errs)-1].covers = join(path, near)
			}
			continue
		}
		d.lines[sub] = line(p.Key)
		if _, isNull := d.resolve(p.Value).(*ast.NullNode); !isNull && p.Value != nil {
			d.given[sub] = true
		}
		d.decode(p.Value, v.Field(idx), sub)
	}
}

func (d *decoder) decodeSlice(n ast.Node, v reflect.Value, path string) {
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		// A single value where a list is expected is a list of one: admins
		// write `bindings: 0.0.0.0:25` as often as `[0.0.0.0:25]`.
		if _, isScalar := n.(ast.ScalarNode); isScalar {
			seq = &ast.SequenceNode{BaseNode: &ast.BaseNode{}, Values: []ast.Node{n}}
		} else {
			d.errorf(n, path, "expected a list, found %s", kindName(n))
			return
		}
	}
	out := reflect.MakeSlice(v.Type(), len(seq.Values), len(seq.Values))
	for i, item := range seq.Values {
		sub := fmt.Sprintf("%s[%d]", path, i)
		d.lines[sub] = line(item)
		if _, isNull := d.resolve(item).(*ast.NullNode); isNull || item == nil {
			// An empty value keeps a key's default, but an empty item
			// would be a zero binding, range or permission that the
			// checks take for a real one.
			d.errorf(item, sub, "an empty list item; give it a value or remove it")
			continue
		}
		d.decode(item, out.Index(i), sub)
	}
	v.Set(out)
}

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

// scalarText returns the text of a scalar node as written, so that
// `min_version: 1.2` reads as "1.2", not as a float.
func scalarText(n ast.Node) (string, bool) {
	switch s := n.(type) {
	case *ast.StringNode:
		return s.Value, true
	case *ast.LiteralNode:
		return s.Value.Value, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return s.GetToken().Value, true
	}
	return "", false
}

func kindName(n ast.Node) string {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.NullNode:
		return "nothing"
	}
	return fmt.Sprintf("%q", n.String())
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlFields maps yaml tag names to field indexes.
func yamlFields(t reflect.Type) map[string]int {
	m := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("yaml")
		if tag == "" || tag == "-" {
			continue
		}
		m[tag] = i
	}
	return m
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

// syntaxError turns a go-yaml parse error into one Error with its line.
func syntaxError(file string, err error) Error {
	type positioned interface{ GetToken() *token.Token }
	e := Error{File: file, Msg: "YAML syntax: " + err.Error()}
	if p, ok := err.(positioned); ok && p.GetToken() != nil {
		e.Line = p.GetToken().Position.Line
		e.Msg = "YAML syntax: " + syntaxHint(firstLine(err))
	}
	return e
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

func firstLine(err error) string {
	type messager interface{ GetMessage() string }
	if m, ok := err.(messager); ok {
		return m.GetMessage()
	}
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
