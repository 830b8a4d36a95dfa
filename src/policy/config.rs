//! `security.authorization`: schema, validation, and compilation of roles and scopes.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::Value;

use super::glob::Glob;
use super::rules::{parse_entry, Parsed, Rule, RuleSet};
use crate::config::ConfigError;

/// Entries (including those reached through `role:`) one role or scope may expand to.
const EXPANSION_BUDGET: usize = 100_000;

/// What happens when no permission matches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultEffect {
    #[default]
    Deny,
    Allow,
}

/// `security.authorization`.
///
/// ```json
/// "authorization": {
///   "default": "deny",
///   "default_methods": ["initialize", "ping", "notifications/*", "tools/list"],
///   "roles": {
///     "reader": ["filesystem/read_*", "filesystem/list_*", "!filesystem/read_secret",
///                "filesystem/resource:file:///data/*", "*/prompt:summarise"],
///     "writer": ["role:reader",
///                {"pattern": "filesystem/write_file",
///                 "arguments": {"path": {"prefix": "/data/sandbox/"}}}],
///     "admin": ["*"]
///   },
///   "scopes": { "tools:read": ["role:reader"], "tools:write": ["role:writer"] }
/// }
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationConfig {
    /// `deny` (default) or `allow` when nothing matches (items and methods).
    #[serde(default)]
    pub default: DefaultEffect,
    /// Method globs every authenticated principal may use without a `method:` permission.
    #[serde(default = "default_methods")]
    pub default_methods: Vec<String>,
    /// Role name -> permission entries (strings, or `{pattern, arguments}` objects).
    #[serde(default)]
    pub roles: BTreeMap<String, Vec<Value>>,
    /// OAuth scope -> permission entries (same syntax as roles).
    #[serde(default)]
    pub scopes: BTreeMap<String, Vec<Value>>,
}

