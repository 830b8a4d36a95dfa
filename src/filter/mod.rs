//! proxy-wasm glue: maps Envoy callbacks onto [`crate::pipeline::Gateway`] and its verdicts onto
//! host calls. No security decision is made here; every host failure fails closed.

pub mod abi;
mod metrics;

use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use serde_json::Value;

use crate::audit::{keys, AuditRecord, Decision};
use crate::auth::{Credentials, Identity, JwksRequest};
use crate::pipeline::{
    codes, BodyVerdict, Gateway, HeadVerdict, HeaderOps, LocalReply, RequestHead, ResponsePlan,
};
use crate::shared::{SharedStore, StoreError};
use crate::sse::SseSplitter;
use metrics::Metrics;

const LOG_INFO: u32 = 2;
const LOG_WARN: u32 = 3;
const LOG_ERROR: u32 = 4;

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

/// proxy-wasm shared data (one map per `vm_id`, shared by all worker threads).
pub struct HostStore;

impl SharedStore for HostStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        abi::get_shared(key).map_err(|e| StoreError::Host(format!("get_shared_data status {}", e.0)))
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        match abi::set_shared(key, value, cas.unwrap_or(0)) {
            Ok(()) => Ok(()),
            Err(abi::HostError(abi::CAS_MISMATCH)) => Err(StoreError::CasMismatch),
            Err(e) => Err(StoreError::Host(format!("set_shared_data status {}", e.0))),
        }
    }
}

fn now_ms() -> u64 {
    now_us() / 1000
}

fn now_us() -> u64 {
    abi::now_nanos().map(|n| n / 1000).unwrap_or(0)
}

/// Starts a JWKS fetch through an Envoy cluster. This one call goes through the SDK's hostcall
/// (not our shim) because the SDK's dispatcher must register the callout token to route the
/// response back to this context; it only panics on statuses the ABI does not define for
/// `proxy_http_call` (Ok, BadArgument and InternalFailure are handled as values).
fn dispatch_jwks(req: &JwksRequest) -> Result<u32, String> {
    let headers =
        vec![(":method", "GET"), (":path", req.path.as_str()), (":authority", req.authority.as_str())];
    let timeout = Duration::from_millis(req.timeout_ms);
    proxy_wasm::hostcalls::dispatch_http_call(&req.cluster, headers, None, vec![], timeout)
        .map_err(|s| format!("{s:?}"))
}

fn jwks_response(gateway: &Gateway, body_size: usize) {
    let status = abi::header(abi::HTTP_CALL_RESPONSE_HEADERS, ":status")
        .ok()
        .flatten()
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(0);
    let body = abi::get_buffer(abi::HTTP_CALL_RESPONSE_BODY, 0, body_size).ok().flatten();
    match gateway.on_jwks_response(status, body.as_deref(), now_ms() / 1000) {
        Ok(n) => abi::log(LOG_INFO, &format!("mcp-gateway: JWKS refreshed, {n} keys")),
        Err(e) => abi::log(
            LOG_WARN,
            &format!("mcp-gateway: JWKS refresh failed ({e}); keeping the last good key set"),
        ),
    }
}

#[derive(Default)]
pub struct Root {
    gateway: Option<Rc<Gateway>>,
    metrics: Rc<Metrics>,
}

