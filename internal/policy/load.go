package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// LoadOverrides reads a policy file mapping rule names to check strings, in
// YAML (policy.yaml) or JSON (policy.json) form. A missing file yields an
// empty map and no error. Every value must be a string; duplicate rule
// names are an error.
func LoadOverrides(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("policy: reading overrides: %w", err)
	}
	m, err := parseOverrides(data, strings.EqualFold(filepath.Ext(path), ".json"))
	if err != nil {
		return nil, fmt.Errorf("policy: %s: %w", path, err)
	}
	return m, nil
}

// ParseOverrides parses the contents of a policy file as LoadOverrides
// does. JSON is recognised by a leading "{"; anything else is YAML.
func ParseOverrides(data []byte) (map[string]string, error) {
	m, err := parseOverrides(data, false)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return m, nil
}

func parseOverrides(data []byte, isJSON bool) (map[string]string, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 BOM
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return map[string]string{}, nil
	}
	if isJSON {
		return parseJSON(trimmed)
	}
	if trimmed[0] == '{' {
		// Like oslo.policy: try JSON first, then YAML (a YAML flow mapping
		// also starts with "{"). Report the JSON error if both fail.
		m, jerr := parseJSON(trimmed)
		if jerr == nil {
			return m, nil
		}
		if m, yerr := parseYAML(data); yerr == nil {
			return m, nil
		}
		return nil, jerr
	}
	return parseYAML(data)
}

func parseJSON(data []byte) (map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	wrap := func(err error) error { return fmt.Errorf("invalid JSON policy file: %w", err) }
	tok, err := dec.Token()
	if err != nil {
		return nil, wrap(err)
	}
	if tok != json.Delim('{') {
		return nil, wrap(errors.New("top level must be an object mapping rule names to check strings"))
	}
	m := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, wrap(err)
		}
		name := tok.(string) // object keys are always strings
		tok, err = dec.Token()
		if err != nil {
			return nil, wrap(err)
		}
		check, ok := tok.(string)
		if !ok {
			return nil, wrap(fmt.Errorf("rule %q: check must be a string, got %s", name, jsonKind(tok)))
		}
		if _, dup := m[name]; dup {
			return nil, wrap(fmt.Errorf("rule %q defined more than once", name))
		}
		m[name] = check
	}
	if _, err := dec.Token(); err != nil { // closing '}'
		return nil, wrap(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = errors.New("unexpected data after top-level object")
		}
		return nil, wrap(err)
	}
	return m, nil
}

func jsonKind(tok json.Token) string {
	switch tok := tok.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64:
		return "a number"
	case json.Delim:
		if tok == '[' {
			return "an array (the legacy list-of-lists form is not supported)"
		}
		return "an object"
	}
	return fmt.Sprintf("%T", tok)
}

func parseYAML(data []byte) (map[string]string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("invalid YAML policy file: %w", err)
	}
	m := map[string]string{}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return m, nil // empty, or only comments
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return m, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: top level must be a mapping of rule names to check strings", root.Line)
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: rule names must be strings", k.Line)
		}
		name := k.Value
		if v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!str" {
			what := "a " + strings.TrimPrefix(v.ShortTag(), "!!")
			switch {
			case v.Kind == yaml.SequenceNode:
				what = "a list (the legacy list-of-lists form is not supported)"
			case v.Kind == yaml.MappingNode:
				what = "a mapping"
			case v.ShortTag() == "!!null":
				what = `null (write "" for a rule that always passes)`
			}
			return nil, fmt.Errorf("line %d: rule %q: check must be a string, got %s; quote it", v.Line, name, what)
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("line %d: rule %q defined more than once", k.Line, name)
		}
		m[name] = v.Value
	}
	return m, nil
}
