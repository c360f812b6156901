package catalog

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// where names what each catalog YAML type is, and its known keys, for
// errors that would otherwise show Go type names.
var where = map[string]string{
	"file":        "at the top level (known: unknown_products, client_added, products)",
	"fileProduct": "in a product (known: id, name, provider, signup, provision_on, settings)",
	"fileRoute":   "in a client_added route (known: provider, action, settings)",
}

var (
	unknownField = regexp.MustCompile(`^line (\d+): field (\S+) not found in type catalog\.(\w+)$`)
	badValue     = regexp.MustCompile("^line (\\d+): cannot unmarshal !!(\\w+) `(.*)` into (\\S+)$")
	yamlLine     = regexp.MustCompile(`^yaml: line \d+: `)
)

// decodeError turns a YAML decoding error into one a catalog author can act
// on: an empty file says so, an unknown key names the keys known there
// (not a Go type), and a syntax error names the first mis-indented line
// (the YAML parser often reports the line its block started on).
func decodeError(name string, b []byte, err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("catalog %s: the file is empty: want at least `products:` (see the catalog section of the README)", name)
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, 0, len(te.Errors))
		for _, e := range te.Errors {
			switch m := e; {
			case unknownField.MatchString(m):
				s := unknownField.FindStringSubmatch(m)
				ctx := where[s[3]]
				if ctx == "" {
					ctx = "here"
				}
				msgs = append(msgs, fmt.Sprintf("line %s: unknown key %q %s", s[1], s[2], ctx))
			case badValue.MatchString(m):
				s := badValue.FindStringSubmatch(m)
				msgs = append(msgs, fmt.Sprintf("line %s: %q is not %s", s[1], s[3], describe(s[4])))
			default:
				msgs = append(msgs, m)
			}
		}
		return fmt.Errorf("catalog %s: %s", name, strings.Join(msgs, "; "))
	}
	if line, indent, levels := misIndented(b); line > 0 {
		// The parser's own line number points at the enclosing block: leave it out.
		detail := yamlLine.ReplaceAllString(err.Error(), "yaml: ")
		return fmt.Errorf("catalog %s: line %d is mis-indented (%d spaces; lines around it use %s); %s", name, line, indent, levels, detail)
	}
	return fmt.Errorf("catalog %s: %w", name, err)
}

func describe(goType string) string {
	switch {
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"):
		return "a whole number"
	case goType == "string":
		return "text"
	case strings.HasPrefix(goType, "map"):
		return "a mapping (key: value lines)"
	case strings.HasPrefix(goType, "[]"):
		return "a list (lines starting with -)"
	}
	return "a " + goType
}

// misIndented returns the first line (1-based) whose indentation matches
// no enclosing block: deeper than the line before although that line opens
// no block, or shallower than it but at no level seen above. 0: none found.
func misIndented(b []byte) (line, indent int, levels string) {
	stack := []int{0} // indentation levels of the enclosing blocks
	opens := false    // the previous line opens a block (ends with ':' or is a bare '-')
	for i, raw := range strings.Split(string(b), "\n") {
		text := strings.TrimRight(raw, " \t\r")
		trimmed := strings.TrimLeft(text, " ")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") || trimmed == "---" {
			continue
		}
		n := len(text) - len(trimmed)
		top := stack[len(stack)-1]
		switch {
		case n > top && !opens:
			return i + 1, n, joinLevels(stack)
		case n > top:
			stack = append(stack, n)
		case n < top:
			for len(stack) > 1 && stack[len(stack)-1] > n {
				stack = stack[:len(stack)-1]
			}
			if stack[len(stack)-1] != n {
				return i + 1, n, joinLevels(append(stack, top))
			}
		}
		// A list item's content is a level of its own: "- id: 1" at 2
		// puts "name:" at 4.
		if strings.HasPrefix(trimmed, "- ") {
			stack = append(stack, n+2+len(trimmed[2:])-len(strings.TrimLeft(trimmed[2:], " ")))
		}
		body := trimmed
		if j := strings.Index(body, " #"); j >= 0 {
			body = strings.TrimRight(body[:j], " ")
		}
		opens = strings.HasSuffix(body, ":") || body == "-"
	}
	return 0, 0, ""
}

func joinLevels(levels []int) string {
	seen := map[int]bool{}
	var out []string
	for _, l := range levels {
		if !seen[l] {
			seen[l] = true
			out = append(out, strconv.Itoa(l))
		}
	}
	if len(out) == 1 {
		return out[0] + " spaces"
	}
	return strings.Join(out[:len(out)-1], ", ") + " or " + out[len(out)-1] + " spaces"
}
