package policy

import (
	"fmt"
	"strings"
)

// op is the kind of a compiled check-expression node.
type op uint8

const (
	opTrue  op = iota // @ or the empty check string
	opFalse           // !
	opAnd
	opOr
	opNot
	opRule // rule:NAME
	opRole // role:NAME
	opAttr // ATTR:VALUE
)

// attr identifies a credential attribute usable in ATTR:VALUE checks.
type attr uint8

const (
	attrUserID attr = iota
	attrUserDomainID
	attrProjectID
	attrProjectDomainID
	attrDomainID
	attrSystemScope
	attrIsAdmin
)

var attrNames = map[string]attr{
	"user_id":           attrUserID,
	"user_domain_id":    attrUserDomainID,
	"project_id":        attrProjectID,
	"project_domain_id": attrProjectDomainID,
	"domain_id":         attrDomainID,
	"system_scope":      attrSystemScope,
	"is_admin":          attrIsAdmin,
	// Legacy aliases still found in older (e.g. Neutron) policy files.
	"tenant_id": attrProjectID,
	"tenant":    attrProjectID,
}

// node is one node of a compiled check expression.
type node struct {
	op   op
	attr attr      // opAttr
	kids []*node   // opAnd, opOr (two or more), opNot (exactly one)
	name string    // opRule: referenced rule name
	ref  *compiled // opRule: resolved by New
	tmpl template  // opRole, opAttr
}

// template is the right-hand side of a role: or ATTR: check.
type template struct {
	lit   string  // the literal value when parts is nil
	parts []tpart // literal text and %(key)s substitutions, if any
}

type tpart struct {
	text string // literal text, or the target key when key is set
	key  bool
}

// match reports whether v equals the template after substitution from
// target. Comparison is case-insensitive when fold is set. It never
// allocates.
func (t *template) match(v string, target map[string]string, fold bool) bool {
	if t.parts == nil {
		if fold {
			return strings.EqualFold(v, t.lit)
		}
		return v == t.lit
	}
	if len(t.parts) == 1 && t.parts[0].key {
		s, ok := target[t.parts[0].text]
		if !ok {
			return false
		}
		if fold {
			return strings.EqualFold(v, s)
		}
		return v == s
	}
	for _, p := range t.parts {
		s := p.text
		if p.key {
			var ok bool
			if s, ok = target[p.text]; !ok {
				return false
			}
		}
		if len(v) < len(s) {
			return false
		}
		if fold {
			if !strings.EqualFold(v[:len(s)], s) {
				return false
			}
		} else if v[:len(s)] != s {
			return false
		}
		v = v[len(s):]
	}
	return v == ""
}

// String renders the template back in check-string syntax.
func (t *template) String() string {
	if t.parts == nil {
		return t.lit
	}
	var b strings.Builder
	for _, p := range t.parts {
		if p.key {
			b.WriteString("%(" + p.text + ")s")
		} else {
			b.WriteString(strings.ReplaceAll(p.text, "%", "%%"))
		}
	}
	return b.String()
}

type tokKind uint8

const (
	tokEOF tokKind = iota
	tokLParen
	tokRParen
	tokAnd
	tokOr
	tokNot
	tokCheck
)

type token struct {
	kind tokKind
	text string
	pos  int // byte offset in the check string
}

func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "end of check string"
	case tokLParen:
		return `"("`
	case tokRParen:
		return `")"`
	default:
		return fmt.Sprintf("%q", t.text)
	}
}

// syntaxError is a parse error at a byte offset of a check string.
type syntaxError struct {
	pos int
	msg string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("at offset %d: %s", e.pos, e.msg) }

