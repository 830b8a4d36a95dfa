//! The host-independent request pipeline: what the filter decides for an HTTP exchange.
//!
//! The proxy-wasm glue (`filter`) gathers facts from Envoy into [`RequestHead`] and the body,
//! calls into [`Gateway`], and turns the returned verdicts into hostcalls. Keeping the decisions
//! here means every rule is tested natively, without a host.

use serde_json::Value;

use crate::audit::{self, keys, AuditRecord, Decision};
use crate::config::{BackendSource, Config, ConfigError};
use crate::jsonrpc::{self, Classified, Kind, Message, Target};

/// JSON-RPC error codes used in local replies (implementation-defined range).
pub mod codes {
    pub const UNAUTHORIZED: i64 = -32001;
    pub const FORBIDDEN: i64 = -32003;
    pub const RATE_LIMITED: i64 = -32029;
    pub const INJECTION: i64 = -32040;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const HEADER_MISMATCH: i64 = -32020;
    pub const INTERNAL: i64 = -32603;
}

/// What the glue read from the request headers and Envoy properties.
#[derive(Debug, Clone, Default)]
pub struct RequestHead {
    pub http_method: String,
    pub path: String,
    pub scheme: String,
    pub authority: String,
    /// `xds.route_name`.
    pub route_name: Option<String>,
    /// `xds.cluster_name`.
    pub cluster_name: Option<String>,
    pub session_id: Option<String>,
    pub protocol_version: Option<String>,
    /// 2026-07-28 `Mcp-Method` / `Mcp-Name` headers.
    pub mcp_method: Option<String>,
    pub mcp_name: Option<String>,
}

/// A reply the filter sends instead of forwarding.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalReply {
    pub status: u32,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl LocalReply {
    pub fn json(status: u32, body: String) -> Self {
        Self { status, headers: vec![("content-type".into(), "application/json".into())], body }
    }

    pub fn jsonrpc_error(status: u32, id: Option<&Value>, code: i64, message: &str) -> Self {
        Self::json(status, jsonrpc::error_body(id, code, message, None))
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// What to do with the response of a forwarded request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResponsePlan {
    /// The JSON-RPC method of the (single) request, when its response needs processing.
    pub method: Option<String>,
    /// The backend the request went to (`None` on an aggregated list).
    pub backend: Option<String>,
}

/// Outcome of the body phase.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyVerdict {
    Forward { plan: ResponsePlan },
    Reply(LocalReply),
}

/// Per-VM state built from the configuration.
pub struct Gateway {
    pub config: Config,
}

impl Gateway {
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        Ok(Self { config })
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        Self::new(Config::from_plugin_bytes(bytes)?)
    }

    /// Whether the backend on this route comes from the `mcp_router` prefix.
    fn router_route(&self, head: &RequestHead) -> bool {
        let routing = &self.config.routing;
        match &head.route_name {
            Some(r) if routing.router_routes.iter().any(|x| x == r) => true,
            _ => routing.backend_from == BackendSource::RouterPrefix,
        }
    }

    /// Backend and bare target name of one message. On `mcp_router` routes an item-scoped
    /// message must carry a `<backend><sep>` prefix, else `Err` (the router could not route it).
    pub fn resolve_backend(&self, head: &RequestHead, target: &Target) -> Result<(String, Target), String> {
        if !self.router_route(head) {
            return Ok((head.cluster_name.clone().unwrap_or_default(), target.clone()));
        }
        let sep = self.config.routing.prefix_separator.as_str();
        let split =
            |name: &str| jsonrpc::split_prefixed(name, sep).map(|(b, n)| (b.to_string(), n.to_string()));
        let unprefixed = |what: &str, name: &str| format!("{what} `{name}` has no `<backend>{sep}` prefix");
        match target {
            Target::None => Ok((String::new(), Target::None)),
            Target::Tool(n) => {
                split(n).map(|(b, n)| (b, Target::Tool(n))).ok_or_else(|| unprefixed("tool", n))
            }
            Target::Prompt(n) => {
                split(n).map(|(b, n)| (b, Target::Prompt(n))).ok_or_else(|| unprefixed("prompt", n))
            }
            Target::Resource(u) => jsonrpc::split_prefixed_uri(u)
                .map(|(b, u)| (b.to_string(), Target::Resource(u.to_string())))
                .ok_or_else(|| format!("resource `{u}` has no `<backend>+` prefix")),
        }
    }

    /// Decides a buffered POST body.
    pub fn on_request_body(&self, head: &RequestHead, body: &[u8], audit: &mut AuditRecord) -> BodyVerdict {
        let classified = match jsonrpc::classify(body) {
            Ok(c) => c,
            Err(e) => {
                audit.decision(Decision::Invalid, "jsonrpc_parse");
                return BodyVerdict::Reply(LocalReply::jsonrpc_error(400, e.id(), e.code(), e.message()));
            }
        };
        record_message_fields(&classified, audit);
        if let Some(reply) = check_mcp_headers(head, &classified, audit) {
            return BodyVerdict::Reply(reply);
        }
        let mut plan = ResponsePlan::default();
        for msg in &classified.messages {
            let (backend, target) = match self.resolve_backend(head, &msg.target) {
                Ok(x) => x,
                Err(why) => {
                    audit.decision(Decision::Invalid, "unroutable_name");
                    return BodyVerdict::Reply(LocalReply::jsonrpc_error(
                        400,
                        msg.id.as_ref(),
                        codes::INVALID_PARAMS,
                        &why,
                    ));
                }
            };
            if !classified.batch {
                audit.set(keys::BACKEND, backend.as_str());
                record_target(&target, audit);
                plan = ResponsePlan {
                    method: msg.method.clone().filter(|_| msg.kind == Kind::Request),
                    backend: (!backend.is_empty()).then_some(backend),
                };
            }
        }
        audit.decision(Decision::Allow, "");
        BodyVerdict::Forward { plan }
    }
}

