//! HTTP front: routing, Host/Origin validation, Streamable HTTP, stateless 2026-07-28 and
//! legacy HTTP+SSE handlers.

use std::sync::Arc;

use crate::body::{ResBody, SseBody};
use crate::config::Config;
use crate::jsonrpc::{self, Info, Kind};
use crate::queue;
use crate::session::{CreateError, Mode, Out, Server, Session};
use base64::Engine;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Revisions with sessions (the handshake era).
pub const LEGACY_VERSIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// Stateless revisions.
pub const MODERN_VERSIONS: &[&str] = &["2026-07-28"];

pub struct App {
    pub cfg: Config,
    pub servers: Vec<Arc<Server>>,
}

#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Mcp,
    Sse,
    Messages,
}

type Res = Response<ResBody>;

fn respond(status: StatusCode, ctype: Option<&'static str>, body: ResBody) -> Res {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    if let Some(ct) = ctype {
        r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    r
}

fn rpc_error(status: StatusCode, id: &str, code: i64, msg: &str) -> Res {
    respond(status, Some("application/json"), ResBody::full(jsonrpc::error_response(id, code, msg)))
}

/// The reply when a session's child cannot be had: 503 at the session limit, 500 when it fails to
/// start. `hint` is appended to the busy message.
fn create_error(server: &Server, id: &str, e: CreateError, hint: &str) -> Res {
    match e {
        CreateError::Busy => rpc_error(
            StatusCode::SERVICE_UNAVAILABLE,
            id,
            jsonrpc::SERVER_BUSY,
            &format!(
                "Server busy: the limit of {} sessions for '{}' is reached{hint}",
                server.cfg.max_sessions, server.cfg.name
            ),
        ),
        CreateError::ShuttingDown => shutting_down(id),
        CreateError::Spawn(e) => {
            tracing::error!(server = %server.cfg.name, error = %e, "cannot start MCP server");
            rpc_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                id,
                jsonrpc::INTERNAL_ERROR,
                "Could not start the MCP server process",
            )
        }
    }
}

fn shutting_down(id: &str) -> Res {
    rpc_error(StatusCode::SERVICE_UNAVAILABLE, id, jsonrpc::SERVER_BUSY, "The bridge is shutting down")
}

fn json(status: StatusCode, body: Bytes) -> Res {
    respond(status, Some("application/json"), ResBody::full(body))
}

fn sse(body: SseBody) -> Res {
    let mut r = respond(StatusCode::OK, Some("text/event-stream"), ResBody::Sse(body));
    r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn header<'a, B>(req: &'a Request<B>, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

impl App {
    fn server(&self, name: Option<&str>) -> Option<&Arc<Server>> {
        match name {
            Some(n) => self.servers.iter().find(|s| s.cfg.name == n),
            None => self.servers.iter().find(|s| s.cfg.name == "default").or(if self.servers.len() == 1 {
                self.servers.first()
            } else {
                None
            }),
        }
    }

    #[doc(hidden)]
    pub fn host_allowed(&self, host: Option<&str>) -> bool {
        let Some(host) = host else { return true };
        if self.cfg.allowed_hosts.iter().any(|h| h == "*") {
            return true;
        }
        let host = host.trim().to_ascii_lowercase();
        let name = strip_port(&host);
        if is_loopback_name(name) {
            return true;
        }
        if !self.cfg.listen.ip().is_loopback() && name == self.cfg.listen.ip().to_string() {
            return true;
        }
        self.cfg.allowed_hosts.iter().any(|h| {
            let h = h.to_ascii_lowercase();
            h == host || h == name
        })
    }

    #[doc(hidden)]
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        let Some(origin) = origin else { return true };
        let origin = origin.trim().to_ascii_lowercase();
        if self
            .cfg
            .allowed_origins
            .iter()
            .any(|o| o == "*" || o.trim_end_matches('/').eq_ignore_ascii_case(&origin))
        {
            return true;
        }
        let Some((scheme, rest)) = origin.split_once("://") else {
            return false;
        };
        if scheme != "http" && scheme != "https" {
            return false;
        }
        let hostport = rest.split('/').next().unwrap_or("");
        is_loopback_name(strip_port(hostport))
    }
}

