//! Arbitrary bytes → the stdio bridge's request handling (crate mcp-stdio-bridge).
//!
//! The first byte picks a sub-target, the rest is its input:
//!   0 body     POST body → `split_batch` + `inspect`: a message is accepted exactly when it is a
//!              JSON object a reference reading calls a request, notification or response; the
//!              kind, id (and its byte range), method and name agree with that reading.
//!   1 rewrite  pooled (stateless) id rewriting: the request with a bridge id still parses the
//!              same way, and putting the client's id back gives the original bytes; the child's
//!              answer with the bridge id gets the client's id back.
//!   2 headers  Host/Origin checks (case-insensitive; without a wildcard only loopback or listed
//!              names pass), Accept negotiation, routing, Mcp-Method/Mcp-Name base64 decoding,
//!              query parameters, Last-Event-ID parsing (round-trips the ids the bridge mints).
//!   3 lines    child stdout framing: `LineReader` over an in-memory reader cut into small
//!              reads agrees with a reference line splitter and never returns more than `max`
//!              bytes; `push_line` output is one line that parses to the same JSON.
//!   4 http     a structured HTTP request through hyper (in-memory connection) into the real
//!              handler: no 500, every JSON body is valid JSON and every error a JSON-RPC
//!              response. No child process is ever started: the servers are marked as shutting
//!              down, so session creation answers 503 instead of spawning.
#![no_main]

#[path = "../common/mod.rs"]
mod common;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use common::{Raw, Rng};
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use libfuzzer_sys::fuzz_target;
use mcp_stdio_bridge::child::{push_line, Line, LineReader};
use mcp_stdio_bridge::config::{Config, ServerConfig};
use mcp_stdio_bridge::http::{self, App};
use mcp_stdio_bridge::jsonrpc::{self, Info, Kind};
use mcp_stdio_bridge::queue::Limits;
use mcp_stdio_bridge::session::{parse_event_id, Server};
use serde_json::Value;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime")
    })
}

const LIMITS: Limits = Limits { bytes: 1 << 20, messages: 64 };

fn server_config(name: &str) -> ServerConfig {
    ServerConfig {
        name: name.into(),
        // Never run: every server is shutting down (see `app`).
        command: "/nonexistent/mcp-server".into(),
        args: Vec::new(),
        env: Vec::new(),
        env_allow: Vec::new(),
        cwd: None,
        max_sessions: 4,
        request_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(60),
        pool_size: 1,
    }
}

fn config(allowed_hosts: Vec<String>, allowed_origins: Vec<String>, listen: &str) -> Config {
    Config {
        listen: listen.parse().expect("listen address"),
        allowed_origins,
        allowed_hosts,
        max_message_bytes: 4096,
        shutdown_grace: Duration::from_secs(1),
        buffer_limits: LIMITS,
        drain_timeout: Duration::from_secs(1),
        servers: Vec::new(),
    }
}

/// Two servers ("default" and "fs"), both refusing new children.
fn app() -> Arc<App> {
    static APP: OnceLock<Arc<App>> = OnceLock::new();
    Arc::clone(APP.get_or_init(|| {
        let mut cfg = config(Vec::new(), Vec::new(), "127.0.0.1:8081");
        cfg.servers = vec![server_config("default"), server_config("fs")];
        let servers: Vec<Arc<Server>> = cfg
            .servers
            .iter()
            .map(|s| {
                let server = Server::new(s.clone(), cfg.shutdown_grace, cfg.max_message_bytes, LIMITS);
                server.shutting_down.store(true, std::sync::atomic::Ordering::SeqCst);
                server
            })
            .collect();
        Arc::new(App { cfg, servers })
    }))
}

fn first_non_ws(b: &[u8]) -> Option<u8> {
    b.iter().copied().find(|c| !c.is_ascii_whitespace())
}

fn non_null<'a>(o: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    o.get(key).filter(|v| !v.is_null())
}

