package config

import (
	"fmt"
	"reflect"
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
			d.errorf(n, path, "expected a whole number of 0 or more, found %s", numberHint(n))
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

// syntaxError turns a go-yaml parse error into one Error with its line.
func syntaxError(file string, err error) Error {
	type positioned interface{ GetToken() *token.Token }
	e := Error{File: file, Msg: "YAML syntax: " + err.Error()}
	if p, ok := err.(positioned); ok && p.GetToken() != nil {
		tok := p.GetToken()
		e.Line = tok.Position.Line
		e.Msg = "YAML syntax: " + syntaxHint(firstLine(err))
		if l, ok := runOn(tok); ok {
			e.Msg = fmt.Sprintf("YAML syntax: %s; line %d is indented deeper than the key on this line, so YAML reads it as more of this key's value: indent line %d like the key it belongs with", firstLine(err), l, l)
		}
	}
	return e
}

// runOn recognises a key indented too deep: go-yaml reads it as the
// continuation of the value on the line above and places its error at
// the start of that value, not on the line to fix. It returns the line
// of the stray colon.
func runOn(tok *token.Token) (int, bool) {
	next := tok.Next
	if tok.Type != token.StringType || next == nil || next.Type != token.MappingValueType || next.Position.Line <= tok.Position.Line {
		return 0, false
	}
	return next.Position.Line, true
}

func firstLine(err error) string {
	type messager interface{ GetMessage() string }
	if m, ok := err.(messager); ok {
		return m.GetMessage()
	}
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