#[doc(hidden)]
pub fn strip_port(host: &str) -> &str {
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if host.starts_with('[') {
        // Only "[v6]" or "[v6]:port": anything else after the bracket ("[::1]evil") keeps the
        // whole value, so it cannot pass for the loopback address it starts with.
        return match host.find(']') {
            Some(i) if host[i + 1..].strip_prefix(':').map_or(i + 1 == host.len(), digits) => &host[..=i],
            _ => host,
        };
    }
    match host.rsplit_once(':') {
        Some((h, p)) if digits(p) => h,
        _ => host,
    }
}

fn is_loopback_name(name: &str) -> bool {
    matches!(name, "localhost" | "127.0.0.1" | "[::1]" | "::1")
}

#[doc(hidden)]
pub fn route(path: &str) -> Option<(Option<&str>, Endpoint)> {
    let path = path.trim_end_matches('/');
    let mut parts = path.trim_start_matches('/').split('/');
    let a = parts.next()?;
    let b = parts.next();
    if parts.next().is_some() {
        return None;
    }
    let ep = |s: &str| match s {
        "mcp" => Some(Endpoint::Mcp),
        "sse" => Some(Endpoint::Sse),
        "messages" | "message" => Some(Endpoint::Messages),
        _ => None,
    };
    match b {
        None => Some((None, ep(a)?)),
        Some(b) => Some((Some(a), ep(b)?)),
    }
}

pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Result<Res, std::convert::Infallible> {
    Ok(handle_inner(app, req).await)
}

async fn handle_inner(app: Arc<App>, req: Request<Incoming>) -> Res {
    if !app.host_allowed(header(&req, "host")) || !app.origin_allowed(header(&req, "origin")) {
        tracing::warn!(
            host = header(&req, "host").unwrap_or(""),
            origin = header(&req, "origin").unwrap_or(""),
            "rejected request with untrusted Host/Origin"
        );
        return rpc_error(
            StatusCode::FORBIDDEN,
            "null",
            jsonrpc::INVALID_REQUEST,
            "Forbidden: Host or Origin not allowed",
        );
    }
    let path = req.uri().path().to_string();
    if path == "/healthz" {
        return healthz(&app);
    }
    let Some((name, ep)) = route(&path) else {
        return rpc_error(StatusCode::NOT_FOUND, "null", jsonrpc::INVALID_REQUEST, "Not found");
    };
    let Some(server) = app.server(name).cloned() else {
        return rpc_error(StatusCode::NOT_FOUND, "null", jsonrpc::INVALID_REQUEST, "Unknown server");
    };
    let prefix = match name {
        Some(n) => format!("/{n}"),
        None => String::new(),
    };
    match (ep, req.method()) {
        (Endpoint::Mcp, &Method::POST) => post_mcp(&app, &server, req).await,
        (Endpoint::Mcp, &Method::GET) => get_mcp(&server, req),
        (Endpoint::Mcp, &Method::DELETE) => delete_mcp(&server, req),
        (Endpoint::Sse, &Method::GET) => get_sse(&server, &prefix),
        (Endpoint::Messages, &Method::POST) => post_messages(&app, &server, req).await,
        _ => {
            let mut r = rpc_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "null",
                jsonrpc::INVALID_REQUEST,
                "Method not allowed",
            );
            let allow = match ep {
                Endpoint::Mcp => "GET, POST, DELETE",
                Endpoint::Sse => "GET",
                Endpoint::Messages => "POST",
            };
            r.headers_mut().insert("allow", HeaderValue::from_static(allow));
            r
        }
    }
}

fn healthz(app: &App) -> Res {
    let mut servers = serde_json::Map::new();
    for s in &app.servers {
        servers.insert(
            s.cfg.name.clone(),
            serde_json::json!({"sessions": s.session_count(), "max_sessions": s.cfg.max_sessions}),
        );
    }
    let body = serde_json::json!({"status": "ok", "servers": servers}).to_string();
    json(StatusCode::OK, Bytes::from(body))
}

