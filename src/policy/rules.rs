//! Permission patterns: parsing, compilation and an index for fast lookup.

use std::collections::HashMap;

use serde_json::Value;

use super::args::{parse_constraints, Constraint};
use super::glob::Glob;

/// The kind of item a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Tool = 0,
    Resource = 1,
    Prompt = 2,
}

impl Kind {
    pub(crate) fn noun(self) -> &'static str {
        match self {
            Kind::Tool => "tool",
            Kind::Resource => "resource",
            Kind::Prompt => "prompt",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum RuleTarget {
    /// `*`: every item on every backend and every method.
    All,
    /// `method:<glob>`.
    Method(Glob),
    /// `<backend glob>/<item glob>`, `<backend glob>/resource:<uri glob>`,
    /// `<backend glob>/prompt:<name glob>`.
    Item { backend: Glob, kind: Kind, item: Glob },
}

/// One compiled permission.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) deny: bool,
    /// `<origin> <pattern>` as reported in `Decision::rule`, e.g. `role:reader !fs/delete_file`.
    pub(crate) label: String,
    pub(crate) target: RuleTarget,
    pub(crate) constraints: Vec<Constraint>,
}

/// What a permission string parses to.
pub(crate) enum Parsed {
    Rule(bool, RuleTarget),
    /// `role:<name>`: include that role's permissions.
    RoleRef(String),
}

/// Parses a permission string (without constraints).
pub(crate) fn parse_pattern(s: &str) -> Result<Parsed, String> {
    let (deny, body) = match s.strip_prefix('!') {
        Some(b) => (true, b),
        None => (false, s),
    };
    if body == "*" {
        return Ok(Parsed::Rule(deny, RuleTarget::All));
    }
    if let Some(m) = body.strip_prefix("method:") {
        return Ok(Parsed::Rule(
            deny,
            RuleTarget::Method(Glob::new(m).map_err(|e| format!("method glob: {e}"))?),
        ));
    }
    if let Some(r) = body.strip_prefix("role:") {
        if deny {
            return Err("`!role:` is not supported (deny the role's patterns instead)".to_string());
        }
        if r.is_empty() {
            return Err("empty role name".to_string());
        }
        return Ok(Parsed::RoleRef(r.to_string()));
    }
    let Some((backend, rest)) = body.split_once('/') else {
        return Err(format!(
            "`{s}` is not a permission: expected `*`, `<backend>/<tool>`, `<backend>/resource:<uri>`, \
             `<backend>/prompt:<name>`, `method:<method>` or `role:<name>` (each may start with `!`)"
        ));
    };
    let (kind, item) = if let Some(u) = rest.strip_prefix("resource:") {
        (Kind::Resource, u)
    } else if let Some(p) = rest.strip_prefix("prompt:") {
        (Kind::Prompt, p)
    } else if let Some(t) = rest.strip_prefix("tool:") {
        (Kind::Tool, t)
    } else {
        (Kind::Tool, rest)
    };
    let backend = Glob::new(backend).map_err(|e| format!("backend glob: {e}"))?;
    let item = Glob::new(item).map_err(|e| format!("{} glob: {e}", kind.noun()))?;
    Ok(Parsed::Rule(deny, RuleTarget::Item { backend, kind, item }))
}

/// A permission entry from config: a string, or `{pattern, arguments}`.
pub(crate) struct Entry {
    pub(crate) pattern: String,
    pub(crate) parsed: Parsed,
    pub(crate) constraints: Vec<Constraint>,
}

/// Parses a config permission entry; errors are `(key, message)`.
pub(crate) fn parse_entry(v: &Value, key: &str) -> Result<Entry, (String, String)> {
    match v {
        Value::String(s) => {
            let parsed = parse_pattern(s).map_err(|m| (key.to_string(), m))?;
            Ok(Entry { pattern: s.clone(), parsed, constraints: Vec::new() })
        }
        Value::Object(obj) => {
            if let Some(k) = obj.keys().find(|k| *k != "pattern" && *k != "arguments") {
                return Err((format!("{key}.{k}"), "unknown key (expected pattern, arguments)".to_string()));
            }
            let pkey = format!("{key}.pattern");
            let pattern = obj
                .get("pattern")
                .and_then(Value::as_str)
                .ok_or_else(|| (pkey.clone(), "must be a string".to_string()))?;
            let parsed = parse_pattern(pattern).map_err(|m| (pkey.clone(), m))?;
            let constraints = match obj.get("arguments") {
                None => Vec::new(),
                Some(a) => {
                    let akey = format!("{key}.arguments");
                    match &parsed {
                        Parsed::Rule(false, RuleTarget::Item { kind: Kind::Tool | Kind::Prompt, .. }) => {}
                        Parsed::Rule(true, _) => {
                            return Err((
                                akey,
                                "argument constraints are not allowed on `!` deny patterns".to_string(),
                            ))
                        }
                        _ => {
                            return Err((
                                akey,
                                "argument constraints apply only to tool and prompt patterns".to_string(),
                            ))
                        }
                    }
                    parse_constraints(a, &akey)?
                }
            };
            Ok(Entry { pattern: pattern.to_string(), parsed, constraints })
        }
        _ => Err((key.to_string(), "must be a permission string or {pattern, arguments}".to_string())),
    }
}

#[derive(Debug, Clone, Default)]
struct KindIndex {
    /// Literal item name -> rule indices.
    exact: [HashMap<String, Vec<u32>>; 3],
    /// Rules whose item glob has a star but starts with a literal, by that first byte.
    globs_by_first: [HashMap<u8, Vec<u32>>; 3],
    /// Rules whose item glob starts with a star.
    globs: [Vec<u32>; 3],
}

impl KindIndex {
    /// Star-glob rules that may match `name`: those starting with a star, and those whose first
    /// literal byte is `name`'s first byte.
    fn glob_candidates<'a>(&'a self, k: usize, name: &str) -> impl Iterator<Item = &'a u32> + 'a {
        let leading_star = self.globs.get(k).map(Vec::as_slice).unwrap_or_default();
        let by_first = name
            .as_bytes()
            .first()
            .and_then(|b| self.globs_by_first.get(k).and_then(|m| m.get(b)))
            .map(Vec::as_slice)
            .unwrap_or_default();
        leading_star.iter().chain(by_first)
    }
}