/// `inspect` of one message, checked against a reading of its JSON.
fn check_message(m: &[u8]) -> Option<Info> {
    let got = jsonrpc::inspect(m);
    let raw = Raw::parse(m);
    let value = raw.as_ref().filter(|r| !r.has_duplicate_keys()).map(Raw::to_value);
    let Ok(info) = got else {
        // Rejected: fine unless it is an unambiguous JSON-RPC object.
        if let Some(Value::Object(o)) = &value {
            let method = o.get("method");
            let plain = matches!(method, None | Some(Value::Null | Value::String(_)));
            let message = matches!(method, Some(Value::String(_)))
                || non_null(o, "result").is_some()
                || non_null(o, "error").is_some();
            assert!(!(plain && message), "valid JSON-RPC message rejected: {:?}", got.err());
        }
        return None;
    };
    assert_eq!(first_non_ws(m), Some(b'{'), "a non-object was taken for a JSON-RPC message");
    // Accepted text is UTF-8 and JSON. (Its strings are not all decoded: a lone surrogate escape
    // in a field the bridge skips is passed on as written, like any other valid JSON text.)
    assert!(std::str::from_utf8(m).is_ok(), "inspect accepted invalid UTF-8");
    assert!(serde_json::from_slice::<serde::de::IgnoredAny>(m).is_ok(), "inspect accepted invalid JSON");
    let Some(Value::Object(o)) = value else {
        // Duplicate keys below the fields the bridge reads: not compared further.
        return Some(info);
    };
    let id = non_null(&o, "id");
    let method = o.get("method").and_then(Value::as_str);
    match info.kind {
        Kind::Request => assert!(method.is_some() && id.is_some()),
        Kind::Notification => assert!(method.is_some() && id.is_none()),
        Kind::Response => {
            assert!(method.is_none() && (non_null(&o, "result").is_some() || non_null(&o, "error").is_some()))
        }
    }
    assert_eq!(info.method.as_deref(), method);
    match (&info.id, id) {
        (None, None) => {}
        (Some((text, range)), Some(v)) => {
            assert_eq!(&m[range.clone()], text.as_bytes(), "id range does not cover the id");
            assert_eq!(&serde_json::from_str::<Value>(text).expect("id text is JSON"), v);
        }
        (got, want) => panic!("id {got:?}, expected {want:?}"),
    }
    if let Some(name) = &info.name {
        let params = o.get("params").and_then(Value::as_object);
        assert_eq!(params.and_then(|p| p.get("name")).and_then(Value::as_str), Some(name.as_str()));
    }
    Some(info)
}

fn body(data: &[u8]) {
    let body = Bytes::copy_from_slice(data);
    let msgs = match jsonrpc::split_batch(&body) {
        Ok(Some(items)) => {
            assert_eq!(first_non_ws(data), Some(b'['));
            for item in &items {
                serde_json::from_slice::<&serde_json::value::RawValue>(item)
                    .expect("a batch element is not a JSON value");
            }
            items
        }
        Ok(None) => {
            assert_ne!(first_non_ws(data), Some(b'['));
            vec![body]
        }
        Err(_) => {
            assert_eq!(first_non_ws(data), Some(b'['));
            return;
        }
    };
    for m in &msgs {
        check_message(m);
    }
}