enum BodyError {
    TooLarge,
    Read,
}

async fn read_body(req: Request<Incoming>, max: usize) -> Result<Bytes, BodyError> {
    if let Some(len) = req
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > max {
            return Err(BodyError::TooLarge);
        }
    }
    match http_body_util::Limited::new(req.into_body(), max).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => {
            if e.is::<http_body_util::LengthLimitError>() {
                Err(BodyError::TooLarge)
            } else {
                Err(BodyError::Read)
            }
        }
    }
}

fn body_error(e: BodyError, max: usize) -> Res {
    match e {
        BodyError::TooLarge => rpc_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "null",
            jsonrpc::INVALID_REQUEST,
            &format!("Message larger than the limit of {max} bytes"),
        ),
        BodyError::Read => rpc_error(
            StatusCode::BAD_REQUEST,
            "null",
            jsonrpc::PARSE_ERROR,
            "Could not read the request body",
        ),
    }
}

/// (accepts JSON, accepts SSE)
#[doc(hidden)]
pub fn accepts<B>(req: &Request<B>) -> (bool, bool) {
    let Some(a) = header(req, "accept") else {
        return (true, false);
    };
    let a = a.to_ascii_lowercase();
    let sse = a.contains("text/event-stream");
    let json = a.contains("application/json") || a.contains("*/*") || a.contains("application/*");
    // Both accepted: the one listed first wins (SDK clients list JSON first and get JSON).
    let sse_first = match (a.find("text/event-stream"), a.find("application/json")) {
        (Some(s), Some(j)) => s < j,
        _ => false,
    };
    (json && !sse_first, sse)
}