func errAt(pos int, format string, args ...any) error {
	return &syntaxError{pos: pos, msg: fmt.Sprintf(format, args...)}
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// tokenize splits a check string into tokens. Parentheses are tokens of
// their own, except inside a %(key)s substitution or a quoted literal.
func tokenize(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case isSpace(c):
			i++
			continue
		case c == '(':
			toks = append(toks, token{tokLParen, "(", i})
			i++
			continue
		case c == ')':
			toks = append(toks, token{tokRParen, ")", i})
			i++
			continue
		}
		start := i
	word:
		for i < len(s) {
			switch c := s[i]; {
			case c == '%' && i+1 < len(s) && s[i+1] == '%':
				i += 2 // literal percent sign
			case c == '%' && i+1 < len(s) && s[i+1] == '(':
				j := strings.IndexByte(s[i+2:], ')')
				if j < 0 {
					return nil, errAt(i, `unterminated "%%(" substitution`)
				}
				i += j + 3
			case c == '\'' || c == '"':
				j := strings.IndexByte(s[i+1:], c)
				if j < 0 {
					return nil, errAt(i, "unterminated quoted literal")
				}
				i += j + 2
			case isSpace(c) || c == '(' || c == ')':
				break word
			default:
				i++
			}
		}
		w := s[start:i]
		kind := tokCheck
		switch strings.ToLower(w) {
		case "and":
			kind = tokAnd
		case "or":
			kind = tokOr
		case "not":
			kind = tokNot
		}
		toks = append(toks, token{kind, w, start})
	}
	return toks, nil
}

// parser is a recursive-descent parser for check strings:
//
//	expr := and { "or" and }
//	and  := not { "and" not }
//	not  := "not" not | atom
//	atom := "(" expr ")" | check
type parser struct {
	toks []token
	i    int
	end  int
}

func (p *parser) peek() token {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return token{kind: tokEOF, pos: p.end}
}

func (p *parser) next() token {
	t := p.peek()
	if p.i < len(p.toks) {
		p.i++
	}
	return t
}

// parseCheckString compiles a check string into an expression tree. Rule
// references are left unresolved (node.ref is nil).
func parseCheckString(s string) (*node, error) {
	toks, err := tokenize(s)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return &node{op: opTrue}, nil
	}
	p := &parser{toks: toks, end: len(s)}
	n, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		if t.kind == tokRParen {
			return nil, errAt(t.pos, `unbalanced ")"`)
		}
		return nil, errAt(t.pos, "unexpected %s; expected \"and\", \"or\" or end of check string", t.describe())
	}
	return n, nil
}

func (p *parser) parseOr() (*node, error) {
	return p.parseBinary(opOr, tokOr, p.parseAnd)
}

func (p *parser) parseAnd() (*node, error) {
	return p.parseBinary(opAnd, tokAnd, p.parseNot)
}

func (p *parser) parseBinary(o op, sep tokKind, operand func() (*node, error)) (*node, error) {
	n, err := operand()
	if err != nil {
		return nil, err
	}
	if p.peek().kind != sep {
		return n, nil
	}
	out := &node{op: o}
	add := func(k *node) {
		if k.op == o { // flatten (a and b) and c
			out.kids = append(out.kids, k.kids...)
		} else {
			out.kids = append(out.kids, k)
		}
	}
	add(n)
	for p.peek().kind == sep {
		p.next()
		k, err := operand()
		if err != nil {
			return nil, err
		}
		add(k)
	}
	return out, nil
}

func (p *parser) parseNot() (*node, error) {
	if p.peek().kind != tokNot {
		return p.parseAtom()
	}
	p.next()
	k, err := p.parseNot()
	if err != nil {
		return nil, err
	}
	return &node{op: opNot, kids: []*node{k}}, nil
}

func (p *parser) parseAtom() (*node, error) {
	t := p.next()
	switch t.kind {
	case tokLParen:
		n, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.kind != tokRParen {
			return nil, errAt(c.pos, `expected ")" to close "(" at offset %d, found %s`, t.pos, c.describe())
		}
		return n, nil
	case tokCheck:
		n, err := parseCheck(t.text)
		if err != nil {
			if se, ok := err.(*syntaxError); ok {
				se.pos += t.pos
				return nil, se
			}
			return nil, errAt(t.pos, "%v", err)
		}
		return n, nil
	default:
		return nil, errAt(t.pos, "expected a check, found %s", t.describe())
	}
}

