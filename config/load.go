package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load returns Default overlaid with the YAML file at path, validated. An
// empty path means no file. Unknown keys are errors; every error names the
// file, the line and the key path, and all of them are reported at once.
//
// Environment overrides are not applied; LoadWithEnv does that.
func Load(path string) (*Config, error) {
	return LoadWithEnv(path, nil)
}

// LoadWithEnv is Load with ApplyEnv applied between the file and Validate,
// so that a value set only in the environment (say, a secret) completes an
// otherwise invalid file. Validation errors name where the offending value
// came from: the file and line, or the environment variable.
func LoadWithEnv(path string, environ []string) (*Config, error) {
	var data []byte
	if path != "" {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
	}
	return load(path, data, environ)
}

// load is LoadWithEnv on a file already read; name is used in errors.
func load(name string, data []byte, environ []string) (*Config, error) {
	c := Default()
	d := &decoder{file: name, lines: map[string]int{}, expanding: map[*yaml.Node]bool{}}
	if err := d.decodeFile(data, c); err != nil {
		return nil, err
	}
	c.fillDerived()
	envSources, err := applyEnv(c, environ)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, d.locate(err, envSources)
	}
	return c, nil
}

// decoder walks a YAML node tree alongside the Config it fills, instead of
// leaving the walk to yaml.v3, so that errors carry the full key path
// (limits.flap_detection.window) as well as the line, unknown keys come
// with a suggestion, and every problem in the file is reported at once.
type decoder struct {
	file  string
	errs  []error
	lines map[string]int // key path → line, to place validation errors
	// expanding holds the anchors being expanded, to refuse an alias
	// inside its own anchor instead of recursing for ever.
	expanding map[*yaml.Node]bool
}

func (d *decoder) decodeFile(data []byte, c *Config) error {
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty file, or only comments
		}
		return d.syntaxError(err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		if err != nil {
			return d.syntaxError(err)
		}
		return fmt.Errorf("%s:%d: a config file holds one YAML document; found another", d.file, more.Line)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if isNull(root) {
		return nil
	}
	d.decode(root, reflect.ValueOf(c).Elem(), "")
	return errors.Join(d.errs...)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// syntaxError rewrites yaml.v3's "yaml: line 3: msg" as "file:3: msg".
func (d *decoder) syntaxError(err error) error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		return fmt.Errorf("%s:%s: %s", d.file, m[1], msg[len(m[0]):])
	}
	return fmt.Errorf("%s: %s", d.file, strings.TrimPrefix(msg, "yaml: "))
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path == "" { // the document itself
		d.errs = append(d.errs, fmt.Errorf("%s:%d: %s", d.file, n.Line, msg))
		return
	}
	d.errs = append(d.errs, fmt.Errorf("%s:%d: %s: %s", d.file, n.Line, path, msg))
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind == yaml.AliasNode {
		if d.expanding[n.Alias] {
			d.errorf(n, path, "alias *%s refers to itself", n.Value)
			return
		}
		d.expanding[n.Alias] = true
		defer delete(d.expanding, n.Alias)
		n = n.Alias
	}
	if isNull(n) {
		// As yaml.v3 does: "key:" with no value clears a list or pointer
		// and leaves anything else at its default.
		if k := v.Kind(); k == reflect.Pointer || k == reflect.Slice {
			v.SetZero()
		}
		return
	}
	if v.Addr().Type().Implements(unmarshalerType) {
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.errorf(n, path, "%v", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.decode(n, p.Elem(), path)
		v.Set(p)
	case reflect.Struct:
		d.mapping(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.errorf(n, path, "want a list, got %s", describe(n))
			return
		}
		if len(n.Content) == 0 {
			v.SetZero() // "[]" reads as no list, as Default leaves it
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, e := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			d.lines[p] = e.Line
			d.decode(e, s.Index(i), p)
		}
		v.Set(s)
	default:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "want %s, got %s", want(v.Type()), describe(n))
			return
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.errorf(n, path, "want %s, got %s", want(v.Type()), describe(n))
		}
	}
}

// keyValue is one entry of a YAML mapping.
type keyValue struct{ key, value *yaml.Node }

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "want a mapping of keys, got %s", describe(n))
		return
	}
	fields := fieldsOf(v.Type())
	present := map[string]bool{}
	for _, kv := range d.entries(n, path) {
		key := kv.key.Value
		p := joinPath(path, key)
		f, ok := fields[key]
		if !ok {
			d.errorf(kv.key, p, "unknown key%s", suggest(key, v.Type()))
			continue
		}
		present[key] = true
		d.lines[p] = kv.key.Line
		d.decode(kv.value, v.FieldByIndex(f.Index), p)
	}
	for name, f := range fields {
		if f.Tag.Get("herald") == "required" && !present[name] {
			d.errorf(n, joinPath(path, name), "required; this key has no default")
		}
	}
}