async fn post_mcp(app: &App, server: &Arc<Server>, req: Request<Incoming>) -> Res {
    let (accept_json, accept_sse) = accepts(&req);
    if !accept_json && !accept_sse {
        return rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            "null",
            jsonrpc::INVALID_REQUEST,
            "Not Acceptable: the client must accept application/json or text/event-stream",
        );
    }
    if let Some(ct) = header(&req, "content-type") {
        if !ct.to_ascii_lowercase().contains("json") {
            return rpc_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "null",
                jsonrpc::INVALID_REQUEST,
                "Unsupported Media Type: use application/json",
            );
        }
    }
    let sid = header(&req, "mcp-session-id").map(str::to_string);
    let pv = header(&req, "mcp-protocol-version").map(str::to_string);
    let mcp_method = header(&req, "mcp-method").map(str::to_string);
    let mcp_name = header(&req, "mcp-name").map(str::to_string);
    let max = app.cfg.max_message_bytes;
    let body = match read_body(req, max).await {
        Ok(b) => b,
        Err(e) => return body_error(e, max),
    };
    let (msgs, batch) = match jsonrpc::split_batch(&body) {
        Ok(Some(v)) => (v, true),
        Ok(None) => (vec![body], false),
        Err(e) => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                "null",
                jsonrpc::PARSE_ERROR,
                &format!("Parse error: {e}"),
            )
        }
    };
    if msgs.is_empty() {
        return rpc_error(StatusCode::BAD_REQUEST, "null", jsonrpc::INVALID_REQUEST, "Empty batch");
    }
    let mut infos = Vec::with_capacity(msgs.len());
    for m in &msgs {
        match jsonrpc::inspect(m) {
            Ok(i) => infos.push(i),
            Err(e) => {
                return rpc_error(
                    StatusCode::BAD_REQUEST,
                    "null",
                    jsonrpc::PARSE_ERROR,
                    &format!("Invalid JSON-RPC message: {e}"),
                )
            }
        }
    }
    let has_init = infos.iter().any(|i| i.kind == Kind::Request && i.method.as_deref() == Some("initialize"));

    // 2026-07-28 has no sessions: Mcp-Session-Id is ignored for it.
    let modern = pv.as_deref().is_some_and(|v| MODERN_VERSIONS.contains(&v));
    let sid = if modern && !has_init { None } else { sid };
    if let Some(sid) = sid {
        let Some(session) = server.get(&sid).filter(|s| s.mode == Mode::Streamable) else {
            return rpc_error(StatusCode::NOT_FOUND, "null", jsonrpc::SESSION_NOT_FOUND, "Session not found");
        };
        if let Some(pv) = &pv {
            if !LEGACY_VERSIONS.contains(&pv.as_str()) {
                return rpc_error(
                    StatusCode::BAD_REQUEST,
                    "null",
                    jsonrpc::INVALID_REQUEST,
                    &format!("Bad Request: unsupported MCP-Protocol-Version {pv:?}"),
                );
            }
        }
        if batch {
            let negotiated = session.protocol_version();
            if negotiated.as_deref().is_some_and(|v| v != "2025-03-26") || has_init {
                return rpc_error(
                    StatusCode::BAD_REQUEST,
                    "null",
                    jsonrpc::INVALID_REQUEST,
                    "JSON-RPC batches are only allowed in protocol revision 2025-03-26 and never for initialize",
                );
            }
        }
        return relay(&session, msgs, infos, accept_json, accept_sse, batch, false).await;
    }

    if has_init {
        if batch {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                "null",
                jsonrpc::INVALID_REQUEST,
                "initialize must not be part of a batch",
            );
        }
        let id = infos[0].id.as_ref().map(|(t, _)| t.clone()).unwrap_or_else(|| "null".into());
        let session = match server.create_session(Mode::Streamable) {
            Ok(s) => s,
            Err(e) => return create_error(server, &id, e, "; retry later"),
        };
        let mut r = relay(&session, msgs, infos, accept_json, accept_sse, false, true).await;
        if let Ok(v) = HeaderValue::from_str(&session.id) {
            r.headers_mut().insert("mcp-session-id", v);
        }
        return r;
    }

    if modern && !batch {
        let (Some(msg), Some(info)) = (msgs.into_iter().next(), infos.into_iter().next()) else {
            return rpc_error(StatusCode::BAD_REQUEST, "null", jsonrpc::INVALID_REQUEST, "Empty");
        };
        let hdrs = ModernHeaders { version: pv.unwrap_or_default(), method: mcp_method, name: mcp_name };
        return stateless(server, msg, info, hdrs, accept_json, accept_sse).await;
    }
    if pv.as_deref().is_some_and(|v| !LEGACY_VERSIONS.contains(&v)) {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            "null",
            jsonrpc::UNSUPPORTED_VERSION,
            &format!(
                "Unsupported protocol version; supported: {}",
                LEGACY_VERSIONS.iter().chain(MODERN_VERSIONS).copied().collect::<Vec<_>>().join(", ")
            ),
        );
    }
    rpc_error(
        StatusCode::BAD_REQUEST,
        "null",
        jsonrpc::INVALID_REQUEST,
        "Bad Request: Mcp-Session-Id header is required",
    )
}

/// Send messages to a session's child and build the HTTP answer.
async fn relay(
    session: &Arc<Session>,
    msgs: Vec<Bytes>,
    infos: Vec<Info>,
    accept_json: bool,
    accept_sse: bool,
    batch: bool,
    initialize: bool,
) -> Res {
    session.touch();
    let (tx, mut rx) = queue::channel(session.server.limits);
    let mut keys = Vec::new();
    for info in &infos {
        if info.kind == Kind::Request {
            if let Some((key, _)) = &info.id {
                session.register(
                    key.clone(),
                    tx.clone(),
                    accept_json,
                    accept_sse && !batch,
                    info.progress_token.clone(),
                    None,
                    initialize,
                );
                keys.push(key.clone());
            }
        }
    }
    drop(tx);
    let mut sent_ok = true;
    for m in msgs {
        if !session.to_child(m) {
            sent_ok = false;
            break;
        }
    }
    if !sent_ok {
        session.close("the MCP server process is gone");
    }
    if keys.is_empty() {
        return if sent_ok {
            respond(StatusCode::ACCEPTED, None, ResBody::empty())
        } else {
            rpc_error(StatusCode::NOT_FOUND, "null", jsonrpc::SESSION_NOT_FOUND, "Session not found")
        };
    }
    if batch {
        if !accept_json {
            let priming = session.open_stream_for(&keys);
            return sse(SseBody::new(priming.into_iter().collect(), rx, None));
        }
        let mut parts: Vec<Bytes> = Vec::with_capacity(keys.len());
        while parts.len() < keys.len() {
            match rx.recv().await {
                Some(Out::Json(b)) | Some(Out::Event(b)) => parts.push(b),
                None => break,
            }
        }
        let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 1).sum::<usize>() + 2);
        out.push(b'[');
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(p);
        }
        out.push(b']');
        return json(StatusCode::OK, Bytes::from(out));
    }
    match rx.recv().await {
        Some(Out::Json(b)) => json(StatusCode::OK, b),
        Some(Out::Event(first)) => sse(SseBody::new(vec![first], rx, None)),
        None => rpc_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            keys.first().map(String::as_str).unwrap_or("null"),
            jsonrpc::INTERNAL_ERROR,
            "The MCP session ended before answering",
        ),
    }
}

