// Package policy is Kumo's role-based access control engine. It is shared by
// every Kumo service and understands the check-string language of
// OpenStack's oslo.policy, so operators can override the built-in defaults
// with a familiar policy.yaml (or legacy policy.json) file.
//
// # Rules and enforcement
//
// Each service declares its default rules ([Rule]) and builds an [Enforcer]
// with [New], passing the operator overrides read by [LoadOverrides]. New
// parses every check string once, resolves rule references, and rejects
// syntax errors, references to undefined rules, and reference cycles, so a
// bad policy file fails at start-up instead of at request time. The
// resulting Enforcer is immutable and safe for concurrent use; to reload a
// policy file, build a new Enforcer and swap it in (for example with
// sync/atomic.Pointer).
//
// [Enforcer.Authorize] evaluates a named rule against the caller's
// [Credentials] and a target map. It returns nil when access is granted, an
// error wrapping [ErrForbidden] (a *[ForbiddenError]) when it is denied, and
// an error wrapping [ErrUnknownRule] when the rule does not exist.
// Evaluation does not allocate.
//
// # Check strings
//
// A check string combines checks with the operators "not", "and" and "or"
// (case-insensitive), and with parentheses. "not" binds tightest, then
// "and", then "or", so
//
//	role:admin or role:reader and not project_id:%(project_id)s
//
// means
//
//	role:admin or (role:reader and (not project_id:%(project_id)s))
//
// The empty check string always passes. The checks are:
//
//	@                 always passes
//	!                 never passes
//	rule:NAME         passes when the rule NAME passes
//	role:NAME         passes when the credentials hold role NAME (roles,
//	                  including implied roles, compare case-insensitively)
//	ATTR:VALUE        passes when credential attribute ATTR equals VALUE
//
// The credential attributes are user_id, user_domain_id, project_id,
// project_domain_id, domain_id, system_scope ("all" for system-scoped
// credentials) and is_admin (True or False). For compatibility with older
// policy files, tenant_id and tenant are accepted as aliases of project_id.
// An empty credential attribute never matches anything, so for example
// "project_id:%(project_id)s" is false for a domain-scoped token even if the
// target's project_id is also empty.
//
// VALUE (and the NAME of a role check) is one of:
//
//	literal           compared as-is:              system_scope:all
//	'literal'         quoted literal, may contain  user_id:'a b:c'
//	"literal"         spaces, colons, parentheses
//	                  and a literal %
//	%(KEY)s           replaced by target[KEY];     project_id:%(project_id)s
//	                  the check is false when the  domain_id:%(target.user.domain_id)s
//	                  target has no KEY
//
// Substitutions may be mixed with literal text (%% is a literal percent
// sign), for example user_id:svc-%(owner)s. For is_admin the value must be
// True or False (case-insensitive), e.g. is_admin:True.
//
// Targets are flat maps whose keys may contain dots, so
// %(target.user.domain_id)s looks up the key "target.user.domain_id".
//
// Checks of any other kind (oslo's http: and generic credential paths such
// as token.is_admin_project, or left-hand literals) are rejected when the
// policy is loaded, as is the legacy list-of-lists JSON rule form.
//
// # Policy files
//
// [LoadOverrides] reads a YAML or JSON mapping of rule name to check string:
//
//	"identity:get_user": "role:admin or user_id:%(target.user.id)s"
//	"identity:list_users": "rule:admin_required"
//
// Every value must be a string; use "" (not a YAML null) for a rule that
// always passes. Overrides replace the check string of the default rule of
// the same name, keeping its description; overrides naming rules that have
// no default define new rules that other rules may reference.
package policy