fn record_message_fields(c: &Classified, audit: &mut AuditRecord) {
    if c.batch {
        audit.set(keys::KIND, "batch");
        let methods: Vec<&str> = c.messages.iter().map(Message::method).collect();
        audit.set(keys::METHOD, methods.join(","));
        return;
    }
    let Some(m) = c.messages.first() else { return };
    audit.set(keys::KIND, m.kind.as_str());
    if let Some(method) = &m.method {
        audit.set(keys::METHOD, method.as_str());
    }
    if let Some(id) = &m.id {
        audit.set(keys::JSONRPC_ID, id.to_string());
    }
    if let Some(args) = m.params.as_ref().and_then(|p| p.get("arguments")) {
        audit.set(keys::ARGS_SHA256, audit::short_hash(args.to_string().as_bytes()));
    }
}

fn record_target(target: &Target, audit: &mut AuditRecord) {
    match target {
        Target::Tool(n) => audit.set(keys::TOOL, n.as_str()),
        Target::Resource(u) => audit.set(keys::RESOURCE, u.as_str()),
        Target::Prompt(n) => audit.set(keys::PROMPT, n.as_str()),
        Target::None => {}
    }
}

/// 2026-07-28: `Mcp-Method` and `Mcp-Name` must equal the body. Headers are checked whenever
/// present (a mismatch is refused whatever the version: the filter decides on the body, but a
/// backend or another filter may trust the header); missing ones are required only when the
/// request declares 2026-07-28.
fn check_mcp_headers(head: &RequestHead, c: &Classified, audit: &mut AuditRecord) -> Option<LocalReply> {
    let modern = head.protocol_version.as_deref().is_some_and(|v| v >= "2026-07-28");
    if head.mcp_method.is_none() && head.mcp_name.is_none() && !modern {
        return None;
    }
    let mismatch = |id: Option<&Value>, what: &str| {
        Some(LocalReply::jsonrpc_error(
            400,
            id,
            codes::HEADER_MISMATCH,
            &format!("{what} header does not match the request body"),
        ))
    };
    let [m] = c.messages.as_slice() else {
        audit.decision(Decision::Invalid, "mcp_header_mismatch");
        return mismatch(None, "Mcp-Method");
    };
    if m.kind == Kind::Response {
        return None;
    }
    let method_ok = match &head.mcp_method {
        Some(h) => h == m.method(),
        None => !modern,
    };
    if !method_ok {
        audit.decision(Decision::Invalid, "mcp_header_mismatch");
        return mismatch(m.id.as_ref(), "Mcp-Method");
    }
    let name_ok = match (&head.mcp_name, m.target.name()) {
        (Some(h), Some(b)) => decode_header_value(h).as_deref() == Some(b),
        (Some(_), None) => false,
        (None, Some(_)) => !modern || m.method() == "completion/complete",
        (None, None) => true,
    };
    if !name_ok {
        audit.decision(Decision::Invalid, "mcp_header_mismatch");
        return mismatch(m.id.as_ref(), "Mcp-Name");
    }
    None
}