// entries lists a mapping's entries with YAML merge keys ("<<: *anchor")
// expanded: merged entries first, so that the mapping's own keys override
// them. A key repeated in the mapping itself is an error.
func (d *decoder) entries(n *yaml.Node, path string) []keyValue {
	var merged, own []keyValue
	firstLine := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.mergeEntries(v, path)...)
			continue
		}
		if line, dup := firstLine[k.Value]; dup {
			d.errorf(k, joinPath(path, k.Value), "duplicate key (first set on line %d)", line)
			continue
		}
		firstLine[k.Value] = k.Line
		own = append(own, keyValue{k, v})
	}
	return append(merged, own...)
}

func (d *decoder) mergeEntries(v *yaml.Node, path string) []keyValue {
	if v.Kind == yaml.AliasNode {
		if d.expanding[v.Alias] {
			d.errorf(v, path, "alias *%s refers to itself", v.Value)
			return nil
		}
		d.expanding[v.Alias] = true
		defer delete(d.expanding, v.Alias)
		v = v.Alias
	}
	switch v.Kind {
	case yaml.MappingNode:
		return d.entries(v, path)
	case yaml.SequenceNode:
		var all []keyValue
		// Earlier mappings in a merge list take precedence, so apply them last.
		for i := len(v.Content) - 1; i >= 0; i-- {
			all = append(all, d.mergeEntries(v.Content[i], path)...)
		}
		return all
	}
	d.errorf(v, path, "merge key (<<) wants a mapping or a list of mappings, got %s", describe(v))
	return nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// parentPath strips the last element of a key path: "a.b[2]" → "a.b",
// "a.b" → "a", "a" → "".
func parentPath(p string) string {
	if i := strings.LastIndexAny(p, ".["); i >= 0 {
		return p[:i]
	}
	return ""
}

// fieldsOf maps the yaml key of each exported field of struct type t to the
// field.
func fieldsOf(t reflect.Type) map[string]reflect.StructField {
	m := make(map[string]reflect.StructField, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		m[name] = f
	}
	return m
}

// want describes, for an error message, the value a scalar field takes.
func want(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	}
	return t.String()
}

// suggest returns " (did you mean x?)" for an unknown key: the closest key
// of the same mapping within two typing mistakes, or else the closest keys
// elsewhere in the schema, as when max_packet_size is put under limits
// instead of mqtt.
func suggest(key string, t reflect.Type) string {
	best, bestDist := "", 3
	for name := range fieldsOf(t) {
		if dist := editDistance(key, name); dist < bestDist || dist == bestDist && name < best {
			best, bestDist = name, dist
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %s?)", best)
	}
	var elsewhere []string
	walkSchema(reflect.TypeFor[Config](), "", func(path string) {
		leaf := path[strings.LastIndex(path, ".")+1:]
		switch dist := editDistance(key, leaf); {
		case dist < bestDist:
			elsewhere, bestDist = []string{path}, dist
		case dist == bestDist:
			elsewhere = append(elsewhere, path)
		}
	})
	if len(elsewhere) > 0 {
		slices.Sort(elsewhere)
		return fmt.Sprintf(" (did you mean %s?)", strings.Join(elsewhere, " or "))
	}
	return ""
}

// walkSchema calls fn with the key path of every key of struct type t,
// parents before children; list elements appear as "[]".
func walkSchema(t reflect.Type, prefix string, fn func(path string)) {
	for name, f := range fieldsOf(t) {
		p := joinPath(prefix, name)
		fn(p)
		ft := f.Type
		if ft.Kind() == reflect.Slice {
			ft, p = ft.Elem(), p+"[]"
		}
		if ft.Kind() == reflect.Struct {
			walkSchema(ft, p, fn)
		}
	}
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// locate prefixes each validation error with where its value came from: the
// environment variable that set it, or the file and line of the key or of
// its nearest parent that the file sets. Values left at their defaults get
// no prefix.
func (d *decoder) locate(err error, envSources map[string]string) error {
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return err
	}
	var out []error
	for _, e := range joined.Unwrap() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			out = append(out, e)
			continue
		}
		if name, ok := envSources[fe.Path]; ok {
			out = append(out, fmt.Errorf("%s: %w", name, e))
			continue
		}
		located := e
		for p := fe.Path; p != ""; p = parentPath(p) {
			if line, ok := d.lines[p]; ok {
				located = fmt.Errorf("%s:%s: %w", d.file, strconv.Itoa(line), e)
				break
			}
		}
		out = append(out, located)
	}
	return errors.Join(out...)
}
