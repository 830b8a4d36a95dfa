//! Filter configuration: schema, parsing and validation.
//!
//! Envoy hands the plugin configuration to the VM as bytes: a `google.protobuf.StringValue`
//! arrives verbatim, a `google.protobuf.Struct` (YAML written inline in envoy.yaml) arrives
//! serialised as JSON. Both are therefore parsed as JSON here. Every struct denies unknown keys
//! and every error names the full key path (`security.injection.block_threshold`), so
//! `envoy --mode validate` fails with a message that points at the mistake.

mod strict;

use serde::Deserialize;
use std::fmt;

use crate::auth::AuthConfig;
use crate::pinning::ToolPinningConfig;
use crate::policy::AuthorizationConfig;
use crate::ratelimit::{RateLimitConfig, RateLimitSpec};
use crate::scorer::InjectionConfig;
use crate::session::SessionBindingConfig;

/// A configuration error that names the offending key.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self { key: key.into(), message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "invalid mcp-gateway configuration: {}", self.message)
        } else {
            write!(f, "invalid mcp-gateway configuration at `{}`: {}", self.key, self.message)
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Per-backend rules. A backend is an Envoy cluster or an `mcp_router` tool prefix.
    #[serde(default)]
    pub backends: Vec<BackendConfig>,
    #[serde(default)]
    pub routing: RoutingConfig,
    #[serde(default)]
    pub security: SecurityConfig,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// Backend name: the Envoy cluster name, or the `mcp_router` server name (tool prefix).
    pub name: String,
    /// Tool globs this backend exposes to anyone; empty means no restriction.
    #[serde(default)]
    pub allowed_tools: Vec<String>,
    /// Tool globs nobody may call on this backend (wins over every allow).
    #[serde(default)]
    pub denied_tools: Vec<String>,
    /// Token bucket per client on this backend.
    #[serde(default)]
    pub rate_limit: Option<RateLimitSpec>,
    /// Forward the client's `Authorization` / `X-API-Key` headers to this backend (off: the
    /// MCP spec forbids token passthrough unless the token was issued for the upstream).
    #[serde(default)]
    pub forward_credentials: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackendSource {
    /// The backend is the route's cluster (`xds.cluster_name`).
    #[default]
    Cluster,
    /// The backend is the `<backend><separator>` prefix of the tool / prompt name or the
    /// `<backend>+` prefix of a resource URI, as Envoy's `mcp_router` aggregates them.
    RouterPrefix,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// Where the backend identity comes from on routes not listed in `router_routes`.
    #[serde(default)]
    pub backend_from: BackendSource,
    /// Route names (`xds.route_name`) served by `mcp_router`: there the backend is the prefix.
    #[serde(default)]
    pub router_routes: Vec<String>,
    /// Separator between backend and tool in aggregated names (`mcp_router` uses `__`).
    #[serde(default = "default_separator")]
    pub prefix_separator: String,
}

fn default_separator() -> String {
    "__".to_string()
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            backend_from: BackendSource::default(),
            router_routes: Vec::new(),
            prefix_separator: default_separator(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    #[serde(default)]
    pub auth: AuthConfig,
    #[serde(default)]
    pub authorization: AuthorizationConfig,
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    #[serde(default)]
    pub injection: InjectionConfig,
    #[serde(default)]
    pub session_binding: SessionBindingConfig,
    #[serde(default)]
    pub tool_pinning: ToolPinningConfig,
}

impl Config {
    /// Parses the plugin configuration as Envoy delivers it: JSON text (a `StringValue`, or
    /// empty for all defaults) or a binary `google.protobuf.Struct` (inline YAML).
    pub fn from_plugin_bytes(bytes: &[u8]) -> Result<Config, ConfigError> {
        let trimmed = trim_ascii(bytes);
        match trimmed.first() {
            None | Some(b'{') => Self::from_json(trimmed),
            Some(_) => {
                let v = crate::pbstruct::decode_struct(bytes).map_err(|e| {
                    ConfigError::new("", format!("configuration is neither JSON nor a protobuf Struct: {e}"))
                })?;
                Self::from_value(v)
            }
        }
    }

    /// Parses and validates a JSON configuration (empty means all defaults).
    pub fn from_json(bytes: &[u8]) -> Result<Config, ConfigError> {
        let trimmed = trim_ascii(bytes);
        if trimmed.is_empty() {
            let cfg = Config::default();
            cfg.validate()?;
            return Ok(cfg);
        }
        Self::from_value(strict::parse(trimmed)?)
    }

    pub fn from_value(v: serde_json::Value) -> Result<Config, ConfigError> {
        Self::finish(serde_path_to_error::deserialize(v))
    }

    fn finish(
        r: Result<Config, serde_path_to_error::Error<serde_json::Error>>,
    ) -> Result<Config, ConfigError> {
        let cfg: Config = r.map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." { String::new() } else { key };
            ConfigError::new(key, e.into_inner().to_string())
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::BTreeSet::new();
        for (i, b) in self.backends.iter().enumerate() {
            let key = format!("backends[{i}]");
            if b.name.is_empty() {
                return Err(ConfigError::new(format!("{key}.name"), "must not be empty"));
            }
            if !seen.insert(b.name.as_str()) {
                return Err(ConfigError::new(
                    format!("{key}.name"),
                    format!("duplicate backend `{}`", b.name),
                ));
            }
            if let Some(rl) = &b.rate_limit {
                rl.validate(&format!("{key}.rate_limit"))?;
            }
        }
        if self.routing.prefix_separator.is_empty() {
            return Err(ConfigError::new("routing.prefix_separator", "must not be empty"));
        }
        self.security.auth.validate("security.auth")?;
        self.security.authorization.validate("security.authorization")?;
        self.security.rate_limit.validate("security.rate_limit")?;
        self.security.injection.validate("security.injection")?;
        self.security.session_binding.validate("security.session_binding")?;
        self.security.tool_pinning.validate("security.tool_pinning")?;
        Ok(())
    }

    pub fn backend(&self, name: &str) -> Option<&BackendConfig> {
        self.backends.iter().find(|b| b.name == name)
    }
}

/// A number that may arrive as a string. Envoy 1.40 turns YAML floats such as `0.5` into
/// *string* values when it builds a `google.protobuf.Struct` (integers stay numbers), so every
/// fractional config field accepts both `0.5` and `"0.5"`.
pub fn lenient_f64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        N(f64),
        S(String),
    }
    match Num::deserialize(d)? {
        Num::N(n) => Ok(n),
        Num::S(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite())
            .ok_or_else(|| serde::de::Error::custom(format!("expected a number, found \"{s}\""))),
    }
}