/// A compiled set of rules (one role, one scope, or an identity's direct permissions) with an
/// index: rules on a literal backend are looked up by backend name, literal items by name.
#[derive(Debug, Clone, Default)]
pub(crate) struct RuleSet {
    pub(crate) rules: Vec<Rule>,
    all: Vec<u32>,
    methods: Vec<u32>,
    by_backend: HashMap<String, KindIndex>,
    any_backend: KindIndex,
}

impl RuleSet {
    pub(crate) fn push(&mut self, rule: Rule) {
        let idx = u32::try_from(self.rules.len()).unwrap_or(u32::MAX);
        match &rule.target {
            RuleTarget::All => self.all.push(idx),
            RuleTarget::Method(_) => self.methods.push(idx),
            RuleTarget::Item { backend, kind, item } => {
                let ki = match backend.literal().and_then(|b| std::str::from_utf8(b).ok()) {
                    Some(b) => self.by_backend.entry(b.to_string()).or_default(),
                    None => &mut self.any_backend,
                };
                let k = *kind as usize;
                match item.literal().and_then(|b| std::str::from_utf8(b).ok()) {
                    Some(name) => {
                        if let Some(map) = ki.exact.get_mut(k) {
                            map.entry(name.to_string()).or_default().push(idx);
                        }
                    }
                    None => match item.first_byte() {
                        Some(first) => {
                            if let Some(map) = ki.globs_by_first.get_mut(k) {
                                map.entry(first).or_default().push(idx);
                            }
                        }
                        None => {
                            if let Some(v) = ki.globs.get_mut(k) {
                                v.push(idx);
                            }
                        }
                    },
                }
            }
        }
        self.rules.push(rule);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub(crate) fn rule(&self, idx: u32) -> Option<&Rule> {
        self.rules.get(idx as usize)
    }

    /// Indices (sorted) of rules that match a method.
    pub(crate) fn method_matches(&self, method: &str, out: &mut Vec<u32>) {
        out.clear();
        out.extend_from_slice(&self.all);
        for &i in &self.methods {
            if let Some(Rule { target: RuleTarget::Method(g), .. }) = self.rule(i) {
                if g.is_match(method) {
                    out.push(i);
                }
            }
        }
        out.sort_unstable();
    }

    /// Indices (sorted) of rules whose pattern matches an item (constraints not checked).
    pub(crate) fn item_matches(&self, backend: &str, kind: Kind, name: &str, out: &mut Vec<u32>) {
        out.clear();
        out.extend_from_slice(&self.all);
        let k = kind as usize;
        if let Some(ki) = self.by_backend.get(backend) {
            if let Some(v) = ki.exact.get(k).and_then(|m| m.get(name)) {
                out.extend_from_slice(v);
            }
            for &i in ki.glob_candidates(k, name) {
                if let Some(Rule { target: RuleTarget::Item { item, .. }, .. }) = self.rule(i) {
                    if item.is_match(name) {
                        out.push(i);
                    }
                }
            }
        }
        let ki = &self.any_backend;
        if let Some(v) = ki.exact.get(k).and_then(|m| m.get(name)) {
            for &i in v {
                if let Some(Rule { target: RuleTarget::Item { backend: b, .. }, .. }) = self.rule(i) {
                    if b.is_match(backend) {
                        out.push(i);
                    }
                }
            }
        }
        for &i in ki.glob_candidates(k, name) {
            if let Some(Rule { target: RuleTarget::Item { backend: b, item, .. }, .. }) = self.rule(i) {
                if b.is_match(backend) && item.is_match(name) {
                    out.push(i);
                }
            }
        }
        out.sort_unstable();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_forms() {
        assert!(matches!(parse_pattern("*"), Ok(Parsed::Rule(false, RuleTarget::All))));
        assert!(matches!(parse_pattern("!*"), Ok(Parsed::Rule(true, RuleTarget::All))));
        assert!(matches!(parse_pattern("method:tools/*"), Ok(Parsed::Rule(false, RuleTarget::Method(_)))));
        assert!(matches!(
            parse_pattern("fs/resource:file:///*"),
            Ok(Parsed::Rule(false, RuleTarget::Item { kind: Kind::Resource, .. }))
        ));
        assert!(matches!(
            parse_pattern("!fs/prompt:x"),
            Ok(Parsed::Rule(true, RuleTarget::Item { kind: Kind::Prompt, .. }))
        ));
        assert!(matches!(
            parse_pattern("fs/tool:a"),
            Ok(Parsed::Rule(false, RuleTarget::Item { kind: Kind::Tool, .. }))
        ));
        assert!(matches!(parse_pattern("role:reader"), Ok(Parsed::RoleRef(_))));
        for bad in ["", "fs", "admin", "fs/", "/x", "method:", "!role:x", "role:", "fs/a\\"] {
            assert!(parse_pattern(bad).is_err(), "{bad}");
        }
    }
}
