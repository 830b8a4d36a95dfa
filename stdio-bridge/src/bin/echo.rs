//! mcp-bridge-echo: a minimal, SDK-free stdio MCP server for tests and benchmarks.
//!
//! Newline-delimited JSON-RPC on stdin/stdout. Tools:
//! `echo{message}`, `pid`, `crash`, `hang`, `notify` (logging + progress, then answers),
//! `sample` (asks the client for sampling/createMessage and returns its answer), `raw` (returns
//! the request line it received, byte for byte), `odd` (answers with unusual formatting and
//! unknown fields), `stderr` (writes a line to stderr).
//!
//! Fault tools (bridge hardening tests): `flood{count,size,method}` (that many notifications of
//! `size` bytes each, progress ones if the call has a progress token, then answers), `flood_line{size}` (one answer line of at least `size` bytes),
//! `garbage{count}` (non-JSON lines, some not UTF-8, then answers), `delay{ms}` (answers after
//! `ms` without blocking other requests), `deaf` (answers, then never reads stdin again).

use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

const VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

fn text_result(id: &Value, text: &str) -> String {
    json!({"jsonrpc":"2.0","id":id,"result":{"content":[{"type":"text","text":text}]}}).to_string()
}

type Out = Arc<Mutex<std::io::BufWriter<std::io::Stdout>>>;

struct Server {
    /// Shared with `delay` threads; a whole line is written under the lock.
    out: Out,
    /// Outstanding `sample` calls: our request id -> the client's tools/call id.
    sampling: Vec<(String, Value)>,
    next: u64,
}

impl Server {
    fn emit(&mut self, line: &str) {
        emit_to(&self.out, line.as_bytes());
    }

    fn flush(&self) {
        if let Ok(mut out) = self.out.lock() {
            let _ = out.flush();
        }
    }

