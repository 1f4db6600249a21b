package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

var (
	// ErrForbidden is wrapped by the error Authorize returns when a rule
	// denies the request.
	ErrForbidden = errors.New("policy: forbidden")
	// ErrUnknownRule is wrapped by the error Authorize returns for a rule
	// that is not defined, and by the error New returns when a check string
	// references an undefined rule.
	ErrUnknownRule = errors.New("policy: unknown rule")
	// ErrInvalidPolicy is wrapped by every error New returns for a policy
	// that cannot be compiled (syntax errors, undefined references, cycles).
	ErrInvalidPolicy = errors.New("policy: invalid policy")
)

// Credentials describe the caller of an API request, as established by its
// token.
type Credentials struct {
	UserID, UserDomainID       string
	ProjectID, ProjectDomainID string
	DomainID                   string   // domain scope
	System                     bool     // system scope "all"
	Roles                      []string // role names incl. implied ones
	IsAdmin                    bool
}

// Rule is a named policy rule.
type Rule struct {
	Name        string // e.g. "identity:get_user"
	Check       string // check string, e.g. "role:admin or rule:owner"
	Description string // human-readable description, for tooling
}

// ForbiddenError is the error Authorize returns when a rule denies a
// request. It wraps ErrForbidden.
type ForbiddenError struct {
	Rule string
	msg  string
}

func (e *ForbiddenError) Error() string {
	if e.msg == "" {
		return forbiddenMessage(e.Rule)
	}
	return e.msg
}

// Unwrap returns ErrForbidden.
func (e *ForbiddenError) Unwrap() error { return ErrForbidden }

func forbiddenMessage(rule string) string {
	return "Policy doesn't allow " + rule + " to be performed."
}

// RuleError reports a rule whose check string cannot be compiled. It
// wraps ErrInvalidPolicy, and also ErrUnknownRule when the problem is a
// reference to an undefined rule.
type RuleError struct {
	Rule     string // rule name
	Check    string // the offending check string
	Override bool   // the check string came from the overrides
	Err      error  // the underlying problem
}

func (e *RuleError) Error() string {
	src := ""
	if e.Override {
		src = " (override)"
	}
	return fmt.Sprintf("policy: rule %q%s: %v", e.Rule, src, e.Err)
}

// Unwrap returns ErrInvalidPolicy and the underlying error.
func (e *RuleError) Unwrap() []error { return []error{ErrInvalidPolicy, e.Err} }

// undefinedRefError is a rule:NAME check naming an undefined rule.
type undefinedRefError string

func (e undefinedRefError) Error() string {
	return fmt.Sprintf("references undefined rule %q (rule:%s)", string(e), string(e))
}

func (e undefinedRefError) Unwrap() error { return ErrUnknownRule }

// compiled is a rule ready for evaluation.
type compiled struct {
	rule      Rule
	override  bool
	root      *node
	forbidden *ForbiddenError // preallocated denial error
}

// Enforcer evaluates compiled policy rules. It is immutable and safe for
// concurrent use.
type Enforcer struct {
	rules  map[string]*compiled
	sorted []Rule
}