struct ModernHeaders {
    version: String,
    method: Option<String>,
    name: Option<String>,
}

#[doc(hidden)]
pub fn decode_header_value(v: &str) -> Option<String> {
    match v.strip_prefix("=?base64?").and_then(|r| r.strip_suffix("?=")) {
        Some(b64) => {
            base64::engine::general_purpose::STANDARD.decode(b64).ok().and_then(|b| String::from_utf8(b).ok())
        }
        None => Some(v.to_string()),
    }
}

fn mismatch(id: &str, msg: &str) -> Res {
    rpc_error(StatusCode::BAD_REQUEST, id, jsonrpc::HEADER_MISMATCH, &format!("Header mismatch: {msg}"))
}

async fn stateless(
    server: &Arc<Server>,
    msg: Bytes,
    info: Info,
    hdrs: ModernHeaders,
    accept_json: bool,
    accept_sse: bool,
) -> Res {
    let id = info.id.as_ref().map(|(t, _)| t.clone()).unwrap_or_else(|| "null".into());
    if let Some(mv) = &info.meta_protocol_version {
        if *mv != hdrs.version {
            return mismatch(
                &id,
                "MCP-Protocol-Version differs from _meta io.modelcontextprotocol/protocolVersion",
            );
        }
    }
    match info.kind {
        Kind::Response => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                "null",
                jsonrpc::INVALID_REQUEST,
                "Clients must not send responses in protocol revision 2026-07-28",
            )
        }
        Kind::Notification => return respond(StatusCode::ACCEPTED, None, ResBody::empty()),
        Kind::Request => {}
    }
    let method = info.method.clone().unwrap_or_default();
    match hdrs.method.as_deref().and_then(decode_header_value) {
        None => return mismatch(&id, "the Mcp-Method header is required"),
        Some(m) if m != method => return mismatch(&id, "Mcp-Method does not match the body's method"),
        Some(_) => {}
    }
    let expected_name = match method.as_str() {
        "tools/call" | "prompts/get" => Some(info.name.clone().unwrap_or_default()),
        "resources/read" => Some(info.uri.clone().unwrap_or_default()),
        _ => None,
    };
    if let Some(expected) = expected_name {
        match hdrs.name.as_deref().and_then(decode_header_value) {
            None => return mismatch(&id, "the Mcp-Name header is required for this method"),
            Some(n) if n != expected => return mismatch(&id, "Mcp-Name does not match the body's name/uri"),
            Some(_) => {}
        }
    }
    let pooled = match server.pooled().await {
        Ok(s) => s,
        Err(CreateError::Busy) => {
            return rpc_error(StatusCode::SERVICE_UNAVAILABLE, &id, jsonrpc::SERVER_BUSY, "Server busy")
        }
        Err(CreateError::ShuttingDown) => return shutting_down(&id),
        Err(CreateError::Spawn(e)) => {
            tracing::error!(server = %server.cfg.name, error = %e, "stateless pool unavailable");
            return rpc_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &id,
                jsonrpc::INTERNAL_ERROR,
                "Could not start the MCP server process",
            );
        }
    };
    if method == "server/discover" {
        return discover(&pooled, &id);
    }
    let Some((orig, range)) = info.id.clone() else {
        return rpc_error(StatusCode::BAD_REQUEST, "null", jsonrpc::INVALID_REQUEST, "Missing id");
    };
    let bridge_id = pooled.next_bridge_id();
    let rewritten = jsonrpc::splice(&msg, range, bridge_id.as_bytes());
    let (tx, mut rx) = queue::channel(server.limits);
    pooled.register(
        bridge_id,
        tx,
        accept_json,
        accept_sse,
        info.progress_token.clone(),
        Some(orig.clone()),
        false,
    );
    if !pooled.to_child(rewritten) {
        pooled.close("the MCP server process is gone");
    }
    match rx.recv().await {
        Some(Out::Json(b)) => {
            // 2026-07-28: an unknown method is answered with HTTP 404.
            let status = match jsonrpc::inspect(&b) {
                Ok(i) if i.error_code == Some(jsonrpc::METHOD_NOT_FOUND) => StatusCode::NOT_FOUND,
                _ => StatusCode::OK,
            };
            json(status, b)
        }
        Some(Out::Event(first)) => sse(SseBody::new(vec![first], rx, None)),
        None => rpc_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &orig,
            jsonrpc::INTERNAL_ERROR,
            "The MCP server ended before answering",
        ),
    }
}