fn rewrite(data: &[u8]) {
    let (seed, msg) = common::seed_and_rest(data);
    let Some(info) = check_message(msg) else { return };
    let Some((orig, range)) = info.id.clone() else { return };
    // What `http::stateless` does: the child sees the bridge's id...
    let bridge_id = format!("\"mcpb-{seed}\"");
    let rewritten = jsonrpc::splice(msg, range, bridge_id.as_bytes());
    let again = jsonrpc::inspect(&rewritten).expect("the rewritten request no longer parses");
    let (text, range2) = again.id.clone().expect("the rewritten request lost its id");
    assert_eq!(text, bridge_id);
    assert_eq!(again.kind, info.kind);
    assert_eq!(again.method, info.method);
    assert_eq!(again.name, info.name);
    assert_eq!(again.uri, info.uri);
    assert_eq!(again.progress_token, info.progress_token);
    assert_eq!(again.meta_protocol_version, info.meta_protocol_version);
    assert_eq!(&jsonrpc::splice(&rewritten, range2, orig.as_bytes())[..], msg, "id does not map back");

    // ...and the child's answer gets the client's id back (`Session::respond`).
    let answers = [
        format!("{{\"jsonrpc\":\"2.0\",\"id\":{bridge_id},\"result\":{{}}}}"),
        String::from_utf8_lossy(&jsonrpc::error_response(&bridge_id, -32601, "x")).into_owned(),
    ];
    for answer in answers {
        let a = jsonrpc::inspect(answer.as_bytes()).expect("child answer");
        let (_, r) = a.id.expect("child answer id");
        let back = jsonrpc::splice(answer.as_bytes(), r, orig.as_bytes());
        let b = jsonrpc::inspect(&back).expect("the answer with the client's id no longer parses");
        assert_eq!(b.kind, Kind::Response);
        assert_eq!(b.id.map(|(t, _)| t), Some(orig.clone()));
    }
}

/// The host part of a Host header value, strictly: `[v6]` or a name, then nothing or `:digits`.
fn strict_host(h: &str) -> Option<&str> {
    let (name, port) = if h.starts_with('[') {
        let end = h.find(']')?;
        (&h[..=end], &h[end + 1..])
    } else {
        match h.rsplit_once(':') {
            Some((n, _)) => (n, &h[n.len()..]),
            None => (h, ""),
        }
    };
    let port_ok =
        port.is_empty() || port.strip_prefix(':').is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()));
    port_ok.then_some(name)
}

fn loopback(name: &str) -> bool {
    matches!(name, "localhost" | "127.0.0.1" | "[::1]" | "::1")
}