    fn handle(&mut self, raw: &str, msg: &Value) -> Option<String> {
        let id = msg.get("id").cloned();
        let method = msg.get("method").and_then(Value::as_str);
        let Some(method) = method else {
            // A response from the client (to our sampling request).
            let rid = id.map(|v| v.to_string()).unwrap_or_default();
            if let Some(pos) = self.sampling.iter().position(|(k, _)| *k == rid) {
                let (_, call_id) = self.sampling.remove(pos);
                let text = msg
                    .pointer("/result/content/text")
                    .and_then(Value::as_str)
                    .unwrap_or("no text")
                    .to_string();
                return Some(text_result(&call_id, &format!("sampled: {text}")));
            }
            return None;
        };
        let id = id?; // notifications are ignored
        let params = msg.get("params").cloned().unwrap_or(Value::Null);
        Some(match method {
            "initialize" => {
                let asked = params
                    .get("protocolVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let v = if VERSIONS.contains(&asked) { asked } else { VERSIONS[0] };
                json!({"jsonrpc":"2.0","id":id,"result":{"protocolVersion":v,
                    "capabilities":{"tools":{},"logging":{}},
                    "serverInfo":{"name":"mcp-bridge-echo","version":"0.1.0"}}})
                .to_string()
            }
            "ping" => json!({"jsonrpc":"2.0","id":id,"result":{}}).to_string(),
            "tools/list" => json!({"jsonrpc":"2.0","id":id,"result":{"tools":[
                {"name":"echo","description":"Echo a message","inputSchema":{"type":"object","properties":{"message":{"type":"string"}},"required":["message"]}}
            ]}})
            .to_string(),
            "tools/call" => {
                let name = params.get("name").and_then(Value::as_str).unwrap_or("");
                let args = params.get("arguments").cloned().unwrap_or(Value::Null);
                match name {
                    "echo" => {
                        let m = args.get("message").and_then(Value::as_str).unwrap_or("");
                        text_result(&id, m)
                    }
                    "pid" => text_result(&id, &std::process::id().to_string()),
                    "grandchild" => match std::process::Command::new("sleep").arg("300").spawn() {
                        Ok(c) => text_result(&id, &c.id().to_string()),
                        Err(e) => text_result(&id, &format!("error {e}")),
                    },
                    "crash" => {
                        self.flush();
                        std::process::exit(3);
                    }
                    "flood" => {
                        let count = args.get("count").and_then(Value::as_u64).unwrap_or(1000);
                        let size = args.get("size").and_then(Value::as_u64).unwrap_or(1024) as usize;
                        let method =
                            args.get("method").and_then(Value::as_str).unwrap_or("notifications/message");
                        let pad = "x".repeat(size);
                        // With a progress token: progress notifications (the only kind a pooled,
                        // stateless child can address to a request).
                        let token = params.pointer("/_meta/progressToken").cloned();
                        for i in 0..count {
                            let n = match &token {
                                Some(t) => json!({"jsonrpc":"2.0","method":"notifications/progress",
                                    "params":{"progressToken":t,"progress":i,"total":count,"message":pad}}),
                                None => json!({"jsonrpc":"2.0","method":method,"params":{"level":"info","data":pad}}),
                            };
                            self.emit(&n.to_string());
                        }
                        text_result(&id, &format!("flooded {count}"))
                    }
                    "flood_line" => {
                        let size = args.get("size").and_then(Value::as_u64).unwrap_or(1 << 20) as usize;
                        text_result(&id, &"y".repeat(size))
                    }
                    "garbage" => {
                        let count = args.get("count").and_then(Value::as_u64).unwrap_or(100);
                        for i in 0..count {
                            let line: &[u8] = match i % 3 {
                                0 => b"this is not JSON",
                                1 => b"{\"half\": ",
                                _ => b"\xff\xfe binary \x00 junk",
                            };
                            emit_to(&self.out, line);
                        }
                        text_result(&id, &format!("garbage {count}"))
                    }
                    "delay" => {
                        let ms = args.get("ms").and_then(Value::as_u64).unwrap_or(100);
                        let out = Arc::clone(&self.out);
                        std::thread::spawn(move || {
                            std::thread::sleep(std::time::Duration::from_millis(ms));
                            emit_to(&out, text_result(&id, &format!("delayed {ms}")).as_bytes());
                            if let Ok(mut o) = out.lock() {
                                let _ = o.flush();
                            }
                        });
                        return None;
                    }
                    "deaf" => {
                        emit_to(&self.out, text_result(&id, "deaf").as_bytes());
                        self.flush();
                        loop {
                            std::thread::sleep(std::time::Duration::from_secs(3600));
                        }
                    }
                    "hang" => return None,
                    "raw" => text_result(&id, raw),
                    "odd" => format!(
                        "{{ \"result\" : {{\"zz\":1, \"content\":[{{\"type\":\"text\",\"text\":\"odd\"}}] , \"x-unknown\":[1,2.50,\"\\u00e9\"]}},\"id\":{id} , \"jsonrpc\":\"2.0\",\"extra\":null}}"
                    ),
                    "stderr" => {
                        eprintln!("hello from the echo server's stderr");
                        text_result(&id, "ok")
                    }
                    "notify" => {
                        self.emit(&json!({"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"working"}}).to_string());
                        if let Some(tok) = params.pointer("/_meta/progressToken") {
                            for p in [0, 50, 100] {
                                self.emit(&json!({"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":tok,"progress":p,"total":100}}).to_string());
                            }
                        }
                        text_result(&id, "notified")
                    }
                    "sample" => {
                        self.next += 1;
                        let rid = format!("\"srv-{}\"", self.next);
                        self.sampling.push((rid.clone(), id));
                        format!("{{\"jsonrpc\":\"2.0\",\"id\":{rid},\"method\":\"sampling/createMessage\",\"params\":{{\"messages\":[{{\"role\":\"user\",\"content\":{{\"type\":\"text\",\"text\":\"hi\"}}}}],\"maxTokens\":10}}}}")
                    }
                    "broadcast" => {
                        // An unrelated server notification (goes to the GET stream).
                        self.emit(r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#);
                        text_result(&id, "sent")
                    }
                    _ => json!({"jsonrpc":"2.0","id":id,"result":{"isError":true,"content":[{"type":"text","text":format!("unknown tool {name}")}]}}).to_string(),
                }
            }
            _ => json!({"jsonrpc":"2.0","id":id,"error":{"code":-32601,"message":"Method not found"}})
                .to_string(),
        })
    }
}

fn emit_to(out: &Out, line: &[u8]) {
    if let Ok(mut out) = out.lock() {
        let _ = out.write_all(line);
        let _ = out.write_all(b"\n");
    }
}

fn main() {
    let stdin = std::io::stdin();
    let mut server = Server {
        out: Arc::new(Mutex::new(std::io::BufWriter::new(std::io::stdout()))),
        sampling: Vec::new(),
        next: 0,
    };
    if std::env::var_os("ECHO_ANNOUNCE_STDERR").is_some() {
        eprintln!("echo server starting");
    }
    let mut line = String::new();
    let mut input = stdin.lock();
    loop {
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let raw = line.trim_end_matches(['\n', '\r']);
        if raw.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(raw) {
            Ok(Value::Array(items)) => {
                let answers: Vec<String> = items.iter().filter_map(|m| server.handle(raw, m)).collect();
                if !answers.is_empty() {
                    let line = format!("[{}]", answers.join(","));
                    server.emit(&line);
                }
            }
            Ok(msg) => {
                if let Some(answer) = server.handle(raw, &msg) {
                    server.emit(&answer);
                }
            }
            Err(_) => {
                server.emit(r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#)
            }
        }
        server.flush();
    }
}