#[derive(Deserialize)]
struct InitResp<'a> {
    #[serde(borrow)]
    result: Option<InitResult<'a>>,
}

#[derive(Deserialize)]
struct InitResult<'a> {
    #[serde(borrow, default)]
    capabilities: Option<&'a RawValue>,
    #[serde(borrow, rename = "serverInfo", default)]
    server_info: Option<&'a RawValue>,
    #[serde(borrow, default)]
    instructions: Option<&'a RawValue>,
}

/// Answer `server/discover` from the pooled child's initialize result.
fn discover(pooled: &Session, id: &str) -> Res {
    let init = pooled.init_result().unwrap_or_default();
    let parsed: Option<InitResp> = serde_json::from_slice(&init).ok();
    let result = parsed.and_then(|p| p.result);
    let caps = result.as_ref().and_then(|r| r.capabilities).map(|r| r.get()).unwrap_or("{}");
    let info = result
        .as_ref()
        .and_then(|r| r.server_info)
        .map(|r| r.get())
        .unwrap_or("{\"name\":\"mcp-stdio-bridge\",\"version\":\"0.1.0\"}");
    let instructions = result
        .as_ref()
        .and_then(|r| r.instructions)
        .map(|r| format!(",\"instructions\":{}", r.get()))
        .unwrap_or_default();
    let body = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":{{\"supportedVersions\":[\"2026-07-28\"],\"capabilities\":{caps},\"serverInfo\":{info}{instructions}}}}}"
    );
    json(StatusCode::OK, Bytes::from(body))
}

fn modern_get_delete<B>(req: &Request<B>) -> Option<Res> {
    let pv = header(req, "mcp-protocol-version")?;
    if MODERN_VERSIONS.contains(&pv) {
        let mut r = rpc_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "null",
            jsonrpc::INVALID_REQUEST,
            "Method not allowed in protocol revision 2026-07-28 (no sessions, POST only)",
        );
        r.headers_mut().insert("allow", HeaderValue::from_static("POST"));
        return Some(r);
    }
    None
}

fn get_mcp(server: &Arc<Server>, req: Request<Incoming>) -> Res {
    if let Some(r) = modern_get_delete(&req) {
        return r;
    }
    let (_, accept_sse) = accepts(&req);
    if !accept_sse {
        return rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            "null",
            jsonrpc::INVALID_REQUEST,
            "Not Acceptable: the client must accept text/event-stream",
        );
    }
    let Some(sid) = header(&req, "mcp-session-id") else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            "null",
            jsonrpc::INVALID_REQUEST,
            "Bad Request: Mcp-Session-Id header is required",
        );
    };
    let Some(session) = server.get(sid).filter(|s| s.mode == Mode::Streamable) else {
        return rpc_error(StatusCode::NOT_FOUND, "null", jsonrpc::SESSION_NOT_FOUND, "Session not found");
    };
    if let Some(pv) = header(&req, "mcp-protocol-version") {
        if !LEGACY_VERSIONS.contains(&pv) {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                "null",
                jsonrpc::INVALID_REQUEST,
                "Bad Request: unsupported MCP-Protocol-Version",
            );
        }
    }
    let (tx, rx) = queue::channel(server.limits);
    let resumed = match header(&req, "last-event-id") {
        Some(last) => session.resume(last, tx.clone()),
        None => false,
    };
    if !resumed {
        session.attach_standalone(tx);
    }
    sse(SseBody::new(Vec::new(), rx, None))
}