// parseCheck compiles a single check such as "role:admin". Error offsets are
// relative to the start of s.
func parseCheck(s string) (*node, error) {
	switch s {
	case "@":
		return &node{op: opTrue}, nil
	case "!":
		return &node{op: opFalse}, nil
	}
	kind, val, ok := strings.Cut(s, ":")
	if !ok {
		return nil, errAt(0, `invalid check %q: expected KIND:VALUE, "@" or "!"`, s)
	}
	vpos := len(kind) + 1
	switch kind {
	case "rule":
		if val == "" {
			return nil, errAt(0, "invalid check %q: missing rule name", s)
		}
		return &node{op: opRule, name: val}, nil
	case "role":
		t, err := parseTemplate(val)
		if err != nil {
			return nil, offset(err, vpos, s)
		}
		return &node{op: opRole, tmpl: t}, nil
	}
	a, ok := attrNames[kind]
	if !ok {
		return nil, errAt(0, "invalid check %q: unknown check kind or credential attribute %q "+
			"(supported: rule, role, user_id, user_domain_id, project_id, project_domain_id, domain_id, system_scope, is_admin)",
			s, kind)
	}
	t, err := parseTemplate(val)
	if err != nil {
		return nil, offset(err, vpos, s)
	}
	if a == attrIsAdmin && t.parts == nil {
		switch {
		case strings.EqualFold(t.lit, "true"):
			t.lit = "True"
		case strings.EqualFold(t.lit, "false"):
			t.lit = "False"
		default:
			return nil, errAt(vpos, "invalid check %q: is_admin must be compared with True or False", s)
		}
	}
	return &node{op: opAttr, attr: a, tmpl: t}, nil
}

func offset(err error, by int, check string) error {
	se := err.(*syntaxError)
	se.pos += by
	se.msg = fmt.Sprintf("invalid check %q: %s", check, se.msg)
	return se
}

// parseTemplate parses the value of a role: or ATTR: check. Error offsets
// are relative to the start of v.
func parseTemplate(v string) (template, error) {
	if v == "" {
		return template{}, errAt(0, "missing value")
	}
	if q := v[0]; q == '\'' || q == '"' {
		if len(v) < 2 || v[len(v)-1] != q || strings.IndexByte(v[1:len(v)-1], q) >= 0 {
			return template{}, errAt(0, "a quoted literal must span the whole value")
		}
		if len(v) == 2 {
			return template{}, errAt(0, "empty quoted literal")
		}
		return template{lit: v[1 : len(v)-1]}, nil
	}
	var (
		parts  []tpart
		lit    strings.Builder
		hasKey bool
	)
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, tpart{text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(v); {
		c := v[i]
		switch {
		case c == '\'' || c == '"':
			return template{}, errAt(i, "a quoted literal must span the whole value")
		case c != '%':
			lit.WriteByte(c)
			i++
		case i+1 < len(v) && v[i+1] == '%':
			lit.WriteByte('%')
			i += 2
		case i+1 < len(v) && v[i+1] == '(':
			j := strings.IndexByte(v[i+2:], ')')
			if j < 0 {
				return template{}, errAt(i, `unterminated "%%(" substitution`)
			}
			key := v[i+2 : i+2+j]
			end := i + 2 + j + 1 // just past ')'
			if key == "" {
				return template{}, errAt(i, `empty substitution "%%()s"`)
			}
			if end >= len(v) || v[end] != 's' {
				return template{}, errAt(i, `substitution must have the form "%%(key)s"`)
			}
			flush()
			parts = append(parts, tpart{text: key, key: true})
			hasKey = true
			i = end + 1
		default:
			return template{}, errAt(i, `a literal "%%" must be written "%%%%"; substitutions have the form "%%(key)s"`)
		}
	}
	flush()
	if !hasKey {
		if len(parts) == 0 {
			return template{}, errAt(0, "missing value")
		}
		return template{lit: parts[0].text}, nil
	}
	return template{parts: parts}, nil
}