/// [`lenient_f64`] for the values of a map.
pub fn lenient_f64_map<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<std::collections::BTreeMap<String, f64>, D::Error> {
    #[derive(Deserialize)]
    struct W(#[serde(deserialize_with = "lenient_f64")] f64);
    let m = std::collections::BTreeMap::<String, W>::deserialize(d)?;
    Ok(m.into_iter().map(|(k, W(v))| (k, v)).collect())
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !c.is_ascii_whitespace()).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !c.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &b[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_defaults() {
        assert!(Config::from_json(b"").is_ok());
        assert!(Config::from_json(b"  {} ").is_ok());
    }

    #[test]
    fn misspelt_key_is_named_with_its_path() {
        let err = Config::from_json(br#"{"security":{"injection":{"blok_threshold":0.5}}}"#)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("security.injection"), "{err}");
        assert!(err.contains("blok_threshold"), "{err}");
    }

    #[test]
    fn fractional_numbers_may_be_strings() {
        let cfg = Config::from_json(
            br#"{"backends":[{"name":"a","rate_limit":{"requests_per_sec":"0.5","burst_size":2}}],
                "security":{"injection":{"block_threshold":"0.6","rule_weights":{"PI-ML-001":"0.9"}}}}"#,
        );
        assert!(cfg.is_ok(), "{:?}", cfg.err());
        let bad = Config::from_json(br#"{"security":{"injection":{"block_threshold":"high"}}}"#).err();
        assert_eq!(bad.map(|e| e.key), Some("security.injection.block_threshold".to_string()));
    }

    #[test]
    fn duplicate_backend_is_rejected() {
        let err = Config::from_json(br#"{"backends":[{"name":"a"},{"name":"a"}]}"#).err();
        assert_eq!(err.map(|e| e.key), Some("backends[1].name".to_string()));
    }

    #[test]
    fn seed_vocabulary_parses() {
        let cfg = Config::from_json(
            br#"{"backends":[{"name":"filesystem","allowed_tools":["read_file","list_directory"],
                "denied_tools":["delete_file"],"rate_limit":{"requests_per_sec":10,"burst_size":20}}],
               "security":{"auth":{"enabled":true,"api_keys":[{"key_sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","client_id":"admin","permissions":["*"]}]},
               "injection":{"enabled":true,"block_threshold":0.5}}}"#,
        );
        assert!(cfg.is_ok(), "{:?}", cfg.err());
    }
}