// New compiles the default rules, with the check strings in overrides
// replacing those of the defaults of the same name. Overrides naming rules
// that have no default add new rules. New fails, with an error wrapping
// ErrInvalidPolicy, if any check string is malformed, references an
// undefined rule, or if rules reference each other in a cycle.
func New(defaults []Rule, overrides map[string]string) (*Enforcer, error) {
	e := &Enforcer{rules: make(map[string]*compiled, len(defaults)+len(overrides))}
	for _, r := range defaults {
		if r.Name == "" {
			return nil, fmt.Errorf("%w: default rule with empty name (check %q)", ErrInvalidPolicy, r.Check)
		}
		if _, dup := e.rules[r.Name]; dup {
			return nil, fmt.Errorf("%w: duplicate default rule %q", ErrInvalidPolicy, r.Name)
		}
		e.rules[r.Name] = &compiled{rule: r}
	}
	for name, check := range overrides {
		if name == "" {
			return nil, fmt.Errorf("%w: override with empty rule name (check %q)", ErrInvalidPolicy, check)
		}
		c := e.rules[name]
		if c == nil {
			c = &compiled{rule: Rule{Name: name}}
			e.rules[name] = c
		}
		c.rule.Check = check
		c.override = true
	}

	names := make([]string, 0, len(e.rules))
	for name := range e.rules {
		names = append(names, name)
	}
	slices.Sort(names)

	// Parse every rule, reporting all syntax errors at once.
	var errs []error
	for _, name := range names {
		c := e.rules[name]
		root, err := parseCheckString(c.rule.Check)
		if err != nil {
			errs = append(errs, c.err(err))
			continue
		}
		c.root = root
		c.forbidden = &ForbiddenError{Rule: name, msg: forbiddenMessage(name)}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	// Resolve rule references.
	for _, name := range names {
		c := e.rules[name]
		walk(c.root, func(n *node) {
			if n.op != opRule {
				return
			}
			if n.ref = e.rules[n.name]; n.ref == nil {
				errs = append(errs, c.err(undefinedRefError(n.name)))
			}
		})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}

	if err := e.checkCycles(names); err != nil {
		return nil, err
	}

	e.sorted = make([]Rule, len(names))
	for i, name := range names {
		e.sorted[i] = e.rules[name].rule
	}
	return e, nil
}

func (c *compiled) err(err error) error {
	return &RuleError{Rule: c.rule.Name, Check: c.rule.Check, Override: c.override, Err: err}
}

func walk(n *node, f func(*node)) {
	f(n)
	for _, k := range n.kids {
		walk(k, f)
	}
}

// checkCycles reports the first reference cycle found, visiting rules in
// name order so the error is deterministic.
func (e *Enforcer) checkCycles(names []string) error {
	const (
		unvisited = iota
		inProgress
		done
	)
	state := make(map[*compiled]int, len(e.rules))
	var stack []string
	var visit func(c *compiled) error
	visit = func(c *compiled) error {
		switch state[c] {
		case done:
			return nil
		case inProgress:
			i := slices.Index(stack, c.rule.Name)
			cycle := append(slices.Clone(stack[i:]), c.rule.Name)
			return c.err(fmt.Errorf("rule reference cycle: %s", strings.Join(cycle, " -> ")))
		}
		state[c] = inProgress
		stack = append(stack, c.rule.Name)
		var err error
		walk(c.root, func(n *node) {
			if err == nil && n.op == opRule {
				err = visit(n.ref)
			}
		})
		if err != nil {
			return err
		}
		stack = stack[:len(stack)-1]
		state[c] = done
		return nil
	}
	for _, name := range names {
		if err := visit(e.rules[name]); err != nil {
			return err
		}
	}
	return nil
}

// Authorize evaluates the named rule. It returns nil if the rule passes, a
// *ForbiddenError (wrapping ErrForbidden) if it does not, and an error
// wrapping ErrUnknownRule if no such rule is defined. It does not allocate
// unless the rule is unknown.
func (e *Enforcer) Authorize(rule string, creds Credentials, target map[string]string) error {
	var c *compiled
	if e != nil {
		c = e.rules[rule]
	}
	if c == nil {
		return fmt.Errorf("%w %q", ErrUnknownRule, rule)
	}
	if eval(c.root, &creds, target) {
		return nil
	}
	return c.forbidden
}

// Allowed reports whether the named rule passes. Unknown rules are denied.
func (e *Enforcer) Allowed(rule string, creds Credentials, target map[string]string) bool {
	if e == nil {
		return false
	}
	c := e.rules[rule]
	return c != nil && eval(c.root, &creds, target)
}

// Rules returns the effective rules (defaults with overrides applied, plus
// rules defined only by overrides), sorted by name.
func (e *Enforcer) Rules() []Rule {
	if e == nil {
		return nil
	}
	return slices.Clone(e.sorted)
}

// Lookup returns the effective rule with the given name.
func (e *Enforcer) Lookup(name string) (Rule, bool) {
	if e == nil {
		return Rule{}, false
	}
	c := e.rules[name]
	if c == nil {
		return Rule{}, false
	}
	return c.rule, true
}

// Overridden reports whether the named rule's check string comes from the
// overrides rather than the defaults.
func (e *Enforcer) Overridden(name string) bool {
	if e == nil {
		return false
	}
	c := e.rules[name]
	return c != nil && c.override
}

func eval(n *node, c *Credentials, target map[string]string) bool {
	switch n.op {
	case opTrue:
		return true
	case opFalse:
		return false
	case opAnd:
		for _, k := range n.kids {
			if !eval(k, c, target) {
				return false
			}
		}
		return true
	case opOr:
		for _, k := range n.kids {
			if eval(k, c, target) {
				return true
			}
		}
		return false
	case opNot:
		return !eval(n.kids[0], c, target)
	case opRule:
		return eval(n.ref.root, c, target)
	case opRole:
		for _, r := range c.Roles {
			if n.tmpl.match(r, target, true) {
				return true
			}
		}
		return false
	case opAttr:
		var v string
		switch n.attr {
		case attrUserID:
			v = c.UserID
		case attrUserDomainID:
			v = c.UserDomainID
		case attrProjectID:
			v = c.ProjectID
		case attrProjectDomainID:
			v = c.ProjectDomainID
		case attrDomainID:
			v = c.DomainID
		case attrSystemScope:
			if c.System {
				v = "all"
			}
		case attrIsAdmin:
			v = "False"
			if c.IsAdmin {
				v = "True"
			}
			return n.tmpl.match(v, target, true)
		}
		// An unset attribute never matches, not even an empty target value.
		return v != "" && n.tmpl.match(v, target, false)
	}
	return false
}