/// 2026-07-28 header values that are not plain ASCII travel as `=?base64?<b64>?=`.
fn decode_header_value(v: &str) -> Option<String> {
    use base64::Engine as _;
    match v.strip_prefix("=?base64?").and_then(|r| r.strip_suffix("?=")) {
        Some(b64) => {
            base64::engine::general_purpose::STANDARD.decode(b64).ok().and_then(|b| String::from_utf8(b).ok())
        }
        None => Some(v.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn gw(cfg: &str) -> Gateway {
        Gateway::from_json(cfg.as_bytes()).unwrap()
    }

    fn head(cluster: &str) -> RequestHead {
        RequestHead {
            http_method: "POST".into(),
            path: "/filesystem/mcp".into(),
            cluster_name: Some(cluster.into()),
            route_name: Some("filesystem".into()),
            ..Default::default()
        }
    }

    const CALL: &str = r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/x"}}}"#;

    #[test]
    fn records_method_tool_backend() {
        let g = gw("{}");
        let mut a = AuditRecord::default();
        let v = g.on_request_body(&head("filesystem"), CALL.as_bytes(), &mut a);
        assert!(matches!(v, BodyVerdict::Forward { .. }));
        assert_eq!(a.get(keys::METHOD), Some("tools/call"));
        assert_eq!(a.get(keys::TOOL), Some("read_file"));
        assert_eq!(a.get(keys::BACKEND), Some("filesystem"));
        assert_eq!(a.get(keys::JSONRPC_ID), Some("4"));
        assert!(a.get(keys::ARGS_SHA256).is_some_and(|h| h.len() == 32));
    }

    #[test]
    fn malformed_body_is_a_jsonrpc_error() {
        let g = gw("{}");
        let mut a = AuditRecord::default();
        let BodyVerdict::Reply(r) = g.on_request_body(&head("fs"), b"{nope", &mut a) else { panic!() };
        assert_eq!(r.status, 400);
        assert!(r.body.contains("-32700"));
        assert_eq!(a.get(keys::DECISION), Some("invalid"));
    }

    #[test]
    fn router_prefix_gives_backend() {
        let g = gw(r#"{"routing":{"router_routes":["aggregate"]}}"#);
        let mut h = head("aggregate_cluster");
        h.route_name = Some("aggregate".into());
        let body = CALL.replace("read_file", "filesystem__read_file");
        let mut a = AuditRecord::default();
        assert!(matches!(g.on_request_body(&h, body.as_bytes(), &mut a), BodyVerdict::Forward { .. }));
        assert_eq!((a.get(keys::BACKEND), a.get(keys::TOOL)), (Some("filesystem"), Some("read_file")));
        let mut a = AuditRecord::default();
        let BodyVerdict::Reply(r) = g.on_request_body(&h, CALL.as_bytes(), &mut a) else { panic!() };
        assert_eq!(r.status, 400);
    }

    #[test]
    fn mcp_name_header_must_match_body() {
        let g = gw("{}");
        let mut h = head("fs");
        h.mcp_method = Some("tools/call".into());
        h.mcp_name = Some("list_directory".into());
        let mut a = AuditRecord::default();
        let BodyVerdict::Reply(r) = g.on_request_body(&h, CALL.as_bytes(), &mut a) else { panic!() };
        assert!(r.body.contains("-32020"));
        h.mcp_name = Some("=?base64?cmVhZF9maWxl?=".into());
        let mut a = AuditRecord::default();
        assert!(matches!(g.on_request_body(&h, CALL.as_bytes(), &mut a), BodyVerdict::Forward { .. }));
        // 2026-07-28 requires the headers
        let mut h = head("fs");
        h.protocol_version = Some("2026-07-28".into());
        let mut a = AuditRecord::default();
        assert!(matches!(g.on_request_body(&h, CALL.as_bytes(), &mut a), BodyVerdict::Reply(_)));
    }
}