fn headers(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut f = text.split('\n');
    let mut next = || f.next().unwrap_or("");
    let (sel, host, origin, accept) = (next(), next(), next(), next());
    let (event_id, mcp_value, query, path) = (next(), next(), next(), next());
    let (allowed_host, allowed_origin) = (next(), next());
    let listen = match sel.len() % 3 {
        0 => "127.0.0.1:8081",
        1 => "0.0.0.0:8081",
        _ => "10.1.2.3:8081",
    };
    let list = |s: &str| if s.is_empty() { Vec::new() } else { vec![s.to_string()] };
    let app = App { cfg: config(list(allowed_host), list(allowed_origin), listen), servers: Vec::new() };

    // Host.
    let sp = http::strip_port(host);
    assert!(host.starts_with(sp));
    let allowed = app.host_allowed(Some(host));
    assert_eq!(allowed, app.host_allowed(Some(&host.to_ascii_uppercase())), "Host check is case-sensitive");
    assert!(app.host_allowed(None));
    if allowed && allowed_host != "*" {
        let t = host.trim().to_ascii_lowercase();
        let listed = |n: &str| allowed_host.to_ascii_lowercase() == n;
        // The address the bridge listens on, when it is not loopback, is a name it answers to.
        let listen_ip = listen.split(':').next().unwrap_or("");
        let ok = listed(&t)
            || strict_host(&t)
                .is_some_and(|n| loopback(n) || listed(n) || (listen_ip != "127.0.0.1" && n == listen_ip));
        assert!(ok, "Host {host:?} passed (allowed_hosts {allowed_host:?}, listen {listen})");
    }

    // Origin.
    let allowed = app.origin_allowed(Some(origin));
    assert!(app.origin_allowed(None));
    if allowed && allowed_origin != "*" {
        let o = origin.trim().to_ascii_lowercase();
        let listed = allowed_origin.trim_end_matches('/').eq_ignore_ascii_case(&o);
        let local = o
            .strip_prefix("http://")
            .or_else(|| o.strip_prefix("https://"))
            .and_then(|rest| strict_host(rest.split('/').next().unwrap_or("")))
            .is_some_and(loopback);
        assert!(listed || local, "Origin {origin:?} passed (allowed_origins {allowed_origin:?})");
    }

    // Accept.
    if let Ok(v) = HeaderValue::from_str(accept) {
        let req = Request::builder().header("accept", v).body(()).expect("request");
        let (json, sse) = http::accepts(&req);
        let a = accept.to_ascii_lowercase();
        if !accept.is_ascii() {
            // A value with non-ASCII bytes reads as no Accept header at all.
            assert_eq!((json, sse), (true, false));
        } else {
            assert_eq!(sse, a.contains("text/event-stream"));
            if json {
                assert!(a.contains("json") || a.contains("*/*") || a.contains("application/*"));
            }
        }
    }
    assert_eq!(http::accepts(&Request::new(())), (true, false));

    // Routing.
    if let Some((name, _)) = http::route(path) {
        if let Some(n) = name {
            assert!(!n.is_empty() && !n.contains('/'), "server name {n:?} from {path:?}");
        }
    }

    // Mcp-Method / Mcp-Name.
    let wrapped = format!("=?base64?{}?=", base64::engine::general_purpose::STANDARD.encode(mcp_value));
    assert_eq!(http::decode_header_value(&wrapped).as_deref(), Some(mcp_value));
    if !mcp_value.starts_with("=?base64?") {
        assert_eq!(http::decode_header_value(mcp_value).as_deref(), Some(mcp_value));
    }

    // Query parameters.
    for key in ["sessionId", "session_id", mcp_value] {
        if let Some(v) = http::query_param(query, key) {
            assert!(query.contains(&format!("{key}={v}")));
        }
    }

    // Last-Event-ID.
    if let Some((s, n)) = parse_event_id(event_id) {
        assert_eq!(parse_event_id(&format!("{s}_{n}")), Some((s, n)));
    }
    let mut rng = Rng(data.len() as u64 ^ u64::from(data.first().copied().unwrap_or(0)));
    let (s, n) = (rng.next(), rng.next() >> (rng.below(64) as u32));
    assert_eq!(parse_event_id(&format!("{s}_{n}")), Some((s, n)));
}

/// Reference framing: lines end at `\n`; trailing `\r`/spaces are dropped, as are empty lines; a
/// line over `max` bytes (before trimming) ends the stream; an unterminated tail is not a message.
fn reference_lines(stream: &[u8], max: usize) -> (Vec<&[u8]>, bool) {
    let mut out = Vec::new();
    let mut rest = stream;
    loop {
        let (line, more) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        if line.len() > max {
            return (out, true);
        }
        let Some(more) = more else { return (out, false) };
        let mut end = line.len();
        while end > 0 && (line[end - 1] == b'\r' || line[end - 1] == b' ') {
            end -= 1;
        }
        if end > 0 {
            out.push(&line[..end]);
        }
        rest = more;
    }
}

async fn read_all(stream: &[u8], capacity: usize, max: usize) -> (Vec<Bytes>, Option<usize>) {
    let mut reader = LineReader::new(tokio::io::BufReader::with_capacity(capacity, stream), max);
    let mut got = Vec::new();
    loop {
        match reader.next().await {
            Line::Msg(m) => {
                assert!(m.len() <= max, "LineReader returned {} bytes, max {max}", m.len());
                got.push(m);
            }
            Line::TooLong(n) => {
                assert!(n > max, "TooLong({n}) with max {max}");
                return (got, Some(n));
            }
            Line::Eof => return (got, None),
        }
    }
}

