//! Test helpers: start the bridge in front of the echo fixture, speak raw HTTP/1.1.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BRIDGE: &str = env!("CARGO_BIN_EXE_mcp-stdio-bridge");
pub const ECHO: &str = env!("CARGO_BIN_EXE_mcp-bridge-echo");

pub struct Bridge {
    pub child: Child,
    pub addr: String,
    pub log: Arc<Mutex<String>>,
}

impl Bridge {
    /// Start the bridge with extra options in front of the echo fixture.
    pub fn start(opts: &[&str]) -> Bridge {
        let mut args: Vec<String> = vec!["--listen".into(), "127.0.0.1:0".into()];
        args.extend(opts.iter().map(|s| s.to_string()));
        args.push("--".into());
        args.push(ECHO.into());
        Self::start_raw(&args)
    }

    pub fn start_raw(args: &[String]) -> Bridge {
        let mut child = Command::new(BRIDGE)
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start bridge");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log2 = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut r = BufReader::new(stderr);
            let mut line = String::new();
            let mut tx = Some(tx);
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(rest) = line.trim().strip_prefix("mcp-stdio-bridge listening on ") {
                    if let Some(t) = tx.take() {
                        let _ = t.send(rest.to_string());
                    }
                }
                log2.lock().unwrap().push_str(&line);
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(10)).expect("bridge did not start");
        Bridge { child, addr, log }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        request(&self.addr, "POST", path, headers, body.as_bytes())
    }

    /// initialize + notifications/initialized; returns the session id.
    pub fn init(&self, path: &str) -> String {
        let r = self.post(path, &json_hdrs(None), INIT);
        assert_eq!(r.status, 200, "initialize failed: {}", r.text());
        let sid = r.header("mcp-session-id").expect("session id").to_string();
        let r = self.post(
            path,
            &json_hdrs(Some(&sid)),
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        );
        assert_eq!(r.status, 202);
        sid
    }

    pub fn call(&self, sid: &str, id: u64, tool: &str, args: &str) -> Resp {
        self.post(
            "/mcp",
            &json_hdrs(Some(sid)),
            &format!(
                r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{args}}}}}"#
            ),
        )
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits for `needle` in the bridge's log: a reader thread collects it, so a line the bridge
    /// wrote just before an HTTP answer can arrive here after that answer.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.log_text().contains(needle) {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

pub fn json_hdrs(sid: Option<&str>) -> Vec<(&str, &str)> {
    let mut v = vec![("content-type", "application/json"), ("accept", "application/json, text/event-stream")];
    if let Some(s) = sid {
        v.push(("mcp-session-id", s));
        v.push(("mcp-protocol-version", "2025-11-25"));
    }
    v
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
}

fn write_request(s: &mut TcpStream, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) {
    let mut head = format!("{method} {path} HTTP/1.1\r\nconnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str("host: 127.0.0.1\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let chunked =
        headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if !chunked {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    if chunked {
        for part in body.chunks(7) {
            s.write_all(format!("{:x}\r\n", part.len()).as_bytes()).unwrap();
            s.write_all(part).unwrap();
            s.write_all(b"\r\n").unwrap();
        }
        s.write_all(b"0\r\n\r\n").unwrap();
    } else {
        s.write_all(body).unwrap();
    }
}

fn read_head(r: &mut BufReader<TcpStream>) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    (status, headers)
}

pub fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write_request(&mut s, method, path, headers, body);
    let mut r = BufReader::new(s);
    let (status, headers) = read_head(&mut r);
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let n = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            let mut buf = vec![0u8; n + 2];
            r.read_exact(&mut buf).unwrap();
            body.extend_from_slice(&buf[..n]);
        }
    } else {
        r.read_to_end(&mut body).unwrap();
    }
    Resp { status, headers, body }
}

/// An open SSE response read incrementally.
pub struct Stream {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    reader: BufReader<TcpStream>,
    pub seen: String,
}

pub fn open_stream(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Stream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    write_request(&mut s, method, path, headers, body);
    let mut reader = BufReader::new(s);
    reader.get_mut().set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (status, headers) = read_head(&mut reader);
    reader.get_mut().set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    Stream { status, headers, reader, seen: String::new() }
}

impl Stream {
    /// Read until `needle` shows up (raw chunked bytes are fine for substring checks).
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 65536];
        while Instant::now() < deadline {
            if self.seen.contains(needle) {
                return true;
            }
            match self.reader.read(&mut buf) {
                Ok(0) => return self.seen.contains(needle),
                Ok(n) => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(_) => {}
            }
        }
        self.seen.contains(needle)
    }
}

pub fn pid_alive(pid: i32) -> bool {
    // A zombie still has /proc/<pid>; treat it as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')).unwrap_or(false),
        Err(_) => false,
    }
}

pub fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !pid_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    !pid_alive(pid)
}

/// Direct children of `pid`.
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) {
                if let Some((_, rest)) = stat.rsplit_once(')') {
                    let f: Vec<&str> = rest.split_whitespace().collect();
                    if f.get(1).and_then(|s| s.parse::<i32>().ok()) == Some(pid) && f[0] != "Z" {
                        out.push(p);
                    }
                }
            }
        }
    }
    out
}

pub fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

pub fn tool_text(r: &Resp) -> String {
    let v = r.json();
    v["result"]["content"][0]["text"].as_str().unwrap_or_else(|| panic!("no text in {v}")).to_string()
}

/// A `/proc/<pid>/status` field in KiB (VmRSS: resident now, VmHWM: peak resident).
pub fn status_kib(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} for {pid}"))
}

/// Wait until the bridge's log contains `needle`.
pub fn wait_log(b: &Bridge, needle: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if b.log_text().contains(needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    b.log_text().contains(needle)
}
