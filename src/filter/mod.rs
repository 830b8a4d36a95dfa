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
use crate::scorer::detector::{self, DetectPending, DetectorCall, DetectorError};
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

/// Starts the external detector call. Like [`dispatch_jwks`] it goes through the SDK's hostcall
/// so the answer comes back to this context. Header values (API keys) are never logged.
fn dispatch_detector(call: &DetectorCall) -> Result<u32, String> {
    let headers: Vec<(&str, &str)> = call.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let timeout = Duration::from_millis(call.timeout_ms);
    proxy_wasm::hostcalls::dispatch_http_call(&call.cluster, headers, Some(&call.body), vec![], timeout)
        .map_err(|s| format!("{s:?}"))
}

/// Status and body of the answer to a dispatched call; status 0 when it has none.
fn call_answer(body_size: usize) -> (u16, Option<Vec<u8>>) {
    let status = abi::header(abi::HTTP_CALL_RESPONSE_HEADERS, ":status")
        .ok()
        .flatten()
        .and_then(|s| s.parse::<u16>().ok())
        .unwrap_or(0);
    let body = abi::get_buffer(abi::HTTP_CALL_RESPONSE_BODY, 0, body_size).ok().flatten();
    (status, body)
}

fn jwks_response(gateway: &Gateway, body_size: usize) {
    let (status, body) = call_answer(body_size);
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
            phase: Phase::Start,
            request_headers: Vec::new(),
            response: ResponseState::Pass,
            decision_counted: false,
            detecting: None,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Where an exchange stands. The request is forwarded only from `Open` (no body decision
/// needed) or `Forwarded` (body decided); every other phase holds it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Headers not decided yet.
    Start,
    /// A JWKS fetch is in flight; `Some(size)` once the whole body has been buffered.
    FetchingKeys(Option<usize>),
    /// Authenticated POST: waiting for the whole body.
    NeedBody,
    /// No body decision needed (GET/DELETE of an authenticated caller, unauthenticated path).
    Open,
    /// Passed locally; the external detector call with this token is in flight.
    Detecting(u32),
    /// The body was decided and the request forwarded.
    Forwarded,
    /// A local reply was sent.
    Refused,
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
    phase: Phase,
    /// All request headers, read with one host call (names are lower-case in Envoy).
    request_headers: Vec<(String, String)>,
    response: ResponseState,
    decision_counted: bool,
    /// The request held while the detector answers.
    detecting: Option<Box<DetectPending>>,
}

impl Exchange {
    fn read_head(&mut self) {
        self.request_headers = abi::header_pairs(abi::REQUEST_HEADERS).unwrap_or_default();
        let h = |name: &str| self.request_header(name).map(str::to_string);
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

    fn request_header(&self, name: &str) -> Option<&str> {
        self.request_headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Applies header edits; removals only touch headers the request carries (each edit is a
    /// host call, and most requests carry none of the removed headers).
    fn apply_ops(&self, ops: &HeaderOps) -> Result<(), abi::HostError> {
        for name in &ops.remove {
            if self.request_header(name).is_some() {
                abi::remove_header(abi::REQUEST_HEADERS, name)?;
            }
        }
        for (name, value) in &ops.set {
            abi::set_header(abi::REQUEST_HEADERS, name, value)?;
        }
        Ok(())
    }

    /// Runs the headers phase and sets the phase; `Pause` unless the request may go on now.
    fn decide_headers(&mut self, keys_refreshed: bool, body_size: Option<usize>) -> Action {
        let authorization = self.request_header("authorization").map(str::to_string);
        let api_key = self.request_header("x-api-key").map(str::to_string);
        let creds = Credentials { authorization: authorization.as_deref(), api_key: api_key.as_deref() };
        let gw = self.gateway.clone();
        let verdict =
            gw.on_request_headers(&self.head, &creds, &HostStore, now_ms(), keys_refreshed, &mut self.audit);
        match verdict {
            HeadVerdict::Reply(r) => self.reply(&r),
            HeadVerdict::FetchKeys(req) => match dispatch_jwks(&req) {
                Ok(_) => {
                    self.phase = Phase::FetchingKeys(body_size);
                    Action::Pause
                }
                Err(e) => {
                    abi::log(LOG_WARN, &format!("mcp-gateway: JWKS fetch failed ({e})"));
                    let _ = self.gateway.on_jwks_response(0, None, now_ms() / 1000);
                    self.decide_headers(true, body_size)
                }
            },
            HeadVerdict::Continue { identity, ops, need_body } => {
                if let Err(e) = self.apply_ops(&ops) {
                    return self
                        .internal_error(&format!("cannot edit request headers (host status {})", e.0));
                }
                if !need_body && identity.is_some() {
                    // A GET stream (or DELETE) of an authenticated caller: its SSE events may
                    // carry server requests such as sampling/createMessage, scanned on the way.
                    self.plan = Some(ResponsePlan::default());
                }
                self.identity = identity;
                if !need_body {
                    self.phase = Phase::Open;
                    self.flush_audit();
                    return Action::Continue;
                }
                self.phase = Phase::NeedBody;
                match body_size {
                    Some(size) => self.decide_body(size),
                    // Hold the headers until the whole body has been decided (needs
                    // `allow_on_headers_stop_iteration: true`, else Envoy never delivers it).
                    None => Action::Pause,
                }
            }
        }
    }

    /// Decides the buffered body of an authenticated POST.
    fn decide_body(&mut self, size: usize) -> Action {
        let Some(who) = self.identity.clone() else {
            return self.internal_error("body decision without an identity");
        };
        let body = match abi::get_buffer(abi::REQUEST_BODY, 0, size) {
            Ok(b) => b.unwrap_or_default(),
            Err(e) => return self.internal_error(&format!("cannot read request body (host status {})", e.0)),
        };
        let gw = self.gateway.clone();
        let t0 = now_us();
        let verdict = gw.on_request_body(&self.head, &who, &body, &HostStore, t0 / 1000, &mut self.audit);
        self.metrics.record_request_us(now_us().saturating_sub(t0));
        self.apply_body_verdict(verdict)
    }

    /// Carries out a body verdict; `Continue` when the request may go on now.
    fn apply_body_verdict(&mut self, verdict: BodyVerdict) -> Action {
        match verdict {
            BodyVerdict::Reply(r) => self.reply(&r),
            BodyVerdict::Detect(pending) => self.start_detect(pending),
            BodyVerdict::Forward { plan, ops } => {
                if let Err(e) = self.apply_ops(&ops) {
                    return self
                        .internal_error(&format!("cannot edit request headers (host status {})", e.0));
                }
                if let Some(tool) = self.audit.get(keys::TOOL) {
                    self.metrics.count_call(&plan.backend, tool);
                }
                self.plan = Some(plan);
                self.phase = Phase::Forwarded;
                self.flush_audit();
                Action::Continue
            }
        }
    }

    /// Holds the request and asks the detector; a call that cannot start is a detector error.
    fn start_detect(&mut self, pending: Box<DetectPending>) -> Action {
        match dispatch_detector(&pending.call) {
            Ok(token) => {
                self.phase = Phase::Detecting(token);
                self.detecting = Some(pending);
                Action::Pause
            }
            Err(e) => {
                abi::log(
                    LOG_WARN,
                    &format!("mcp-gateway: detector call to cluster {} failed ({e})", pending.call.cluster),
                );
                let v = self.gateway.on_detector_response(
                    &pending,
                    Err(DetectorError::Dispatch),
                    &mut self.audit,
                );
                // Forward or Reply: `on_detector_response` never asks for another call.
                self.apply_body_verdict(v)
            }
        }
    }

    /// The detector answered (or timed out): finish the held request.
    fn detector_answer(&mut self, body_size: usize) {
        let Some(pending) = self.detecting.take() else { return };
        let (status, body) = call_answer(body_size);
        let answer = detector::parse_answer(status, body.as_deref());
        let gw = self.gateway.clone();
        let verdict = gw.on_detector_response(&pending, answer, &mut self.audit);
        if let Action::Continue = self.apply_body_verdict(verdict) {
            if let Err(e) = abi::resume_request() {
                abi::log(LOG_ERROR, &format!("mcp-gateway: cannot resume request (host status {})", e.0));
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
            if k == keys::PIN_CHANGED {
                // "a,b,+8": two names and eight more left out of the field.
                let n =
                    v.split(',').map(|x| x.strip_prefix('+').and_then(|m| m.parse().ok()).unwrap_or(1)).sum();
                self.metrics.count_pin_changed(n);
            }
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
        self.phase = Phase::Refused;
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

    /// Filters/scans one JSON-RPC message text.
    fn rewrite_message(&mut self, text: &str) -> Rewrite {
        let (Some(plan), Some(who)) = (&self.plan, &self.identity) else { return Rewrite::Unchanged };
        let Ok(mut msg) = serde_json::from_str::<Value>(text) else { return Rewrite::Unparsable };
        let t0 = now_us();
        let changed = self.gateway.on_response_message(plan, who, &mut msg, &HostStore, &mut self.audit);
        self.metrics.record_scan_us(now_us().saturating_sub(t0));
        if changed {
            Rewrite::Changed(msg.to_string())
        } else {
            Rewrite::Unchanged
        }
    }
}

enum Rewrite {
    Unchanged,
    Changed(String),
    /// Not JSON: never passed on uninspected.
    Unparsable,
}

impl Context for Exchange {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _trailers: usize) {
        if self.phase == Phase::Detecting(token) {
            return self.detector_answer(body_size);
        }
        jwks_response(&self.gateway, body_size);
        let Phase::FetchingKeys(buffered) = self.phase else { return };
        if let Action::Continue = self.decide_headers(true, buffered) {
            if let Err(e) = abi::resume_request() {
                abi::log(LOG_ERROR, &format!("mcp-gateway: cannot resume request (host status {})", e.0));
            }
        }
    }
}

impl HttpContext for Exchange {
    fn on_http_request_headers(&mut self, _n: usize, end_of_stream: bool) -> Action {
        self.read_head();
        // A request without a body is "fully buffered" already: an authenticated POST without
        // one is then decided (and refused as a parse error) right here.
        self.decide_headers(false, end_of_stream.then_some(0))
    }

    fn on_http_request_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        match self.phase {
            Phase::Open | Phase::Forwarded => Action::Continue,
            // Nothing goes on before a decision: keep buffering.
            Phase::Start | Phase::Refused | Phase::Detecting(_) => Action::Pause,
            Phase::FetchingKeys(_) => {
                if end_of_stream {
                    self.phase = Phase::FetchingKeys(Some(size));
                }
                Action::Pause
            }
            Phase::NeedBody if !end_of_stream => Action::Pause,
            Phase::NeedBody => self.decide_body(size),
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
                let text = String::from_utf8_lossy(&body);
                let replacement = match self.rewrite_message(&text) {
                    Rewrite::Unchanged => None,
                    Rewrite::Changed(new) => Some(new.into_bytes()),
                    Rewrite::Unparsable => {
                        self.audit.set(keys::RESPONSE_DECISION, "dropped_unparsable_body");
                        Some(Vec::new())
                    }
                };
                if let Some(new) = replacement {
                    if abi::set_buffer(abi::RESPONSE_BODY, 0, size, &new).is_err() {
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
                    match ev.data() {
                        // Comments, priming and retry-only events carry no message.
                        None => out.extend(ev.raw),
                        Some(d) if d.trim().is_empty() => out.extend(ev.raw),
                        Some(d) => match self.rewrite_message(&d) {
                            Rewrite::Unchanged => out.extend(ev.raw),
                            Rewrite::Changed(new) => out.extend(ev.with_data(&new)),
                            Rewrite::Unparsable => {
                                self.audit.set(keys::RESPONSE_DECISION, "dropped_unparsable_event")
                            }
                        },
                    }
                }
                // An unfinished tail is sent with the chunk that completes it; at the end of
                // the stream it is dropped (SSE clients discard an unterminated event too).
                if !end_of_stream {
                    self.response = ResponseState::Sse(splitter);
                }
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
