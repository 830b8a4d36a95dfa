//! proxy-wasm glue: maps Envoy callbacks onto [`crate::pipeline::Gateway`] and its verdicts onto
//! host calls. No decision is made here; every host failure fails closed.

pub mod abi;

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

use crate::audit::{keys, AuditRecord, Decision};
use crate::pipeline::{codes, BodyVerdict, Gateway, LocalReply, RequestHead};

const LOG_INFO: u32 = 2;
const LOG_ERROR: u32 = 4;

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

#[derive(Default)]
pub struct Root {
    gateway: Option<Rc<Gateway>>,
}

impl Context for Root {}

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
        match Gateway::from_json(&bytes) {
            Ok(gw) => {
                abi::log(LOG_INFO, "mcp-gateway: configuration loaded");
                self.gateway = Some(Rc::new(gw));
                true
            }
            Err(e) => {
                // Returning false makes Envoy reject the plugin (and `envoy --mode validate` fail).
                abi::log(LOG_ERROR, &e.to_string());
                false
            }
        }
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        // Without a configuration there is no gateway: Envoy then fails the stream (fail closed).
        let gateway = self.gateway.clone()?;
        Some(Box::new(Exchange { gateway, head: RequestHead::default(), audit: AuditRecord::default() }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// One HTTP exchange.
struct Exchange {
    gateway: Rc<Gateway>,
    head: RequestHead,
    audit: AuditRecord,
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

    /// Writes the audit fields collected so far as `wasm.*` filter state.
    fn flush_audit(&mut self) {
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
    /// forwarded: we keep it paused and Envoy's timeouts end it.
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
}

impl Context for Exchange {}

impl HttpContext for Exchange {
    fn on_http_request_headers(&mut self, _n: usize, end_of_stream: bool) -> Action {
        self.read_head();
        if self.head.http_method != "POST" {
            return Action::Continue;
        }
        if end_of_stream {
            self.audit.decision(Decision::Invalid, "empty_body");
            let r = LocalReply::jsonrpc_error(400, None, -32700, "empty request body");
            return self.reply(&r);
        }
        // Hold the headers until the whole body has been decided (needs
        // `allow_on_headers_stop_iteration: true`, else Envoy never delivers the body).
        Action::Pause
    }

    fn on_http_request_body(&mut self, size: usize, end_of_stream: bool) -> Action {
        if !end_of_stream {
            return Action::Pause;
        }
        let body = match abi::get_buffer(abi::REQUEST_BODY, 0, size) {
            Ok(b) => b.unwrap_or_default(),
            Err(e) => return self.internal_error(&format!("cannot read request body (host status {})", e.0)),
        };
        match self.gateway.on_request_body(&self.head, &body, &mut self.audit) {
            BodyVerdict::Reply(r) => self.reply(&r),
            BodyVerdict::Forward { .. } => {
                self.flush_audit();
                Action::Continue
            }
        }
    }

    fn on_log(&mut self) {
        if self.audit.get(keys::DECISION).is_some() {
            self.flush_audit();
        }
    }
}
