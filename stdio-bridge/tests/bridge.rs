//! End-to-end tests: the real binary in front of the echo fixture (src/bin/echo.rs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn initialize_gives_unguessable_session_and_json_call() {
    let b = Bridge::start(&[]);
    let sid = b.init("/mcp");
    assert_eq!(sid.len(), 32);
    assert!(sid.bytes().all(|c| c.is_ascii_hexdigit()));
    let sid2 = b.init("/default/mcp");
    assert_ne!(sid, sid2);
    let r = b.call(&sid, 1, "echo", r#"{"message":"hi"}"#);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(tool_text(&r), "hi");
    // The same session is reachable under /<name>/mcp.
    let r = b.post("/default/mcp", &json_hdrs(Some(&sid)), r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#);
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn related_notifications_stream_over_sse() {
    let b = Bridge::start(&[]);
    let sid = b.init("/mcp");
    let r = b.post(
        "/mcp",
        &json_hdrs(Some(&sid)),
        r#"{"jsonrpc":"2.0","id":"p1","method":"tools/call","params":{"name":"notify","arguments":{},"_meta":{"progressToken":"tok"}}}"#,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let t = r.text();
    assert!(t.contains("notifications/message"), "{t}");
    assert_eq!(t.matches("notifications/progress").count(), 3, "{t}");
    assert!(t.contains(r#""text":"notified""#), "{t}");
    // Priming event first (2025-11-25).
    assert!(t.starts_with("id: "), "{t}");
    // A client that accepts only JSON still gets JSON.
    let r = b.post(
        "/mcp",
        &[("content-type", "application/json"), ("accept", "application/json"), ("mcp-session-id", &sid)],
        r#"{"jsonrpc":"2.0","id":"p2","method":"tools/call","params":{"name":"notify","arguments":{}}}"#,
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(tool_text(&r), "notified");
}

#[test]
fn notification_and_response_get_202() {
    let b = Bridge::start(&[]);
    let sid = b.init("/mcp");
    let r = b.post(
        "/mcp",
        &json_hdrs(Some(&sid)),
        r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":99}}"#,
    );
    assert_eq!(r.status, 202);
    assert!(r.body.is_empty());
    let r = b.post("/mcp", &json_hdrs(Some(&sid)), r#"{"jsonrpc":"2.0","id":"srv-x","result":{}}"#);
    assert_eq!(r.status, 202);
}

#[test]
fn status_codes() {
    let b = Bridge::start(&[]);
    // Unknown session: 404.
    let r = b.call("0123456789abcdef0123456789abcdef", 1, "echo", "{}");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], -32001);
    // Missing session id on a non-initialize request: 400.
    let r = b.post("/mcp", &json_hdrs(None), r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
    assert_eq!(r.status, 400);
    // Unsupported protocol version header: 400.
    let sid = b.init("/mcp");
    let r = b.post(
        "/mcp",
        &[
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
            ("mcp-session-id", &sid),
            ("mcp-protocol-version", "1999-01-01"),
        ],
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
    );
    assert_eq!(r.status, 400);
    // Malformed JSON: 400 parse error.
    let r = b.post("/mcp", &json_hdrs(Some(&sid)), "{not json");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32700);
    // Unsupported method: 405.
    let r = request(&b.addr, "PUT", "/mcp", &[], b"");
    assert_eq!(r.status, 405);
    // Unknown server name: 404.
    let r = b.post("/nope/mcp", &json_hdrs(None), common::INIT);
    assert_eq!(r.status, 404);
    // Health.
    let r = request(&b.addr, "GET", "/healthz", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["servers"]["default"]["sessions"], 1);
}

#[test]
fn get_stream_receives_server_notification_and_requests() {
    let b = Bridge::start(&[]);
    let sid = b.init("/mcp");
    let mut s = open_stream(
        &b.addr,
        "GET",
        "/mcp",
        &[("accept", "text/event-stream"), ("mcp-session-id", &sid)],
        b"",
    );
    assert_eq!(s.status, 200);
    // JSON-only client: related requests (sampling) go to the GET stream.
    let r = b.post(
        "/mcp",
        &json_hdrs(Some(&sid)),
        r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"broadcast","arguments":{}}}"#,
    );
    assert_eq!(tool_text(&r), "sent");
    assert!(s.wait_for("notifications/tools/list_changed", Duration::from_secs(5)), "{}", s.seen);

    // Sampling: the server->client request reaches the GET stream when the POST accepts only
    // JSON, and the client's answer (a POSTed response) reaches the child.
    let addr = b.addr.clone();
    let sid2 = sid.clone();
    let call = std::thread::spawn(move || {
        request(
            &addr,
            "POST",
            "/mcp",
            &[
                ("content-type", "application/json"),
                ("accept", "application/json"),
                ("mcp-session-id", &sid2),
            ],
            br#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"sample","arguments":{}}}"#,
        )
    });
    assert!(s.wait_for("sampling/createMessage", Duration::from_secs(5)), "{}", s.seen);
    let r = b.post(
        "/mcp",
        &json_hdrs(Some(&sid)),
        r#"{"jsonrpc":"2.0","id":"srv-1","result":{"role":"assistant","content":{"type":"text","text":"from client"},"model":"m"}}"#,
    );
    assert_eq!(r.status, 202);
    let r = call.join().unwrap();
    assert_eq!(tool_text(&r), "sampled: from client");
}

#[test]
fn sampling_goes_on_the_post_sse_stream() {
    let b = Bridge::start(&[]);
    let sid = b.init("/mcp");
    let mut s = open_stream(
        &b.addr,
        "POST",
        "/mcp",
        &json_hdrs(Some(&sid)),
        br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"sample","arguments":{}}}"#,
    );
    assert_eq!(s.status, 200);
    assert!(s.wait_for("sampling/createMessage", Duration::from_secs(5)), "{}", s.seen);
    let r = b.post(
        "/mcp",
        &json_hdrs(Some(&sid)),
        r#"{"jsonrpc":"2.0","id":"srv-1","result":{"role":"assistant","content":{"type":"text","text":"yo"},"model":"m"}}"#,
    );
    assert_eq!(r.status, 202);
    assert!(s.wait_for("sampled: yo", Duration::from_secs(5)), "{}", s.seen);
}

#[test]
fn delete_ends_session_and_child() {
    let b = Bridge::start(&[]);
    let sid = b.init("/mcp");
    let pid: i32 = tool_text(&b.call(&sid, 1, "pid", "{}")).parse().unwrap();
    assert!(pid_alive(pid));
    let r = request(&b.addr, "DELETE", "/mcp", &[("mcp-session-id", &sid)], b"");
    assert_eq!(r.status, 200);
    assert!(wait_gone(pid, Duration::from_secs(5)), "child {pid} still alive");
    assert_eq!(b.call(&sid, 2, "echo", "{}").status, 404);
    let r = request(&b.addr, "DELETE", "/mcp", &[("mcp-session-id", &sid)], b"");
    assert_eq!(r.status, 404);
}

#[test]
fn delete_kills_the_whole_process_group() {
    let b = Bridge::start(&[]);
    let sid = b.init("/mcp");
    let gc: i32 = tool_text(&b.call(&sid, 1, "grandchild", "{}")).parse().unwrap();
    assert!(pid_alive(gc));
    request(&b.addr, "DELETE", "/mcp", &[("mcp-session-id", &sid)], b"");
    assert!(wait_gone(gc, Duration::from_secs(5)), "grandchild {gc} survived");
}

#[test]
fn child_crash_fails_pending_request_and_ends_session() {
    let b = Bridge::start(&[]);
    let sid = b.init("/mcp");
    let r = b.call(&sid, 1, "crash", "{}");
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["id"], 1);
    assert_eq!(v["error"]["code"], -32002, "{v}");
    // Session gone, a new initialize gets a fresh child.
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.call(&sid, 2, "echo", "{}").status != 404 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let sid2 = b.init("/mcp");
    assert_eq!(tool_text(&b.call(&sid2, 3, "echo", r#"{"message":"again"}"#)), "again");
}

#[test]
fn hung_child_times_out() {
    let b = Bridge::start(&["--request-timeout-secs", "1"]);
    let sid = b.init("/mcp");
    let t = Instant::now();
    let r = b.call(&sid, 9, "hang", "{}");
    let v = r.json();
    assert_eq!(v["id"], 9);
    assert_eq!(v["error"]["code"], -32001, "{v}");
    assert!(t.elapsed() < Duration::from_secs(4));
    // The session still works.
    assert_eq!(tool_text(&b.call(&sid, 10, "echo", r#"{"message":"ok"}"#)), "ok");
}

#[test]
fn max_sessions_gives_503() {
    let b = Bridge::start(&["--max-sessions", "2"]);
    let a = b.init("/mcp");
    let _b2 = b.init("/mcp");
    let r = b.post("/mcp", &json_hdrs(None), common::INIT);
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["code"], -32000);
    // Freeing one makes room again.
    request(&b.addr, "DELETE", "/mcp", &[("mcp-session-id", &a)], b"");
    let _c = b.init("/mcp");
}

#[test]
fn ten_megabyte_message_round_trips() {
    let b = Bridge::start(&[]);
    let sid = b.init("/mcp");
    let big: String = (0..10 * 1024 * 1024).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    let r = b.call(&sid, 1, "echo", &format!(r#"{{"message":"{big}"}}"#));
    assert_eq!(r.status, 200);
    assert_eq!(tool_text(&r), big);
}

#[test]
fn messages_relayed_byte_for_byte() {
    let b = Bridge::start(&[]);
    let sid = b.init("/mcp");
    // Request: unknown fields, odd spacing, string id survive untouched.
    let req = r#"{"jsonrpc":"2.0", "id":"α-1","method":"tools/call","params":{"name":"raw","arguments":{},"x-extra":{"n":1.50e3}},"zz":[null]}"#;
    let r = b.post("/mcp", &json_hdrs(Some(&sid)), req);
    assert_eq!(tool_text(&r), req);
    // Response: the child's exact bytes reach the client.
    let r = b.call(&sid, 42, "odd", "{}");
    assert_eq!(
        r.text(),
        r#"{ "result" : {"zz":1, "content":[{"type":"text","text":"odd"}] , "x-unknown":[1,2.50,"\u00e9"]},"id":42 , "jsonrpc":"2.0","extra":null}"#
    );
    // Pretty-printed (multi-line) bodies still reach a line-delimited child.
    let r = b.post(
        "/mcp",
        &json_hdrs(Some(&sid)),
        "{\n  \"jsonrpc\": \"2.0\",\n  \"id\": 3,\n  \"method\": \"ping\"\n}",
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn dns_rebinding_protection() {
    let b = Bridge::start(&["--allowed-origin", "https://app.example.com"]);
    let mut h = json_hdrs(None);
    h.push(("origin", "http://evil.example"));
    assert_eq!(b.post("/mcp", &h, common::INIT).status, 403);
    let mut h = json_hdrs(None);
    h.push(("host", "evil.example.com"));
    assert_eq!(b.post("/mcp", &h, common::INIT).status, 403);
    let mut h = json_hdrs(None);
    h.push(("origin", "http://localhost:3000"));
    assert_eq!(b.post("/mcp", &h, common::INIT).status, 200);
    let mut h = json_hdrs(None);
    h.push(("origin", "https://app.example.com"));
    assert_eq!(b.post("/mcp", &h, common::INIT).status, 200);
}

#[test]
fn chunked_request_body_accepted() {
    let b = Bridge::start(&[]);
    let sid = b.init("/mcp");
    let mut h = json_hdrs(Some(&sid));
    h.push(("transfer-encoding", "chunked"));
    let r = b.post(
        "/mcp",
        &h,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"chunky"}}}"#,
    );
    assert_eq!(tool_text(&r), "chunky");
}

#[test]
fn sigterm_leaves_no_orphans() {
    let b = Bridge::start(&[]);
    let mut pids = Vec::new();
    for i in 0..3 {
        let sid = b.init("/mcp");
        pids.push(tool_text(&b.call(&sid, i, "pid", "{}")).parse::<i32>().unwrap());
    }
    let mut b = b;
    unsafe {
        libc::kill(b.pid(), libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = b.child.try_wait() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "bridge did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    for p in pids {
        assert!(wait_gone(p, Duration::from_secs(2)), "orphan {p}");
    }
}

#[test]
fn bridge_killed_hard_takes_children_along() {
    let mut b = Bridge::start(&[]);
    let sid = b.init("/mcp");
    let pid: i32 = tool_text(&b.call(&sid, 1, "pid", "{}")).parse().unwrap();
    b.child.kill().unwrap();
    b.child.wait().unwrap();
    assert!(wait_gone(pid, Duration::from_secs(5)), "orphan {pid} after SIGKILL");
}

#[test]
fn thousand_sessions_leak_nothing() {
    let b = Bridge::start(&["--max-sessions", "16"]);
    // Warm up once so lazily created fds (runtime, signal pipes) exist before measuring.
    let sid = b.init("/mcp");
    request(&b.addr, "DELETE", "/mcp", &[("mcp-session-id", &sid)], b"");
    std::thread::sleep(Duration::from_millis(300));
    let fds_before = fd_count(b.pid());
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let addr = b.addr.clone();
            std::thread::spawn(move || {
                for _ in 0..250 {
                    let r = request(&addr, "POST", "/mcp", &json_hdrs(None), common::INIT.as_bytes());
                    assert_eq!(r.status, 200, "{}", r.text());
                    let sid = r.header("mcp-session-id").unwrap().to_string();
                    let r = request(&addr, "DELETE", "/mcp", &[("mcp-session-id", &sid)], b"");
                    assert_eq!(r.status, 200);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let kids = children_of(b.pid());
        let fds = fd_count(b.pid());
        if kids.is_empty() && fds <= fds_before {
            break;
        }
        assert!(Instant::now() < deadline, "leak: children {kids:?}, fds {fds} (before {fds_before})");
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = request(&b.addr, "GET", "/healthz", &[], b"");
    assert_eq!(r.json()["servers"]["default"]["sessions"], 0);
}

#[test]
fn legacy_sse_flow() {
    let b = Bridge::start(&[]);
    let mut s = open_stream(&b.addr, "GET", "/default/sse", &[("accept", "text/event-stream")], b"");
    assert_eq!(s.status, 200);
    assert!(s.wait_for("event: endpoint", Duration::from_secs(5)));
    assert!(s.wait_for("\n\n", Duration::from_secs(5)));
    let endpoint = s.seen.lines().find_map(|l| l.strip_prefix("data: ")).unwrap().trim().to_string();
    assert!(endpoint.starts_with("/default/messages?sessionId="), "{endpoint}");
    let r = b.post(&endpoint, &[("content-type", "application/json")], common::INIT);
    assert_eq!(r.status, 202);
    assert!(s.wait_for("\"protocolVersion\"", Duration::from_secs(5)), "{}", s.seen);
    let r = b.post(
        &endpoint,
        &[("content-type", "application/json")],
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"legacy!"}}}"#,
    );
    assert_eq!(r.status, 202);
    assert!(s.wait_for("legacy!", Duration::from_secs(5)), "{}", s.seen);
    // Python SDK spelling of the query parameter works too.
    let alt = endpoint.replace("sessionId", "session_id");
    let r =
        b.post(&alt, &[("content-type", "application/json")], r#"{"jsonrpc":"2.0","id":3,"method":"ping"}"#);
    assert_eq!(r.status, 202);
    // Closing the stream ends the session.
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(5);
    while b.post(&endpoint, &[], r#"{"jsonrpc":"2.0","id":4,"method":"ping"}"#).status != 404 {
        assert!(Instant::now() < deadline, "legacy session outlived its stream");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn modern(method: &str, name: Option<&str>) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("content-type", "application/json".to_string()),
        ("accept", "application/json, text/event-stream".to_string()),
        ("mcp-protocol-version", "2026-07-28".to_string()),
        ("mcp-method", method.to_string()),
    ];
    if let Some(n) = name {
        v.push(("mcp-name", n.to_string()));
    }
    v
}

fn post_owned(b: &Bridge, h: &[(&'static str, String)], body: &str) -> Resp {
    let hh: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    b.post("/mcp", &hh, body)
}

#[test]
fn stateless_2026_07_28() {
    let b = Bridge::start(&["--pool-size", "2"]);
    let body = r#"{"jsonrpc":"2.0","id":"q1","method":"tools/call","params":{"name":"echo","arguments":{"message":"modern"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
    let r = post_owned(&b, &modern("tools/call", Some("echo")), body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("mcp-session-id").is_none());
    let v = r.json();
    assert_eq!(v["id"], "q1");
    assert_eq!(v["result"]["content"][0]["text"], "modern");
    // Base64-encoded header value.
    let r = post_owned(&b, &modern("tools/call", Some("=?base64?ZWNobw==?=")), body);
    assert_eq!(r.status, 200);
    // Mismatched Mcp-Name.
    let r = post_owned(&b, &modern("tools/call", Some("other")), body);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32020);
    // Missing Mcp-Name.
    let r = post_owned(&b, &modern("tools/call", None), body);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32020);
    // Mismatched Mcp-Method.
    let r = post_owned(&b, &modern("tools/list", None), body);
    assert_eq!(r.json()["error"]["code"], -32020);
    // server/discover answered by the bridge.
    let r = post_owned(
        &b,
        &modern("server/discover", None),
        r#"{"jsonrpc":"2.0","id":1,"method":"server/discover"}"#,
    );
    let v = r.json();
    assert_eq!(v["result"]["serverInfo"]["name"], "mcp-bridge-echo");
    // Unknown method: 404 + -32601; a stray session id is ignored; GET is 405.
    let mut h = modern("nope/nothing", None);
    h.push(("mcp-session-id", "ffffffffffffffffffffffffffffffff".into()));
    let r = post_owned(&b, &h, r#"{"jsonrpc":"2.0","id":2,"method":"nope/nothing"}"#);
    assert_eq!(r.status, 404, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], -32601);
    let r = request(
        &b.addr,
        "GET",
        "/mcp",
        &[("accept", "text/event-stream"), ("mcp-protocol-version", "2026-07-28")],
        b"",
    );
    assert_eq!(r.status, 405);
    // Concurrent stateless requests with the same client id do not collide.
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let addr = b.addr.clone();
            std::thread::spawn(move || {
                let body = format!(
                    r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"message":"m{i}"}}}}}}"#
                );
                let h = modern("tools/call", Some("echo"));
                let hh: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let r = request(&addr, "POST", "/mcp", &hh, body.as_bytes());
                assert_eq!(r.json()["result"]["content"][0]["text"], format!("m{i}"));
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn batch_allowed_only_for_2025_03_26() {
    let b = Bridge::start(&[]);
    let init = common::INIT.replace("2025-11-25", "2025-03-26");
    let r = b.post("/mcp", &json_hdrs(None), &init);
    let sid = r.header("mcp-session-id").unwrap().to_string();
    let h = [
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
        ("mcp-session-id", sid.as_str()),
    ];
    let r = b.post(
        "/mcp",
        &h,
        r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"message":"b"}}}]"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v.as_array().map(|a| a.len()), Some(2), "{v}");
    // Not allowed on a 2025-11-25 session.
    let sid2 = b.init("/mcp");
    let r = b.post("/mcp", &json_hdrs(Some(&sid2)), r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#);
    assert_eq!(r.status, 400);
}

#[test]
fn resume_with_last_event_id() {
    let b = Bridge::start(&[]);
    let sid = b.init("/mcp");
    // Start a call that produces an SSE stream, read the priming event, then drop the connection
    // before the response (the sample tool waits for the client).
    let mut s = open_stream(
        &b.addr,
        "POST",
        "/mcp",
        &json_hdrs(Some(&sid)),
        br#"{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"sample","arguments":{}}}"#,
    );
    assert!(s.wait_for("sampling/createMessage", Duration::from_secs(5)));
    let last = s.seen.lines().rev().find_map(|l| l.strip_prefix("id: ")).unwrap().trim().to_string();
    drop(s);
    let r = b.post(
        "/mcp",
        &json_hdrs(Some(&sid)),
        r#"{"jsonrpc":"2.0","id":"srv-1","result":{"role":"assistant","content":{"type":"text","text":"resumed"},"model":"m"}}"#,
    );
    assert_eq!(r.status, 202);
    std::thread::sleep(Duration::from_millis(200));
    let mut g = open_stream(
        &b.addr,
        "GET",
        "/mcp",
        &[("accept", "text/event-stream"), ("mcp-session-id", &sid), ("last-event-id", &last)],
        b"",
    );
    assert_eq!(g.status, 200);
    assert!(g.wait_for("sampled: resumed", Duration::from_secs(5)), "{}", g.seen);
}

#[test]
fn child_stderr_forwarded_and_env_filtered() {
    let b = Bridge::start(&["--env", "ECHO_ANNOUNCE_STDERR=1"]);
    let sid = b.init("/mcp");
    b.call(&sid, 1, "stderr", "{}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !b.log_text().contains("hello from the echo server's stderr") {
        assert!(Instant::now() < deadline, "{}", b.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(b.log_text().contains("echo server starting"));
    assert!(b.log_text().contains("child=default/"));
}

#[test]
fn idle_sessions_expire() {
    let b = Bridge::start(&["--idle-timeout-secs", "1"]);
    let sid = b.init("/mcp");
    let pid: i32 = tool_text(&b.call(&sid, 1, "pid", "{}")).parse().unwrap();
    assert!(wait_gone(pid, Duration::from_secs(5)));
    assert_eq!(b.call(&sid, 2, "echo", "{}").status, 404);
}

#[test]
fn config_file_with_named_servers() {
    let dir = std::env::temp_dir().join(format!("bridge-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bridge.json");
    std::fs::write(
        &path,
        format!(
            r#"{{"listen":"127.0.0.1:0","servers":{{"one":{{"command":"{ECHO}","max_sessions":1}},"two":{{"command":"{ECHO}","env":{{"K":"V"}}}}}}}}"#
        ),
    )
    .unwrap();
    let b = Bridge::start_raw(&["--config".into(), path.to_string_lossy().into_owned()]);
    let s1 = b.init("/one/mcp");
    let r = b.post("/one/mcp", &json_hdrs(None), common::INIT);
    assert_eq!(r.status, 503);
    let s2 = b.init("/two/mcp");
    // Sessions are per server.
    let r = b.post("/two/mcp", &json_hdrs(Some(&s1)), r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
    assert_eq!(r.status, 404);
    let r = b.post("/two/mcp", &json_hdrs(Some(&s2)), r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#);
    assert_eq!(r.status, 200);
    // No default server with two named ones.
    assert_eq!(b.post("/mcp", &json_hdrs(None), common::INIT).status, 404);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- Faults (issue #9): faulty children, slow clients, SIGTERM under load. ----

const MIB: u64 = 1024;

fn child_pid(b: &Bridge, sid: &str) -> i32 {
    tool_text(&b.call(sid, 900, "pid", "{}")).parse().unwrap()
}

fn report_rss(test: &str, b: &Bridge) -> (u64, u64) {
    let (rss, hwm) = (status_kib(b.pid(), "VmRSS"), status_kib(b.pid(), "VmHWM"));
    eprintln!("{test}: bridge VmRSS {rss} KiB, VmHWM {hwm} KiB");
    (rss, hwm)
}

#[test]
fn child_non_json_output_is_dropped() {
    let b = Bridge::start(&[]);
    let sid = b.init("/mcp");
    let r = b.call(&sid, 1, "garbage", r#"{"count":3000}"#);
    assert_eq!(tool_text(&r), "garbage 3000");
    assert_eq!(tool_text(&b.call(&sid, 2, "echo", r#"{"message":"still here"}"#)), "still here");
    assert!(b.wait_log("non-JSON-RPC output from child dropped", Duration::from_secs(5)));
    let log = b.log_text();
    let warnings = log.matches("non-JSON-RPC output from child dropped").count();
    assert!((1..=5).contains(&warnings), "{warnings} warnings for 3000 bad lines (rate limit)");
    // The lines themselves are never logged (they may hold anything).
    assert!(!log.contains("this is not JSON") && !log.contains("binary"), "{log}");
}

/// A client that stops reading its POST SSE stream while the child floods it.
#[test]
fn slow_client_on_post_sse_stream_is_dropped() {
    let b = Bridge::start(&["--max-buffered-bytes", "1048576", "--max-buffered-messages", "256"]);
    let other = b.init("/mcp");
    let sid = b.init("/mcp");
    let pid = child_pid(&b, &sid);
    // 4000 x 16 KiB related notifications (64 MiB) on the request's SSE stream; never read.
    let s = open_stream(
        &b.addr,
        "POST",
        "/mcp",
        &json_hdrs(Some(&sid)),
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"flood","arguments":{"count":4000,"size":16384}}}"#,
    );
    assert_eq!(s.status, 200);
    assert_eq!(
        s.headers.iter().find(|(k, _)| k == "content-type").map(|(_, v)| v.as_str()),
        Some("text/event-stream")
    );
    assert!(wait_log(&b, "HTTP client not reading its SSE stream: session dropped", Duration::from_secs(10)));
    assert!(wait_gone(pid, Duration::from_secs(5)), "child {pid} of the dropped session survived");
    assert_eq!(b.call(&sid, 2, "echo", "{}").status, 404);
    assert_eq!(tool_text(&b.call(&other, 3, "echo", r#"{"message":"unaffected"}"#)), "unaffected");
    let (_, hwm) = report_rss("slow_client_on_post_sse_stream_is_dropped", &b);
    assert!(hwm < 48 * MIB, "peak RSS {hwm} KiB");
    drop(s);
}

/// A client that opens the GET stream and never reads it.
#[test]
fn slow_client_on_get_stream_is_dropped() {
    let b = Bridge::start(&["--max-buffered-bytes", "1048576", "--max-buffered-messages", "256"]);
    let other = b.init("/mcp");
    let sid = b.init("/mcp");
    let pid = child_pid(&b, &sid);
    let g = open_stream(
        &b.addr,
        "GET",
        "/mcp",
        &[("accept", "text/event-stream"), ("mcp-session-id", &sid)],
        b"",
    );
    assert_eq!(g.status, 200);
    // A JSON-only POST: its notifications go to the GET stream.
    let r = b.post(
        "/mcp",
        &[("content-type", "application/json"), ("accept", "application/json"), ("mcp-session-id", &sid)],
        r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"flood","arguments":{"count":4000,"size":16384}}}"#,
    );
    let v = r.json();
    assert_eq!(v["id"], 7);
    assert_eq!(v["error"]["code"], -32002, "{v}");
    assert!(wait_log(&b, "HTTP client not reading its SSE stream: session dropped", Duration::from_secs(5)));
    assert!(wait_gone(pid, Duration::from_secs(5)), "child {pid} of the dropped session survived");
    assert_eq!(tool_text(&b.call(&other, 3, "echo", r#"{"message":"unaffected"}"#)), "unaffected");
    let (_, hwm) = report_rss("slow_client_on_get_stream_is_dropped", &b);
    assert!(hwm < 48 * MIB, "peak RSS {hwm} KiB");
    drop(g);
}

/// Nobody reads at all: server messages for the GET stream pile up in the backlog.
#[test]
fn child_flooding_stdout_stays_bounded() {
    let b = Bridge::start(&["--max-buffered-bytes", "4194304"]);
    let sid = b.init("/mcp");
    // 120 x 512 KiB = 60 MiB of notifications for a GET stream nobody opened.
    let r = b.post(
        "/mcp",
        &[("content-type", "application/json"), ("accept", "application/json"), ("mcp-session-id", &sid)],
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"flood","arguments":{"count":120,"size":524288}}}"#,
    );
    assert_eq!(tool_text(&r), "flooded 120");
    assert!(wait_log(&b, "oldest buffered server message dropped", Duration::from_secs(2)));
    let (_, hwm) = report_rss("child_flooding_stdout_stays_bounded", &b);
    assert!(hwm < 40 * MIB, "peak RSS {hwm} KiB");
    // The session is intact and a GET stream now gets the newest buffered messages.
    assert_eq!(tool_text(&b.call(&sid, 2, "echo", r#"{"message":"fine"}"#)), "fine");
    let mut g = open_stream(
        &b.addr,
        "GET",
        "/mcp",
        &[("accept", "text/event-stream"), ("mcp-session-id", &sid)],
        b"",
    );
    assert!(g.wait_for("notifications/message", Duration::from_secs(5)));
}

#[test]
fn child_line_longer_than_the_limit_ends_the_session() {
    let b = Bridge::start(&["--max-message-bytes", "65536"]);
    let sid = b.init("/mcp");
    let pid = child_pid(&b, &sid);
    let t = Instant::now();
    let r = b.call(&sid, 1, "flood_line", r#"{"size":1048576}"#);
    let v = r.json();
    assert_eq!(v["error"]["code"], -32002, "{v}");
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(wait_gone(pid, Duration::from_secs(5)));
    assert!(b.wait_log("child message larger than --max-message-bytes", Duration::from_secs(5)));
}

#[test]
fn child_that_stops_reading_is_dropped() {
    let b = Bridge::start(&["--max-buffered-bytes", "1048576"]);
    let other = b.init("/mcp");
    let sid = b.init("/mcp");
    let pid = child_pid(&b, &sid);
    assert_eq!(tool_text(&b.call(&sid, 1, "deaf", "{}")), "deaf");
    // 64 KiB notifications into a child that no longer reads: the pipe (64 KiB), the writer's
    // batch and then the 1 MiB queue fill up; the session must be dropped, not buffer on.
    let pad = "z".repeat(64 * 1024);
    let note = format!(r#"{{"jsonrpc":"2.0","method":"notifications/pad","params":{{"pad":"{pad}"}}}}"#);
    let mut accepted = 0;
    let mut last = 0;
    for _ in 0..300 {
        last = b.post("/mcp", &json_hdrs(Some(&sid)), &note).status;
        if last != 202 {
            break;
        }
        accepted += 1;
    }
    eprintln!("child_that_stops_reading_is_dropped: {accepted} x 64 KiB accepted before the drop");
    assert_eq!(last, 404, "after {accepted} notifications");
    assert!((10..40).contains(&accepted), "{accepted} notifications accepted");
    assert!(b.wait_log("MCP server not reading its stdin: session dropped", Duration::from_secs(5)));
    assert!(wait_gone(pid, Duration::from_secs(5)), "deaf child {pid} survived");
    assert_eq!(tool_text(&b.call(&other, 2, "echo", r#"{"message":"unaffected"}"#)), "unaffected");
    let (_, hwm) = report_rss("child_that_stops_reading_is_dropped", &b);
    assert!(hwm < 40 * MIB, "peak RSS {hwm} KiB");
}

#[test]
fn sigterm_drains_in_flight_requests_then_stops_children() {
    let mut b = Bridge::start(&["--drain-timeout-secs", "3", "--shutdown-grace-secs", "1"]);
    let sids = [b.init("/mcp"), b.init("/mcp")];
    let pids: Vec<i32> = sids.iter().map(|s| child_pid(&b, s)).collect();
    let call = |sid: &str, id: u64, tool: &'static str, args: &'static str| {
        let (addr, sid) = (b.addr.clone(), sid.to_string());
        std::thread::spawn(move || {
            let body = format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{args}}}}}"#
            );
            let r = request(&addr, "POST", "/mcp", &json_hdrs(Some(&sid)), body.as_bytes());
            (r, Instant::now())
        })
    };
    let delays: Vec<_> =
        (0..5).map(|i| call(&sids[i % 2], 10 + i as u64, "delay", r#"{"ms":1500}"#)).collect();
    let hung = call(&sids[0], 99, "hang", "{}");
    std::thread::sleep(Duration::from_millis(500));
    let t0 = Instant::now();
    unsafe {
        libc::kill(b.pid(), libc::SIGTERM);
    }
    std::thread::sleep(Duration::from_millis(200));
    assert!(std::net::TcpStream::connect(&b.addr).is_err(), "new connections still accepted while draining");
    for d in delays {
        let (r, at) = d.join().unwrap();
        assert_eq!(tool_text(&r), "delayed 1500", "in-flight request lost: {}", r.text());
        assert!(at > t0, "answered before SIGTERM");
    }
    let (r, hung_at) = hung.join().unwrap();
    let v = r.json();
    assert_eq!(v["id"], 99);
    assert_eq!(v["error"]["code"], -32002, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("shutting down"), "{v}");
    let hung_after = hung_at - t0;
    assert!(hung_after >= Duration::from_millis(2500), "answered before the drain timeout: {hung_after:?}");
    let deadline = t0 + Duration::from_secs(8);
    let status = loop {
        if let Ok(Some(status)) = b.child.try_wait() {
            break status;
        }
        assert!(Instant::now() < deadline, "bridge did not exit");
        std::thread::sleep(Duration::from_millis(10));
    };
    let exited = t0.elapsed();
    assert!(status.success(), "{status:?}");
    for p in &pids {
        assert!(!pid_alive(*p), "child {p} outlived the bridge");
    }
    eprintln!(
        "sigterm_drains_in_flight_requests_then_stops_children: hung request answered {hung_after:?} after SIGTERM, exit after {exited:?}"
    );
}

/// Stateless (pooled) mode: the slow client's request is dropped, the shared child is not.
#[test]
fn slow_client_on_stateless_sse_stream_drops_only_its_request() {
    let b = Bridge::start(&["--pool-size", "1", "--max-buffered-bytes", "1048576"]);
    let h = modern("tools/call", Some("flood"));
    let hh: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s = open_stream(
        &b.addr,
        "POST",
        "/mcp",
        &hh,
        br#"{"jsonrpc":"2.0","id":"f","method":"tools/call","params":{"name":"flood","arguments":{"count":2000,"size":16384},"_meta":{"progressToken":"ft"}}}"#,
    );
    assert_eq!(s.status, 200);
    assert!(wait_log(
        &b,
        "HTTP client not reading its response stream: stateless request dropped",
        Duration::from_secs(10)
    ));
    // The pooled child survives and keeps serving other requests.
    let body = r#"{"jsonrpc":"2.0","id":"e","method":"tools/call","params":{"name":"echo","arguments":{"message":"pool ok"}}}"#;
    let r = post_owned(&b, &modern("tools/call", Some("echo")), body);
    assert_eq!(r.json()["result"]["content"][0]["text"], "pool ok", "{}", r.text());
    assert!(!b.log_text().contains("session closed"), "{}", b.log_text());
    let (_, hwm) = report_rss("slow_client_on_stateless_sse_stream_drops_only_its_request", &b);
    assert!(hwm < 48 * MIB, "peak RSS {hwm} KiB");
    drop(s);
}
