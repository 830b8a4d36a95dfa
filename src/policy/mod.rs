//! Authorization: permission globs, roles, OAuth scopes, deny-wins, default deny.
//!
//! # Permission syntax
//! A permission is a string, optionally prefixed with `!` (deny):
//! - `*` — everything: every tool, resource and prompt on every backend, and every method.
//!   (`!*` denies everything, including `initialize`.)
//! - `<backend>/<tool>` — a tool (`filesystem/read_file`, `filesystem/read_*`, `*/search`).
//!   `<backend>/tool:<tool>` is the same, explicit form.
//! - `<backend>/resource:<uri>` — `resources/read`, `resources/subscribe`, `resources/unsubscribe`.
//! - `<backend>/prompt:<name>` — `prompts/get`.
//! - `method:<method>` — use of a JSON-RPC method (`method:sampling/*`).
//! - `role:<name>` — includes a configured role (in roles, scopes, and identity permissions).
//!
//! The pattern is split at its FIRST `/`: the left part is a glob over the backend name, the
//! right part a glob over the bare item name (tool name, resource URI, prompt name). So
//! `filesystem/*` grants every TOOL of `filesystem` but none of its resources or prompts
//! (`filesystem/resource:*`, `filesystem/prompt:*`), and `*/read_*` can never match a resource
//! URI. Backend names containing `/` can only be matched by `*`-style backend globs.
//!
//! # Glob semantics
//! `*` matches any run of bytes, including none and including `/`; `\` escapes the next
//! character; everything else is compared byte-exactly: case-sensitive, no Unicode folding or
//! normalisation (look-alike and NFD names never match ASCII / NFC patterns), as the backend
//! compares tool names. Matching is linear time (no backtracking); patterns are compiled at
//! configuration time (identity permissions once per [`Policy::principal`]).
//!
//! # Evaluation ([`Policy::authorize`]), first answer wins
//! 1. Method: an explicit `!method:`/`!*` deny → refused; else a `method:`/`*` permission →
//!    allowed; else `tools/call`, `resources/read|subscribe|unsubscribe`, `prompts/get` are
//!    allowed as methods (the item decides); else `default_methods` → allowed; else
//!    `default: allow` → allowed; else refused (`method_not_allowed`).
//! 2. Item methods need an item of the right kind (`missing_item`). A resource URI that, as sent
//!    or percent-decoded, has a `.`/`..` segment, a backslash or a control byte is refused for
//!    everyone (`resource_uri_not_canonical`): URI globs are textual.
//! 3. Tools: the backend's `denied_tools` (globs over the bare name) refuse; a non-empty
//!    `allowed_tools` refuses anything outside it. These apply to everyone, `*` included.
//! 4. Identity permissions, its roles and its scopes (all together): any matching deny refuses
//!    (deny wins); else a matching allow whose argument constraints hold grants; else, if an
//!    allow matched but its constraints failed, refused (`arguments_not_permitted ..`, even with
//!    `default: allow`); else the default (`default_deny` / `default_allow`).
//!
//! `required_scope` names the first configured scope (by name) the caller lacks that would turn a
//! `default_deny` / `method_not_allowed` / `arguments_not_permitted` refusal into an allow.
//!
//! Unknown role / scope names on an identity grant nothing. An identity permission that does
//! not parse grants nothing; a malformed DENY (`!...`) denies everything (fail closed).
//!
//! # Lists
//! [`Policy::filter_list`] keeps an item iff the corresponding call (`tools/call`, `prompts/get`,
//! `resources/read`) would be allowed by the same evaluation, except that argument constraints
//! are treated as satisfied (arguments are unknown when listing): tools granted only under
//! constraints ARE listed.

mod args;
mod config;
mod glob;
mod rules;

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use serde_json::Value;

pub use config::{default_methods, AuthorizationConfig, DefaultEffect};

use crate::auth::Identity;
use crate::config::ConfigError;
use args::uri_is_suspicious;
use config::Compiled;
use glob::Glob;
use rules::{parse_pattern, Kind, Parsed, Rule, RuleSet, RuleTarget};