/// The default `default_methods`.
pub fn default_methods() -> Vec<String> {
    [
        "initialize",
        "ping",
        "notifications/*",
        "tools/list",
        "resources/list",
        "resources/templates/list",
        "prompts/list",
        "completion/complete",
        "logging/setLevel",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

impl Default for AuthorizationConfig {
    fn default() -> Self {
        Self {
            default: DefaultEffect::Deny,
            default_methods: default_methods(),
            roles: BTreeMap::new(),
            scopes: BTreeMap::new(),
        }
    }
}

impl AuthorizationConfig {
    /// Validates every pattern, constraint and `role:` reference; errors name the key
    /// (`security.authorization.roles.writer[1].arguments.path.prefix`).
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        self.compile(key).map(|_| ())
    }

    /// True when `name` is a configured role (for validating API-key / claim role references).
    pub fn has_role(&self, name: &str) -> bool {
        self.roles.contains_key(name)
    }

    pub(crate) fn compile(&self, key: &str) -> Result<Compiled, ConfigError> {
        let mut default_methods = Vec::with_capacity(self.default_methods.len());
        for (i, m) in self.default_methods.iter().enumerate() {
            let g = Glob::new(m).map_err(|e| ConfigError::new(format!("{key}.default_methods[{i}]"), e))?;
            default_methods.push(g);
        }
        let mut roles = HashMap::new();
        for name in self.roles.keys() {
            if name.is_empty() {
                return Err(ConfigError::new(format!("{key}.roles"), "role names must not be empty"));
            }
            let mut set = RuleSet::default();
            let mut stack = Vec::new();
            let mut budget = EXPANSION_BUDGET;
            self.expand(key, "roles", name, &self.roles, &mut stack, &mut budget, &mut set)?;
            roles.insert(name.clone(), set);
        }
        let mut scopes = Vec::new();
        for name in self.scopes.keys() {
            if name.is_empty() {
                return Err(ConfigError::new(format!("{key}.scopes"), "scope names must not be empty"));
            }
            let mut set = RuleSet::default();
            let mut stack = Vec::new();
            let mut budget = EXPANSION_BUDGET;
            self.expand(key, "scopes", name, &self.scopes, &mut stack, &mut budget, &mut set)?;
            scopes.push((name.clone(), set));
        }
        Ok(Compiled { default: self.default, default_methods, roles, scopes })
    }

    /// Appends the rules of `table[name]` (following `role:` references, depth-first, cycles are
    /// errors) to `out`. Each rule is labelled with the role / scope where it was written.
    #[allow(clippy::too_many_arguments)]
    fn expand(
        &self,
        key: &str,
        table_name: &str,
        name: &str,
        table: &BTreeMap<String, Vec<Value>>,
        stack: &mut Vec<String>,
        budget: &mut usize,
        out: &mut RuleSet,
    ) -> Result<(), ConfigError> {
        let origin = if table_name == "roles" { format!("role:{name}") } else { format!("scope:{name}") };
        let entries = table.get(name).map(Vec::as_slice).unwrap_or_default();
        stack.push(format!("{table_name}.{name}"));
        for (i, v) in entries.iter().enumerate() {
            let ekey = format!("{key}.{table_name}.{name}[{i}]");
            if *budget == 0 {
                return Err(ConfigError::new(ekey, "role expansion exceeds 100000 entries"));
            }
            *budget -= 1;
            let entry = parse_entry(v, &ekey).map_err(|(k, m)| ConfigError::new(k, m))?;
            match entry.parsed {
                Parsed::RoleRef(r) => {
                    if !self.roles.contains_key(&r) {
                        return Err(ConfigError::new(ekey, format!("unknown role `{r}`")));
                    }
                    let marker = format!("roles.{r}");
                    if stack.contains(&marker) {
                        return Err(ConfigError::new(ekey, format!("role `{r}` includes itself")));
                    }
                    if stack.len() > 32 {
                        return Err(ConfigError::new(ekey, "role nesting deeper than 32"));
                    }
                    self.expand(key, "roles", &r, &self.roles, stack, budget, out)?;
                }
                Parsed::Rule(deny, target) => out.push(Rule {
                    deny,
                    label: format!("{origin} {}", entry.pattern),
                    target,
                    constraints: entry.constraints,
                }),
            }
        }
        stack.pop();
        Ok(())
    }
}

/// Compiled `security.authorization`.
#[derive(Debug, Clone)]
pub(crate) struct Compiled {
    pub(crate) default: DefaultEffect,
    pub(crate) default_methods: Vec<Glob>,
    pub(crate) roles: HashMap<String, RuleSet>,
    /// In key order (deterministic `required_scope`).
    pub(crate) scopes: Vec<(String, RuleSet)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(json: &str) -> Result<AuthorizationConfig, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    fn err_key(json: &str) -> Option<String> {
        cfg(json).ok().and_then(|c| c.validate("security.authorization").err()).map(|e| e.key)
    }

    #[test]
    fn defaults() {
        let c = AuthorizationConfig::default();
        assert_eq!(c.default, DefaultEffect::Deny);
        assert!(c.default_methods.iter().any(|m| m == "notifications/*"));
        assert!(c.validate("k").is_ok());
        assert!(cfg("{}").is_ok_and(|c| c.default_methods.len() == 9));
        assert!(cfg(r#"{"default":"maybe"}"#).is_err());
        assert!(cfg(r#"{"rolez":{}}"#).is_err());
    }

    #[test]
    fn errors_name_keys() {
        let p = "security.authorization";
        assert_eq!(err_key(r#"{"roles":{"r":["fs"]}}"#), Some(format!("{p}.roles.r[0]")));
        assert_eq!(err_key(r#"{"roles":{"r":["*","role:nope"]}}"#), Some(format!("{p}.roles.r[1]")));
        assert_eq!(err_key(r#"{"roles":{"a":["role:b"],"b":["role:a"]}}"#), Some(format!("{p}.roles.b[0]")));
        assert_eq!(err_key(r#"{"scopes":{"s":["role:nope"]}}"#), Some(format!("{p}.scopes.s[0]")));
        assert_eq!(err_key(r#"{"default_methods":[""]}"#), Some(format!("{p}.default_methods[0]")));
        assert_eq!(
            err_key(r#"{"roles":{"w":[{"pattern":"fs/w","arguments":{"path":{"prefix":3}}}]}}"#),
            Some(format!("{p}.roles.w[0].arguments.path.prefix"))
        );
        assert_eq!(
            err_key(r#"{"roles":{"w":[{"pattern":"!fs/w","arguments":{"path":{"prefix":"/a"}}}]}}"#),
            Some(format!("{p}.roles.w[0].arguments"))
        );
        assert_eq!(
            err_key(r#"{"roles":{"w":[{"pattern":"fs/resource:x","arguments":{"p":{"equals":"a"}}}]}}"#),
            Some(format!("{p}.roles.w[0].arguments"))
        );
        assert_eq!(err_key(r#"{"roles":{"w":[{"patern":"fs/w"}]}}"#), Some(format!("{p}.roles.w[0].patern")));
        assert_eq!(err_key(r#"{"roles":{"w":[1]}}"#), Some(format!("{p}.roles.w[0]")));
        assert_eq!(err_key(r#"{"roles":{"a":["role:b"],"b":["*"]}}"#), None);
    }
}