fn delete_mcp(server: &Arc<Server>, req: Request<Incoming>) -> Res {
    if let Some(r) = modern_get_delete(&req) {
        return r;
    }
    let Some(sid) = header(&req, "mcp-session-id") else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            "null",
            jsonrpc::INVALID_REQUEST,
            "Bad Request: Mcp-Session-Id header is required",
        );
    };
    let Some(session) = server.get(sid).filter(|s| s.mode == Mode::Streamable) else {
        return rpc_error(StatusCode::NOT_FOUND, "null", jsonrpc::SESSION_NOT_FOUND, "Session not found");
    };
    session.close("the client ended the session (DELETE)");
    respond(StatusCode::OK, None, ResBody::empty())
}

fn get_sse(server: &Arc<Server>, prefix: &str) -> Res {
    let session = match server.create_session(Mode::Legacy) {
        Ok(s) => s,
        Err(e) => return create_error(server, "null", e, ""),
    };
    let (tx, rx) = queue::channel(server.limits);
    let endpoint =
        Bytes::from(format!("event: endpoint\ndata: {prefix}/messages?sessionId={}\n\n", session.id));
    session.attach_standalone(tx);
    sse(SseBody::new(vec![endpoint], rx, Some(session)))
}

#[doc(hidden)]
pub fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

async fn post_messages(app: &App, server: &Arc<Server>, req: Request<Incoming>) -> Res {
    let query = req.uri().query().unwrap_or("");
    let Some(sid) = query_param(query, "sessionId").or_else(|| query_param(query, "session_id")) else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            "null",
            jsonrpc::INVALID_REQUEST,
            "Missing sessionId query parameter",
        );
    };
    let Some(session) = server.get(sid).filter(|s| s.mode == Mode::Legacy) else {
        return rpc_error(StatusCode::NOT_FOUND, "null", jsonrpc::SESSION_NOT_FOUND, "Session not found");
    };
    let max = app.cfg.max_message_bytes;
    let body = match read_body(req, max).await {
        Ok(b) => b,
        Err(e) => return body_error(e, max),
    };
    if serde_json::from_slice::<&RawValue>(&body).is_err() {
        return rpc_error(StatusCode::BAD_REQUEST, "null", jsonrpc::PARSE_ERROR, "Parse error");
    }
    session.touch();
    if !session.to_child(body) {
        return rpc_error(StatusCode::NOT_FOUND, "null", jsonrpc::SESSION_NOT_FOUND, "Session not found");
    }
    respond(StatusCode::ACCEPTED, Some("text/plain"), ResBody::full("Accepted"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert!(matches!(route("/mcp"), Some((None, Endpoint::Mcp))));
        assert!(matches!(route("/fs/mcp/"), Some((Some("fs"), Endpoint::Mcp))));
        assert!(matches!(route("/fs/messages"), Some((Some("fs"), Endpoint::Messages))));
        assert!(route("/a/b/mcp").is_none());
        assert!(route("/other").is_none());
    }

    #[test]
    fn ports() {
        assert_eq!(strip_port("localhost:8080"), "localhost");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("evil.example.com"), "evil.example.com");
        assert_eq!(strip_port("[::1]"), "[::1]");
        // Found by fuzz target bridge_http: text after the bracket used to be dropped.
        assert_eq!(strip_port("[::1]example"), "[::1]example");
        assert_eq!(strip_port("[::1]:8o"), "[::1]:8o");
    }
}
