//! OAuth resource-server surface: RFC 9728 protected-resource metadata and RFC 6750
//! `WWW-Authenticate` challenges.
//!
//! The scheme, authority and path of a request are client-controlled; they are reduced to a
//! safe character set before they are reflected into a header or a JSON document. Configure
//! `security.auth.resource_metadata.resource` in production so nothing is reflected.

use serde_json::{json, Map, Value};

use super::config::{ResourceMetadataConfig, PRM_WELL_KNOWN};

/// Which challenge to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenge<'a> {
    /// 401, no credentials presented.
    Missing,
    /// 401, credentials presented but rejected.
    InvalidToken,
    /// 403, authenticated but the needed scope is missing (space-separated scopes).
    InsufficientScope(&'a str),
}

fn strip_query(path: &str) -> &str {
    let end = path.find(['?', '#']).unwrap_or(path.len());
    &path[..end]
}

fn safe_scheme(scheme: &str) -> &'static str {
    if scheme.eq_ignore_ascii_case("https") {
        "https"
    } else {
        "http"
    }
}

fn safe_authority(a: &str) -> &str {
    let ok = !a.is_empty()
        && a.len() <= 255
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']' | b'_'));
    if ok {
        a
    } else {
        "localhost"
    }
}

/// A path reduced to RFC 3986 path characters without quotes/backslashes; "" for "/" or unsafe.
fn safe_path(p: &str) -> &str {
    let p = strip_query(p);
    let ok = p.starts_with('/')
        && p.len() <= 1024
        && p.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'/' | b'-'
                        | b'.'
                        | b'_'
                        | b'~'
                        | b'!'
                        | b'$'
                        | b'&'
                        | b'\''
                        | b'('
                        | b')'
                        | b'*'
                        | b'+'
                        | b','
                        | b';'
                        | b'='
                        | b':'
                        | b'@'
                        | b'%'
                )
        });
    if ok && p != "/" {
        p.trim_end_matches('/')
    } else {
        ""
    }
}

