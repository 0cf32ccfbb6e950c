package auth

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/herald-mqtt/herald/topic"
)

// ParseACL reads ACL rules in the acl_file format (see the package
// documentation); name is used in errors, which cite the line.
func ParseACL(r io.Reader, name string) ([]Rule, error) {
	var rules []Rule
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		rule, err := parseACLLine(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, n, err)
		}
		rules = append(rules, rule)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return rules, nil
}

// LoadACL reads and parses the ACL file at path.
func LoadACL(path string) ([]Rule, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("acl file: %w", err)
	}
	defer f.Close()
	return ParseACL(f, path)
}

// aclActions are the action words of the file; read, write and readwrite
// are mosquitto's words for the same things.
var aclActions = map[string]Action{
	"publish": Publish, "write": Publish,
	"subscribe": Subscribe, "read": Subscribe,
	"all": All, "readwrite": All,
}

func parseACLLine(line string) (Rule, error) {
	fields, err := splitFields(line)
	if err != nil {
		return Rule{}, err
	}
	if len(fields) < 3 {
		return Rule{}, errors.New("want: allow|deny publish|subscribe|all FILTER [user=NAME] [client=ID]")
	}
	var r Rule
	switch fields[0] {
	case "allow":
		r.Allow = true
	case "deny":
	default:
		return Rule{}, fmt.Errorf("%q: want allow or deny", fields[0])
	}
	act, ok := aclActions[fields[1]]
	if !ok {
		return Rule{}, fmt.Errorf("%q: want publish, subscribe or all", fields[1])
	}
	r.Action = act
	r.Topic = fields[2]
	if err := topic.ValidateFilter(r.Topic); err != nil {
		return Rule{}, fmt.Errorf("filter %q: %w", r.Topic, err)
	}
	for _, q := range fields[3:] {
		k, v, _ := strings.Cut(q, "=")
		if v == "" {
			return Rule{}, fmt.Errorf("%q: want user=NAME or client=ID", q)
		}
		switch {
		case k == "user" && r.Username == "":
			r.Username = v
		case k == "client" && r.ClientID == "":
			r.ClientID = v
		case k == "user" || k == "client":
			return Rule{}, fmt.Errorf("%s given twice", k)
		default:
			return Rule{}, fmt.Errorf("%q: want user=NAME or client=ID", q)
		}
	}
	return r, nil
}

// splitFields splits on white space; a field starting with '"' is a Go
// string literal, so that filters and names may hold spaces (`"a b/#"`,
// `user="Ann Lee"`).
func splitFields(line string) ([]string, error) {
	var out []string
	for {
		line = strings.TrimLeft(line, " \t")
		if line == "" {
			return out, nil
		}
		prefix := ""
		// Only an unquoted field is a key="value": a literal may hold `="`.
		if i := strings.Index(line, `="`); i > 0 && line[0] != '"' && i < strings.IndexAny(line+" ", " \t") {
			prefix, line = line[:i+1], line[i+1:] // user="..."
		}
		if line[0] != '"' {
			end := strings.IndexAny(line, " \t")
			if end < 0 {
				end = len(line)
			}
			out = append(out, prefix+line[:end])
			line = line[end:]
			continue
		}
		lit, err := strconv.QuotedPrefix(line)
		if err != nil {
			return nil, fmt.Errorf("bad quoted field at %.20q", line)
		}
		s, _ := strconv.Unquote(lit)
		out = append(out, prefix+s)
		line = line[len(lit):]
		if line != "" && line[0] != ' ' && line[0] != '\t' {
			return nil, fmt.Errorf("no space after %s", lit)
		}
	}
}