fn lines(data: &[u8]) {
    let (seed, stream) = common::seed_and_rest(data);
    let mut rng = Rng(seed);
    let max = 1 + rng.below(96) as usize;
    let capacity = 1 + rng.below(24) as usize;
    let (got, too_long) = runtime().block_on(read_all(stream, capacity, max));
    let (want, want_too_long) = reference_lines(stream, max);
    assert_eq!(got.iter().map(|b| &b[..]).collect::<Vec<_>>(), want);
    assert_eq!(too_long.is_some(), want_too_long);

    // Stdin side: each NUL-separated JSON piece becomes one line that reads back as the same JSON.
    let values: Vec<(&[u8], Value)> = stream
        .split(|&b| b == 0)
        .filter_map(|p| serde_json::from_slice::<Value>(p).ok().map(|v| (p, v)))
        .collect();
    let mut buf = Vec::new();
    for (p, _) in &values {
        let start = buf.len();
        push_line(&mut buf, p);
        let line = &buf[start..];
        assert_eq!(line.len(), p.len() + 1);
        assert_eq!(line.iter().position(|&b| b == b'\n' || b == b'\r'), Some(p.len()));
    }
    let (back, over) = runtime().block_on(read_all(&buf, capacity, 1 << 20));
    assert!(over.is_none());
    assert_eq!(back.len(), values.len(), "a JSON message was split or lost on the stdin framing");
    for (line, (_, v)) in back.iter().zip(&values) {
        assert_eq!(&serde_json::from_slice::<Value>(line).expect("line is JSON"), v);
    }
}

/// "METHOD /path\nName: value\n...\n\nbody" → a request (None if the line is not a valid one).
fn build_request(data: &[u8]) -> Option<Request<Full<Bytes>>> {
    let split = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split('\n');
    let (method, path) = lines.next()?.split_once(' ')?;
    let method = match method {
        "G" => Method::GET,
        "P" => Method::POST,
        "D" => Method::DELETE,
        m => Method::from_bytes(m.as_bytes()).ok()?,
    };
    let mut req = Request::builder().method(method).uri(path);
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(value.trim().as_bytes()).ok()?;
        req = req.header(name, value);
    }
    req.body(Full::new(Bytes::copy_from_slice(body))).ok()
}

async fn exchange(req: Request<Full<Bytes>>) -> Option<(hyper::StatusCode, hyper::HeaderMap, Bytes)> {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let app = app();
    let svc = hyper::service::service_fn(move |r| http::handle(Arc::clone(&app), r));
    let server = tokio::spawn(
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(server_io), svc),
    );
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(client_io)).await.expect("client handshake");
    let client = tokio::spawn(conn);
    // The client may refuse to send what the builder accepted (e.g. an authority-form URI).
    let answer = match sender.send_request(req).await {
        Ok(resp) => {
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.expect("response body").to_bytes();
            Some((parts.status, parts.headers, body))
        }
        Err(_) => None,
    };
    drop(sender);
    let _ = client.await;
    // A panic in the handler is caught by its task: surface it.
    if let Err(e) = server.await {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    answer
}

fn http_request(data: &[u8]) {
    let Some(req) = build_request(data) else { return };
    let Some((status, headers, body)) = runtime().block_on(exchange(req)) else { return };
    // BRIDGE_HTTP_DEBUG=1 shows each answer when replaying inputs by hand.
    static DEBUG: OnceLock<bool> = OnceLock::new();
    if *DEBUG.get_or_init(|| std::env::var_os("BRIDGE_HTTP_DEBUG").is_some()) {
        eprintln!("bridge_http: {status} {}", String::from_utf8_lossy(&body));
    }
    assert_ne!(status, hyper::StatusCode::INTERNAL_SERVER_ERROR, "500: {}", String::from_utf8_lossy(&body));
    let ctype = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if ctype == "application/json" {
        let v: Value = serde_json::from_slice(&body).expect("a JSON response body is not JSON");
        if v.get("error").is_some() {
            let info = jsonrpc::inspect(&body).expect("an error body is not JSON-RPC");
            assert_eq!(info.kind, Kind::Response);
            assert!(info.error_code.is_some());
            assert!(!status.is_success(), "error body with {status}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    match sel % 5 {
        0 => body(rest),
        1 => rewrite(rest),
        2 => headers(rest),
        3 => lines(rest),
        _ => http_request(rest),
    }
});