impl Context for Root {
    fn on_http_call_response(&mut self, _token: u32, _headers: usize, body_size: usize, _trailers: usize) {
        if let Some(gw) = &self.gateway {
            jwks_response(gw, body_size);
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, size: usize) -> bool {
        let bytes = match abi::get_buffer(abi::PLUGIN_CONFIGURATION, 0, size) {
            Ok(b) => b.unwrap_or_default(),
            Err(e) => {
                abi::log(
                    LOG_ERROR,
                    &format!("mcp-gateway: cannot read plugin configuration (host status {})", e.0),
                );
                return false;
            }
        };
        let gw = match Gateway::from_json(&bytes) {
            Ok(gw) => gw,
            Err(e) => {
                // Returning false makes Envoy reject the plugin (and `envoy --mode validate` fail).
                abi::log(LOG_ERROR, &e.to_string());
                return false;
            }
        };
        for w in gw.warnings() {
            abi::log(LOG_WARN, &format!("mcp-gateway: {w}"));
        }
        if let Some(secs) = gw.tick_period_secs() {
            let ms = u32::try_from(secs.saturating_mul(1000)).unwrap_or(u32::MAX);
            if abi::set_tick_period_ms(ms).is_err() {
                abi::log(LOG_WARN, "mcp-gateway: cannot set the JWKS refresh timer");
            }
        }
        self.metrics = Rc::new(Metrics::define());
        self.gateway = Some(Rc::new(gw));
        abi::log(LOG_INFO, "mcp-gateway: configuration loaded");
        // Fetch remote keys right away rather than on the first request.
        self.on_tick();
        true
    }

    fn on_tick(&mut self) {
        let Some(gw) = &self.gateway else { return };
        if let Some(req) = gw.jwks_refresh(now_ms() / 1000) {
            if let Err(e) = dispatch_jwks(&req) {
                abi::log(
                    LOG_WARN,
                    &format!("mcp-gateway: JWKS fetch from cluster {} failed ({e})", req.cluster),
                );
                // Ends the fetch the authenticator counts as in flight; keys stay as they were.
                let _ = gw.on_jwks_response(0, None, now_ms() / 1000);
            }
        }
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        // Without a configuration there is no gateway: Envoy then fails the stream (fail closed).
        let gateway = self.gateway.clone()?;
        Some(Box::new(Exchange {
            gateway,
            metrics: self.metrics.clone(),
            head: RequestHead::default(),
            audit: AuditRecord::default(),
            identity: None,
            plan: None,
            response: ResponseState::Pass,
            decision_counted: false,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// How the response body is handled.
enum ResponseState {
    Pass,
    /// A JSON body, buffered whole (bounded by Envoy's buffer limit) and rewritten at the end.
    Json,
    /// An SSE stream, rewritten event by event as chunks arrive; never held.
    Sse(SseSplitter),
}

/// One HTTP exchange.
struct Exchange {
    gateway: Rc<Gateway>,
    metrics: Rc<Metrics>,
    head: RequestHead,
    audit: AuditRecord,
    identity: Option<Identity>,
    plan: Option<ResponsePlan>,
    response: ResponseState,
    decision_counted: bool,
}

impl Exchange {
    fn read_head(&mut self) {
        let h = |name: &str| abi::header(abi::REQUEST_HEADERS, name).ok().flatten();
        self.head = RequestHead {
            http_method: h(":method").unwrap_or_default(),
            path: h(":path").unwrap_or_default(),
            scheme: h(":scheme").unwrap_or_else(|| "http".into()),
            authority: h(":authority").unwrap_or_default(),
            route_name: abi::property_string(&["xds", "route_name"]),
            cluster_name: abi::property_string(&["xds", "cluster_name"]),
            session_id: h("mcp-session-id"),
            protocol_version: h("mcp-protocol-version"),
            mcp_method: h("mcp-method"),
            mcp_name: h("mcp-name"),
        };
    }

    /// Runs the headers phase; `Pause` while a JWKS fetch or the body is awaited.
    fn decide_headers(&mut self, keys_refreshed: bool) -> Action {
        let authorization = abi::header(abi::REQUEST_HEADERS, "authorization").ok().flatten();
        let api_key = abi::header(abi::REQUEST_HEADERS, "x-api-key").ok().flatten();
        let creds = Credentials { authorization: authorization.as_deref(), api_key: api_key.as_deref() };
        let gw = self.gateway.clone();
        match gw.on_request_headers(&self.head, &creds, &HostStore, now_ms(), keys_refreshed, &mut self.audit)
        {
            HeadVerdict::Reply(r) => self.reply(&r),
            HeadVerdict::FetchKeys(req) => match dispatch_jwks(&req) {
                Ok(_) => Action::Pause,
                Err(e) => {
                    abi::log(LOG_WARN, &format!("mcp-gateway: JWKS fetch failed ({e})"));
                    let _ = self.gateway.on_jwks_response(0, None, now_ms() / 1000);
                    self.decide_headers(true)
                }
            },
            HeadVerdict::Continue { identity, ops, need_body } => {
                if let Err(e) = apply_ops(&ops) {
                    return self
                        .internal_error(&format!("cannot edit request headers (host status {})", e.0));
                }
                if !need_body && identity.is_some() {
                    // A GET stream (or DELETE) of an authenticated caller: its SSE events may
                    // carry server requests such as sampling/createMessage, scanned on the way.
                    self.plan = Some(ResponsePlan::default());
                }
                self.identity = identity;
                if need_body {
                    // Hold the headers until the whole body has been decided (needs
                    // `allow_on_headers_stop_iteration: true`, else Envoy never delivers the body).
                    Action::Pause
                } else {
                    self.flush_audit();
                    Action::Continue
                }
            }
        }
    }

    /// Writes the audit fields collected so far as `wasm.*` filter state.
    fn flush_audit(&mut self) {
        if !self.decision_counted {
            if let Some(d) = self.audit.get(keys::DECISION) {
                self.metrics.count_decision(d, self.audit.get(keys::RULE).unwrap_or(""));
                self.decision_counted = true;
            }
        }
        for (k, v) in self.audit.take() {
            if let Err(e) = abi::set_filter_state(k, &v) {
                abi::log(
                    LOG_ERROR,
                    &format!("mcp-gateway: cannot set filter state {k} (host status {})", e.0),
                );
            }
        }
    }

    /// Sends a local reply and stops the stream. If even that fails, the request is still not
    /// forwarded: it stays paused and Envoy's timeouts end it.
    fn reply(&mut self, r: &LocalReply) -> Action {
        self.flush_audit();
        let headers: Vec<(&str, &str)> = r.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        if let Err(e) = abi::send_local_response(r.status, &headers, r.body.as_bytes()) {
            abi::log(LOG_ERROR, &format!("mcp-gateway: local reply failed (host status {})", e.0));
        }
        Action::Pause
    }

    fn internal_error(&mut self, what: &str) -> Action {
        abi::log(LOG_ERROR, &format!("mcp-gateway: {what}; refusing the request"));
        self.audit.decision(Decision::Invalid, "internal_error");
        let r = LocalReply::jsonrpc_error(500, None, codes::INTERNAL, "gateway error");
        self.reply(&r)
    }

    /// Filters/scans one JSON-RPC message text; `None` when unchanged.
    fn rewrite_message(&mut self, text: &str) -> Option<String> {
        let (Some(plan), Some(who)) = (&self.plan, &self.identity) else { return None };
        let mut msg: Value = serde_json::from_str(text).ok()?;
        let t0 = now_us();
        let changed = self.gateway.on_response_message(plan, who, &mut msg, &mut self.audit);
        self.metrics.record_scan_us(now_us().saturating_sub(t0));
        changed.then(|| msg.to_string())
    }
}

fn apply_ops(ops: &HeaderOps) -> Result<(), abi::HostError> {
    for name in &ops.remove {
        abi::remove_header(abi::REQUEST_HEADERS, name)?;
    }
    for (name, value) in &ops.set {
        abi::set_header(abi::REQUEST_HEADERS, name, value)?;
    }
    Ok(())
}

impl Context for Exchange {
    fn on_http_call_response(&mut self, _token: u32, _headers: usize, body_size: usize, _trailers: usize) {
        jwks_response(&self.gateway, body_size);
        if let Action::Continue = self.decide_headers(true) {
            if let Err(e) = abi::resume_request() {
                abi::log(LOG_ERROR, &format!("mcp-gateway: cannot resume request (host status {})", e.0));
            }
        }
    }
}

impl HttpContext for Exchange {
    fn on_http_request_headers(&mut self, _n: usize, end_of_stream: bool) -> Action {
        self.read_head();
        let action = self.decide_headers(false);
        if matches!(action, Action::Pause)
            && end_of_stream
            && self.head.http_method == "POST"
            && self.identity.is_some()
        {
            self.audit.decision(Decision::Invalid, "empty_body");
            let r = LocalReply::jsonrpc_error(400, None, -32700, "empty request body");
            return self.reply(&r);
        }
        action
    }

    fn on_http_request_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        // Authentication did not pass (a reply is already on its way) or the request needs no
        // body decision (unauthenticated path): nothing to decide here.
        let Some(who) = self.identity.clone() else {
            return if self.audit.get(keys::DECISION).is_some() { Action::Pause } else { Action::Continue };
        };
        if self.plan.is_some() {
            return Action::Continue;
        }
        let body = match abi::get_buffer(abi::REQUEST_BODY, 0, size) {
            Ok(b) => b.unwrap_or_default(),
            Err(e) => return self.internal_error(&format!("cannot read request body (host status {})", e.0)),
        };
        let gw = self.gateway.clone();
        let t0 = now_us();
        let verdict = gw.on_request_body(&self.head, &who, &body, &HostStore, t0 / 1000, &mut self.audit);
        self.metrics.record_request_us(now_us().saturating_sub(t0));
        match verdict {
            BodyVerdict::Reply(r) => self.reply(&r),
            BodyVerdict::Forward { plan, ops } => {
                if let Err(e) = apply_ops(&ops) {
                    return self
                        .internal_error(&format!("cannot edit request headers (host status {})", e.0));
                }
                if let Some(tool) = self.audit.get(keys::TOOL) {
                    self.metrics.count_call(&plan.backend, tool);
                }
                self.plan = Some(plan);
                self.flush_audit();
                Action::Continue
            }
        }
    }

    fn on_http_response_headers(&mut self, _n: usize, end_of_stream: bool) -> Action {
        let Some(plan) = &self.plan else { return Action::Continue };
        for (k, v) in &plan.headers {
            let _ = abi::add_header(abi::RESPONSE_HEADERS, k, v);
        }
        if plan.bind_session {
            if let (Some(sid), Some(who)) =
                (abi::header(abi::RESPONSE_HEADERS, "mcp-session-id").ok().flatten(), &self.identity)
            {
                if !self.gateway.bind_session(&sid, who, &HostStore, now_ms()) {
                    abi::log(LOG_WARN, "mcp-gateway: session table full; the session binds on its first use");
                }
                self.audit.set(keys::SESSION, crate::audit::short_hash(sid.as_bytes()));
            }
        }
        let content_type =
            abi::header(abi::RESPONSE_HEADERS, "content-type").ok().flatten().unwrap_or_default();
        let sse = content_type.starts_with("text/event-stream");
        let json = content_type.starts_with("application/json");
        if end_of_stream || !(sse || json) || !self.gateway.inspects_response(plan, sse) {
            return Action::Continue;
        }
        // The body may change length.
        let _ = abi::remove_header(abi::RESPONSE_HEADERS, "content-length");
        self.response = if sse { ResponseState::Sse(SseSplitter::default()) } else { ResponseState::Json };
        Action::Continue
    }

    fn on_http_response_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        match std::mem::replace(&mut self.response, ResponseState::Pass) {
            ResponseState::Pass => Action::Continue,
            ResponseState::Json => {
                if !end_of_stream {
                    self.response = ResponseState::Json;
                    return Action::Pause;
                }
                let body = abi::get_buffer(abi::RESPONSE_BODY, 0, size).ok().flatten().unwrap_or_default();
                if let Some(new) = std::str::from_utf8(&body).ok().and_then(|t| self.rewrite_message(t)) {
                    if abi::set_buffer(abi::RESPONSE_BODY, 0, size, new.as_bytes()).is_err() {
                        abi::log(LOG_ERROR, "mcp-gateway: cannot rewrite the response; resetting it");
                        let _ = abi::set_buffer(abi::RESPONSE_BODY, 0, size, b"");
                    }
                }
                self.flush_audit();
                Action::Continue
            }
            ResponseState::Sse(mut splitter) => {
                let chunk = abi::get_buffer(abi::RESPONSE_BODY, 0, size).ok().flatten().unwrap_or_default();
                let events = match splitter.push(&chunk) {
                    Ok(ev) => ev,
                    Err(_) => {
                        // An event too large to inspect is not passed uninspected.
                        abi::log(
                            LOG_ERROR,
                            "mcp-gateway: SSE event exceeds the inspection limit; dropping the stream",
                        );
                        let _ = abi::set_buffer(abi::RESPONSE_BODY, 0, size, b"");
                        self.audit.set(keys::RESPONSE_DECISION, "oversized_event");
                        self.flush_audit();
                        return Action::Continue;
                    }
                };
                let mut out = Vec::with_capacity(chunk.len());
                for ev in events {
                    match ev.data().and_then(|d| self.rewrite_message(&d)) {
                        Some(new) => out.extend(ev.with_data(&new)),
                        None => out.extend(ev.raw),
                    }
                }
                if end_of_stream {
                    out.extend(splitter.take_rest());
                } else {
                    self.response = ResponseState::Sse(splitter);
                }
                // Replace this chunk with the completed events; an unfinished tail is sent
                // with the chunk that completes it.
                if out != chunk && abi::set_buffer(abi::RESPONSE_BODY, 0, size, &out).is_err() {
                    abi::log(LOG_ERROR, "mcp-gateway: cannot rewrite an SSE chunk");
                }
                self.flush_audit();
                Action::Continue
            }
        }
    }

    fn on_log(&mut self) {
        self.flush_audit();
    }
}