/// The item a request is about (bare name, after the glue removed any aggregation prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Item<'a> {
    None,
    Tool(&'a str),
    /// A resource URI.
    Resource(&'a str),
    Prompt(&'a str),
}

/// What is being attempted.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub method: &'a str,
    pub backend: &'a str,
    pub item: Item<'a>,
    /// `params.arguments` of `tools/call` / `prompts/get`.
    pub arguments: Option<&'a Value>,
}

/// The outcome, with the rule that decided it (for the audit log) and a short message naming
/// what was refused (for the client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub rule: String,
    pub required_scope: Option<String>,
    pub message: String,
}

/// Which list result is being filtered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// `tools/list`: items keyed by `name`, checked as `tools/call`.
    Tools,
    /// `prompts/list`: items keyed by `name`, checked as `prompts/get`.
    Prompts,
    /// `resources/list`: items keyed by `uri`, checked as `resources/read`.
    Resources,
}

impl ListKind {
    fn method_and_key(self) -> (&'static str, &'static str) {
        match self {
            ListKind::Tools => ("tools/call", "name"),
            ListKind::Prompts => ("prompts/get", "name"),
            ListKind::Resources => ("resources/read", "uri"),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct BackendRules {
    allowed: Vec<Glob>,
    denied: Vec<Glob>,
}

/// The compiled policy, built once per VM.
#[derive(Debug, Clone)]
pub struct Policy {
    compiled: Compiled,
    backends: HashMap<String, BackendRules>,
}

/// An identity's compiled permissions. Build once per identity ([`Policy::principal`]) and reuse
/// it for several decisions (e.g. cache it per API key) to avoid re-parsing permission strings.
#[derive(Debug)]
pub struct Principal<'p> {
    direct: RuleSet,
    sets: Vec<&'p RuleSet>,
}

enum Outcome<'r> {
    Deny(&'r Rule),
    Allow(&'r Rule),
    ArgsFailed(&'r Rule),
    NoMatch,
}

/// Result of the core evaluation: the decision, and whether another permission could have
/// turned it into an allow (so a scope may be named).
struct Core {
    decision: Decision,
    soft: bool,
}

const MAX_NAME_IN_MESSAGE: usize = 128;

impl Policy {
    pub fn new(cfg: &crate::config::Config) -> Result<Policy, ConfigError> {
        let compiled = cfg.security.authorization.compile("security.authorization")?;
        let mut backends = HashMap::new();
        for (i, b) in cfg.backends.iter().enumerate() {
            let mut rules = BackendRules::default();
            for (j, p) in b.allowed_tools.iter().enumerate() {
                rules.allowed.push(
                    Glob::new(p)
                        .map_err(|e| ConfigError::new(format!("backends[{i}].allowed_tools[{j}]"), e))?,
                );
            }
            for (j, p) in b.denied_tools.iter().enumerate() {
                rules.denied.push(
                    Glob::new(p)
                        .map_err(|e| ConfigError::new(format!("backends[{i}].denied_tools[{j}]"), e))?,
                );
            }
            backends.insert(b.name.clone(), rules);
        }
        Ok(Policy { compiled, backends })
    }

    /// Checks a permission string as it may appear on an identity (API key `permissions`).
    pub fn check_permission(p: &str) -> Result<(), String> {
        parse_pattern(p).map(|_| ())
    }

    /// Compiles an identity's permissions and resolves its roles and scopes.
    pub fn principal<'p>(&'p self, who: &Identity) -> Principal<'p> {
        let mut direct = RuleSet::default();
        let mut sets: Vec<&'p RuleSet> = Vec::new();
        let add = |set: &'p RuleSet, sets: &mut Vec<&'p RuleSet>| {
            if !set.is_empty() && !sets.iter().any(|s| std::ptr::eq(*s, set)) {
                sets.push(set);
            }
        };
        for p in &who.permissions {
            match parse_pattern(p) {
                Ok(Parsed::Rule(deny, target)) => direct.push(Rule {
                    deny,
                    label: format!("permission {p}"),
                    target,
                    constraints: Vec::new(),
                }),
                Ok(Parsed::RoleRef(r)) => {
                    if let Some(set) = self.compiled.roles.get(&r) {
                        add(set, &mut sets);
                    }
                }
                Err(_) if p.starts_with('!') => direct.push(Rule {
                    deny: true,
                    label: format!("permission {p} (malformed deny: denies everything)"),
                    target: RuleTarget::All,
                    constraints: Vec::new(),
                }),
                Err(_) => {}
            }
        }
        for r in &who.roles {
            if let Some(set) = self.compiled.roles.get(r) {
                add(set, &mut sets);
            }
        }
        for s in &who.scopes {
            if let Some((_, set)) = self.compiled.scopes.iter().find(|(n, _)| n == s) {
                add(set, &mut sets);
            }
        }
        Principal { direct, sets }
    }

    pub fn authorize(&self, who: &Identity, target: &Target) -> Decision {
        self.authorize_principal(&self.principal(who), target)
    }

    pub fn authorize_principal(&self, p: &Principal, target: &Target) -> Decision {
        let core = self.decide(p, None, target, true);
        let mut decision = core.decision;
        if !decision.allowed && core.soft {
            decision.required_scope = self
                .compiled
                .scopes
                .iter()
                .filter(|(_, set)| !p.sets.iter().any(|s| std::ptr::eq(*s, set)))
                .find(|(_, set)| self.decide(p, Some(set), target, true).decision.allowed)
                .map(|(name, _)| name.clone());
        }
        decision
    }

    /// Removes from a list result every item the caller could not call (see module docs).
    /// `resolve` maps an item's `name` (`uri` for resources) to `(backend, bare name)`; items
    /// without a string name, or that resolve to `None`, are removed. Returns how many were removed.
    pub fn filter_list(
        &self,
        who: &Identity,
        kind: ListKind,
        items: &mut Vec<Value>,
        resolve: &dyn Fn(&str) -> Option<(String, String)>,
    ) -> usize {
        let p = self.principal(who);
        let (method, key) = kind.method_and_key();
        let before = items.len();
        items.retain(|it| {
            let Some(name) = it.get(key).and_then(Value::as_str) else {
                return false;
            };
            let Some((backend, bare)) = resolve(name) else {
                return false;
            };
            let item = match kind {
                ListKind::Tools => Item::Tool(&bare),
                ListKind::Prompts => Item::Prompt(&bare),
                ListKind::Resources => Item::Resource(&bare),
            };
            let target = Target { method, backend: &backend, item, arguments: None };
            self.decide(&p, None, &target, false).decision.allowed
        });
        before - items.len()
    }

    fn decide(&self, p: &Principal, extra: Option<&RuleSet>, t: &Target, check_args: bool) -> Core {
        let sets = || std::iter::once(&p.direct).chain(p.sets.iter().copied()).chain(extra);
        let mut buf = Vec::new();

        // 1. Method.
        let item_method = item_kind_for(t.method);
        let method_rule = match eval(sets(), &mut buf, |s, b| s.method_matches(t.method, b), |_| true) {
            Outcome::Deny(r) => return deny(r.label.clone(), method_msg(t.method), false),
            Outcome::Allow(r) | Outcome::ArgsFailed(r) => r.label.clone(),
            Outcome::NoMatch => {
                if item_method.is_some() {
                    "item_method".to_string()
                } else if let Some(g) = self.compiled.default_methods.iter().find(|g| g.is_match(t.method)) {
                    format!("default_methods {}", g.source())
                } else if self.compiled.default == DefaultEffect::Allow {
                    "default_allow".to_string()
                } else {
                    return deny("method_not_allowed".to_string(), method_msg(t.method), true);
                }
            }
        };

        // 2. Item.
        let (kind, name) = match t.item {
            Item::None => {
                if let Some(k) = item_method {
                    return deny(
                        "missing_item".into(),
                        format!("`{}` needs a {} name", clean(t.method), k.noun()),
                        false,
                    );
                }
                return allow(method_rule);
            }
            Item::Tool(n) => (Kind::Tool, n),
            Item::Resource(n) => (Kind::Resource, n),
            Item::Prompt(n) => (Kind::Prompt, n),
        };
        if let Some(k) = item_method.filter(|k| *k != kind) {
            return deny(
                "missing_item".into(),
                format!("`{}` needs a {} name", clean(t.method), k.noun()),
                false,
            );
        }
        let what = || format!("{} `{}` on backend `{}`", kind.noun(), clean(name), clean(t.backend));
        if kind == Kind::Resource && uri_is_suspicious(name) {
            return deny("resource_uri_not_canonical".into(), format!("{} is not permitted", what()), false);
        }

        // 3. Backend rules (everyone).
        if kind == Kind::Tool {
            if let Some(b) = self.backends.get(t.backend) {
                if let Some(g) = b.denied.iter().find(|g| g.is_match(name)) {
                    let rule = format!("backend:{}.denied_tools {}", t.backend, g.source());
                    return deny(rule, format!("{} is not permitted", what()), false);
                }
                if !b.allowed.is_empty() && !b.allowed.iter().any(|g| g.is_match(name)) {
                    let rule = format!("backend:{}.allowed_tools", t.backend);
                    return deny(rule, format!("{} is not permitted", what()), false);
                }
            }
        }

        // 4. Identity.
        let args_ok = |r: &Rule| !check_args || r.constraints.iter().all(|c| c.check(t.arguments));
        match eval(sets(), &mut buf, |s, b| s.item_matches(t.backend, kind, name, b), args_ok) {
            Outcome::Deny(r) => deny(r.label.clone(), format!("{} is not permitted", what()), false),
            Outcome::Allow(r) => allow(r.label.clone()),
            Outcome::ArgsFailed(r) => deny(
                format!("arguments_not_permitted {}", r.label),
                format!("{} is not permitted with these arguments", what()),
                true,
            ),
            Outcome::NoMatch if self.compiled.default == DefaultEffect::Allow => {
                allow("default_allow".into())
            }
            Outcome::NoMatch => deny("default_deny".into(), format!("{} is not permitted", what()), true),
        }
    }
}

/// Deny wins over every set; otherwise the first allow (set order, then rule order) whose
/// constraints hold; otherwise the first allow whose constraints failed.
fn eval<'r>(
    sets: impl Iterator<Item = &'r RuleSet>,
    buf: &mut Vec<u32>,
    matches: impl Fn(&RuleSet, &mut Vec<u32>),
    args_ok: impl Fn(&Rule) -> bool,
) -> Outcome<'r> {
    let mut allow: Option<&'r Rule> = None;
    let mut failed: Option<&'r Rule> = None;
    let mut pending: Vec<&'r Rule> = Vec::new();
    for set in sets {
        matches(set, buf);
        for &i in buf.iter() {
            let Some(rule) = set.rule(i) else { continue };
            if rule.deny {
                return Outcome::Deny(rule);
            }
            if allow.is_none() {
                if rule.constraints.is_empty() {
                    allow = Some(rule);
                } else {
                    pending.push(rule);
                }
            }
        }
    }
    if let Some(r) = allow {
        return Outcome::Allow(r);
    }
    // Constraints are only evaluated when no deny matched.
    for rule in pending {
        if args_ok(rule) {
            return Outcome::Allow(rule);
        }
        failed.get_or_insert(rule);
    }
    match failed {
        Some(r) => Outcome::ArgsFailed(r),
        None => Outcome::NoMatch,
    }
}

fn item_kind_for(method: &str) -> Option<Kind> {
    match method {
        "tools/call" => Some(Kind::Tool),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => Some(Kind::Resource),
        "prompts/get" => Some(Kind::Prompt),
        _ => None,
    }
}

fn allow(rule: String) -> Core {
    Core {
        decision: Decision { allowed: true, rule, required_scope: None, message: "allowed".into() },
        soft: false,
    }
}

fn deny(rule: String, message: String, soft: bool) -> Core {
    Core { decision: Decision { allowed: false, rule, required_scope: None, message }, soft }
}

fn method_msg(m: &str) -> String {
    format!("method `{}` is not permitted", clean(m))
}

/// Caller-supplied text for messages: control characters replaced, length capped.
fn clean(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if out.len() >= MAX_NAME_IN_MESSAGE {
            out.push('…');
            break;
        }
        out.push(if c.is_control() || c == '`' { '?' } else { c });
    }
    out
}