/// Scope string for a quoted-string: only RFC 6749 scope-token characters and spaces.
fn safe_scope(s: &str) -> String {
    s.chars()
        .filter(|c| *c == ' ' || (c.is_ascii_graphic() && *c != '"' && *c != '\\'))
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Splits `https://host:port/path` into (`https://host:port`, `/path` or "").
fn split_url(url: &str) -> (&str, &str) {
    let after = url.find("://").map_or(0, |i| i + 3);
    match url[after..].find('/') {
        Some(i) => {
            let (origin, path) = url.split_at(after + i);
            (origin, if path == "/" { "" } else { path })
        }
        None => (url, ""),
    }
}

/// Is `path` (query ignored) an RFC 9728 metadata path? Returns the suffix after the well-known
/// prefix ("" for the root document).
pub(crate) fn prm_suffix(path: &str) -> Option<&str> {
    let rest = strip_query(path).strip_prefix(PRM_WELL_KNOWN)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

#[derive(Debug, Clone)]
pub(crate) struct ResourceMetadata {
    cfg: ResourceMetadataConfig,
}

impl ResourceMetadata {
    pub fn new(cfg: &ResourceMetadataConfig) -> Self {
        Self { cfg: cfg.clone() }
    }

    /// URL of the metadata document for the resource served at `mcp_path`.
    pub fn metadata_url(&self, mcp_path: &str, scheme: &str, authority: &str) -> String {
        match &self.cfg.resource {
            Some(r) => {
                let (origin, path) = split_url(r);
                format!("{origin}{PRM_WELL_KNOWN}{}", strip_query(path))
            }
            None => format!(
                "{}://{}{PRM_WELL_KNOWN}{}",
                safe_scheme(scheme),
                safe_authority(authority),
                safe_path(mcp_path)
            ),
        }
    }

    /// The RFC 9728 JSON document when `request_path` is a metadata path.
    pub fn document(&self, request_path: &str, scheme: &str, authority: &str) -> Option<String> {
        let suffix = prm_suffix(request_path)?;
        let resource = match &self.cfg.resource {
            Some(r) => r.clone(),
            None => format!("{}://{}{}", safe_scheme(scheme), safe_authority(authority), safe_path(suffix)),
        };
        let mut doc = Map::new();
        doc.insert("resource".into(), Value::String(resource));
        doc.insert("authorization_servers".into(), json!(self.cfg.authorization_servers));
        if !self.cfg.scopes_supported.is_empty() {
            doc.insert("scopes_supported".into(), json!(self.cfg.scopes_supported));
        }
        doc.insert("bearer_methods_supported".into(), json!(["header"]));
        if let Some(n) = &self.cfg.resource_name {
            doc.insert("resource_name".into(), Value::String(n.clone()));
        }
        if let Some(d) = &self.cfg.resource_documentation {
            doc.insert("resource_documentation".into(), Value::String(d.clone()));
        }
        serde_json::to_string(&Value::Object(doc)).ok()
    }

    /// The `WWW-Authenticate` header value.
    pub fn challenge(&self, kind: Challenge<'_>, mcp_path: &str, scheme: &str, authority: &str) -> String {
        let url = self.metadata_url(mcp_path, scheme, authority);
        let known = safe_scope(&self.cfg.scopes_supported.join(" "));
        let scope_part = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!(", scope=\"{s}\"")
            }
        };
        match kind {
            Challenge::Missing => {
                format!("Bearer resource_metadata=\"{url}\"{}", scope_part(&known))
            }
            Challenge::InvalidToken => {
                format!("Bearer error=\"invalid_token\", resource_metadata=\"{url}\"{}", scope_part(&known))
            }
            Challenge::InsufficientScope(needed) => format!(
                "Bearer error=\"insufficient_scope\", scope=\"{}\", resource_metadata=\"{url}\"",
                safe_scope(needed)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn rm(resource: Option<&str>) -> ResourceMetadata {
        ResourceMetadata::new(&ResourceMetadataConfig {
            resource: resource.map(str::to_string),
            authorization_servers: vec!["https://idp.example.com/realms/mcp".into()],
            scopes_supported: vec!["mcp:tools".into(), "mcp:read".into()],
            resource_name: Some("Gateway".into()),
            resource_documentation: None,
        })
    }

    #[test]
    fn prm_paths() {
        assert_eq!(prm_suffix("/.well-known/oauth-protected-resource"), Some(""));
        assert_eq!(prm_suffix("/.well-known/oauth-protected-resource/mcp?x=1"), Some("/mcp"));
        assert_eq!(prm_suffix("/.well-known/oauth-protected-resourcex"), None);
        assert_eq!(prm_suffix("/mcp"), None);
    }

    #[test]
    fn document_fields() {
        let d: Value = serde_json::from_str(
            &rm(None)
                .document("/.well-known/oauth-protected-resource/mcp", "http", "127.0.0.1:9020")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(d["resource"], "http://127.0.0.1:9020/mcp");
        assert_eq!(d["authorization_servers"][0], "https://idp.example.com/realms/mcp");
        assert_eq!(d["scopes_supported"], json!(["mcp:tools", "mcp:read"]));
        assert_eq!(d["bearer_methods_supported"], json!(["header"]));
        assert_eq!(d["resource_name"], "Gateway");
        assert!(d.get("resource_documentation").is_none());
        let d: Value = serde_json::from_str(
            &rm(Some("https://mcp.example.com/mcp"))
                .document("/.well-known/oauth-protected-resource", "http", "evil")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(d["resource"], "https://mcp.example.com/mcp");
        assert!(rm(None).document("/mcp", "http", "h").is_none());
    }

    #[test]
    fn hostile_authority_not_reflected() {
        let c = rm(None).challenge(Challenge::Missing, "/mcp\"x", "javascript", "a\"b, error=x");
        assert_eq!(
            c,
            "Bearer resource_metadata=\"http://localhost/.well-known/oauth-protected-resource\", scope=\"mcp:tools mcp:read\""
        );
    }

    #[test]
    fn challenges() {
        let r = rm(Some("http://127.0.0.1:9020/mcp"));
        let url = "http://127.0.0.1:9020/.well-known/oauth-protected-resource/mcp";
        assert_eq!(
            r.challenge(Challenge::Missing, "/ignored", "https", "x"),
            format!("Bearer resource_metadata=\"{url}\", scope=\"mcp:tools mcp:read\"")
        );
        assert_eq!(
            r.challenge(Challenge::InvalidToken, "/mcp", "http", "x"),
            format!(
                "Bearer error=\"invalid_token\", resource_metadata=\"{url}\", scope=\"mcp:tools mcp:read\""
            )
        );
        assert_eq!(
            r.challenge(Challenge::InsufficientScope("mcp:admin \"x"), "/mcp", "http", "x"),
            format!(
                "Bearer error=\"insufficient_scope\", scope=\"mcp:admin x\", resource_metadata=\"{url}\""
            )
        );
        let bare = ResourceMetadata::new(&ResourceMetadataConfig::default());
        assert_eq!(
            bare.challenge(Challenge::Missing, "/mcp?session=1", "HTTPS", "gw.example.com:8443"),
            "Bearer resource_metadata=\"https://gw.example.com:8443/.well-known/oauth-protected-resource/mcp\""
        );
        let root = ResourceMetadata::new(&ResourceMetadataConfig {
            resource: Some("https://mcp.example.com".into()),
            ..Default::default()
        });
        assert_eq!(
            root.challenge(Challenge::Missing, "/", "http", "x"),
            "Bearer resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource\""
        );
    }
}
