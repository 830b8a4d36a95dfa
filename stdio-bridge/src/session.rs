//! Sessions: one child process each, with request routing, SSE streams, an event log for
//! resumption, timeouts and teardown.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::BufReader;

use crate::child::{self, ChildHandle, Line, LineReader};
use crate::config::ServerConfig;
use crate::jsonrpc::{self, Kind};
use crate::queue::{self, Limits, SendError};
use crate::ratelimit::RateLimited;

/// What a waiting HTTP handler receives.
pub enum Out {
    /// The response, to be sent as `application/json`.
    Json(Bytes),
    /// A complete, formatted SSE event.
    Event(Bytes),
}

impl queue::Weight for Out {
    fn weight(&self) -> usize {
        match self {
            Out::Json(b) | Out::Event(b) => b.len(),
        }
    }
}

/// A client queue found full while routing: its client stopped reading.
#[derive(PartialEq, Eq)]
enum Sink {
    /// The response stream of pending request `key`.
    Pending(String),
    /// The standalone (GET) stream, or the legacy SSE stream.
    Standalone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Streamable HTTP session (2025-03-26 .. 2025-11-25).
    Streamable,
    /// Legacy HTTP+SSE session (2024-11-05): everything goes to one SSE stream.
    Legacy,
    /// Pooled child serving stateless (2026-07-28) requests; ids are rewritten.
    Pooled,
}

struct Pending {
    tx: queue::Sender<Out>,
    accept_json: bool,
    accept_sse: bool,
    progress_token: Option<String>,
    started: Instant,
    seq: u64,
    stream: Option<u64>,
    /// Pooled mode: the client's id, put back into the response.
    original_id: Option<String>,
    initialize: bool,
}

struct StreamState {
    next_event: u64,
    sink: Option<queue::Sender<Out>>,
}

struct LoggedEvent {
    stream: u64,
    seq: u64,
    frame: Bytes,
}

const LOG_MAX_EVENTS: usize = 1024;
const LOG_MAX_BYTES: usize = 8 * 1024 * 1024;
const BACKLOG_MAX: usize = 1024;
/// At most one warning per kind of child fault per session in this period.
const WARN_EVERY: Duration = Duration::from_secs(1);

struct State {
    pending: HashMap<String, Pending>,
    next_seq: u64,
    next_stream: u64,
    streams: HashMap<u64, StreamState>,
    log: VecDeque<LoggedEvent>,
    log_bytes: usize,
    /// Messages for the standalone stream while none is open: oldest dropped beyond `limits`.
    backlog: VecDeque<Bytes>,
    backlog_bytes: usize,
    limits: Limits,
    /// Client queues found full under the lock; acted on once it is released.
    overflow: Vec<Sink>,
    /// Warnings for child lines that are not JSON-RPC (dropped).
    non_json: RateLimited,
    /// Warnings for backlog messages dropped because no GET stream took them.
    backlog_dropped: RateLimited,
    last_activity: Instant,
    protocol_version: Option<String>,
    init_result: Option<Bytes>,
}

/// Per-server shared state.
pub struct Server {
    pub cfg: ServerConfig,
    pub sessions: Mutex<HashMap<String, Arc<Session>>>,
    pub count: AtomicUsize,
    pub pool: tokio::sync::Mutex<Vec<Arc<Session>>>,
    pub pool_next: AtomicUsize,
    pub grace: Duration,
    pub max_message: usize,
    /// Bounds of every client queue and child stdin queue of this server.
    pub limits: Limits,
    pub shutting_down: AtomicBool,
}

pub struct Session {
    pub id: String,
    pub mode: Mode,
    pub server: Arc<Server>,
    pub child: Arc<ChildHandle>,
    state: Mutex<State>,
    closed: AtomicBool,
    next_bridge_id: AtomicU64,
    counted: bool,
}

pub fn new_session_id() -> String {
    let mut buf = [0u8; 16];
    if getrandom::getrandom(&mut buf).is_err() {
        // The OS random source is unavailable: refuse to mint predictable ids.
        return String::new();
    }
    let mut s = String::with_capacity(32);
    for b in buf {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

pub enum CreateError {
    /// The session limit is reached.
    Busy,
    /// SIGTERM/SIGINT received: no new children while draining.
    ShuttingDown,
    Spawn(String),
}

impl Server {
    pub fn new(cfg: ServerConfig, grace: Duration, max_message: usize, limits: Limits) -> Arc<Server> {
        Arc::new(Server {
            cfg,
            sessions: Mutex::new(HashMap::new()),
            count: AtomicUsize::new(0),
            pool: tokio::sync::Mutex::new(Vec::new()),
            pool_next: AtomicUsize::new(0),
            grace,
            max_message,
            limits,
            shutting_down: AtomicBool::new(false),
        })
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        let s = self.sessions().get(id).cloned()?;
        if s.is_closed() {
            None
        } else {
            Some(s)
        }
    }

    pub fn session_count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    pub fn all_sessions(&self) -> Vec<Arc<Session>> {
        self.sessions().values().cloned().collect()
    }

    /// Start a child and register a session for it (Streamable or Legacy mode).
    pub fn create_session(self: &Arc<Self>, mode: Mode) -> Result<Arc<Session>, CreateError> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(CreateError::ShuttingDown);
        }
        let max = self.cfg.max_sessions;
        if self
            .count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| if c < max { Some(c + 1) } else { None })
            .is_err()
        {
            return Err(CreateError::Busy);
        }
        match self.start(mode, true) {
            Ok(s) => {
                self.sessions().insert(s.id.clone(), Arc::clone(&s));
                Ok(s)
            }
            Err(e) => {
                self.count.fetch_sub(1, Ordering::SeqCst);
                Err(e)
            }
        }
    }

    fn start(self: &Arc<Self>, mode: Mode, counted: bool) -> Result<Arc<Session>, CreateError> {
        let id = new_session_id();
        if id.is_empty() {
            return Err(CreateError::Spawn("no OS randomness for session ids".into()));
        }
        let label = format!("{}/{}", self.cfg.name, &id[..8]);
        let (handle, out) = child::spawn(&self.cfg, &label, self.limits)
            .map_err(|e| CreateError::Spawn(format!("cannot start {}: {e}", self.cfg.command)))?;
        tracing::info!(server = %self.cfg.name, session = %&id[..8], pid = handle.pid, ?mode, "child started");
        let session = Arc::new(Session {
            id,
            mode,
            server: Arc::clone(self),
            child: handle,
            state: Mutex::new(State {
                pending: HashMap::new(),
                next_seq: 0,
                next_stream: 1,
                streams: HashMap::new(),
                log: VecDeque::new(),
                log_bytes: 0,
                backlog: VecDeque::new(),
                backlog_bytes: 0,
                limits: self.limits,
                overflow: Vec::new(),
                non_json: RateLimited::new(WARN_EVERY),
                backlog_dropped: RateLimited::new(WARN_EVERY),
                last_activity: Instant::now(),
                protocol_version: None,
                init_result: None,
            }),
            closed: AtomicBool::new(false),
            next_bridge_id: AtomicU64::new(1),
            counted,
        });
        let reader_session = Arc::clone(&session);
        let max = self.max_message;
        tokio::spawn(async move {
            let mut lines = LineReader::new(BufReader::with_capacity(256 * 1024, out.stdout), max);
            loop {
                match lines.next().await {
                    Line::Msg(m) => reader_session.from_child(m),
                    Line::TooLong(n) => {
                        // Dropping the line would leave its request waiting for the timeout, and
                        // buffering it is what the limit forbids: end the session instead.
                        tracing::warn!(
                            session = %&reader_session.id[..8],
                            bytes_at_least = n,
                            max_message_bytes = max,
                            "child message larger than --max-message-bytes: session ended"
                        );
                        reader_session.close("the MCP server sent a message larger than the limit");
                        break;
                    }
                    Line::Eof => break,
                }
            }
            reader_session.close("the MCP server process exited");
        });
        Ok(session)
    }

    /// A pooled, bridge-initialized child for stateless requests.
    pub async fn pooled(self: &Arc<Self>) -> Result<Arc<Session>, CreateError> {
        let mut pool = self.pool.lock().await;
        pool.retain(|s| !s.is_closed());
        if pool.len() < self.cfg.pool_size {
            if self.shutting_down.load(Ordering::SeqCst) {
                return Err(CreateError::ShuttingDown);
            }
            let s = self.start(Mode::Pooled, false)?;
            let init = Bytes::from_static(
                br#"{"jsonrpc":"2.0","id":"mcpb-init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"mcp-stdio-bridge","version":"0.1.0"}}}"#,
            );
            let (tx, mut rx) = queue::channel(self.limits);
            s.register("\"mcpb-init\"".into(), tx, true, false, None, None, true);
            s.to_child(init);
            let got = tokio::time::timeout(self.cfg.request_timeout, rx.recv()).await;
            match got {
                Ok(Some(Out::Json(resp))) => {
                    s.lock().init_result = Some(resp);
                    s.to_child(Bytes::from_static(
                        br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                    ));
                }
                _ => {
                    s.close("initialize failed");
                    return Err(CreateError::Spawn("the MCP server did not answer initialize".into()));
                }
            }
            pool.push(Arc::clone(&s));
            return Ok(s);
        }
        let i = self.pool_next.fetch_add(1, Ordering::Relaxed) % pool.len().max(1);
        pool.get(i).cloned().ok_or_else(|| CreateError::Spawn("empty pool".into()))
    }

    pub async fn pool_sessions(&self) -> Vec<Arc<Session>> {
        self.pool.lock().await.clone()
    }
}

/// Split an SSE event id as minted by [`Session::stream_event`] ("<stream>_<n>", e.g. from a
/// Last-Event-ID header) into its stream and sequence numbers; `None` for anything else.
#[doc(hidden)]
pub fn parse_event_id(id: &str) -> Option<(u64, u64)> {
    let (s, n) = id.split_once('_')?;
    Some((s.parse().ok()?, n.parse().ok()?))
}

fn sse_frame(id: Option<&str>, data: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(data.len() + 48);
    if let Some(id) = id {
        v.extend_from_slice(b"id: ");
        v.extend_from_slice(id.as_bytes());
        v.push(b'\n');
    }
    v.extend_from_slice(b"event: message\ndata: ");
    v.extend_from_slice(data);
    v.extend_from_slice(b"\n\n");
    Bytes::from(v)
}

pub fn legacy_frame(data: &[u8]) -> Bytes {
    sse_frame(None, data)
}

impl Session {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    pub fn touch(&self) {
        self.lock().last_activity = Instant::now();
    }

    pub fn protocol_version(&self) -> Option<String> {
        self.lock().protocol_version.clone()
    }

    pub fn init_result(&self) -> Option<Bytes> {
        self.lock().init_result.clone()
    }

    pub fn next_bridge_id(&self) -> String {
        format!("\"mcpb-{}\"", self.next_bridge_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Register an in-flight request. `key` is the id as JSON text.
    #[allow(clippy::too_many_arguments)]
    pub fn register(
        &self,
        key: String,
        tx: queue::Sender<Out>,
        accept_json: bool,
        accept_sse: bool,
        progress_token: Option<String>,
        original_id: Option<String>,
        initialize: bool,
    ) {
        let mut st = self.lock();
        st.next_seq += 1;
        let seq = st.next_seq;
        st.last_activity = Instant::now();
        st.pending.insert(
            key,
            Pending {
                tx,
                accept_json,
                accept_sse,
                progress_token,
                started: Instant::now(),
                seq,
                stream: None,
                original_id,
                initialize,
            },
        );
    }

    /// Open a new SSE stream for the given pending requests (used for batches answered over SSE).
    /// Returns the priming frame if one should be sent.
    pub fn open_stream_for(&self, keys: &[String]) -> Option<Bytes> {
        let mut st = self.lock();
        let s = st.next_stream;
        st.next_stream += 1;
        for k in keys {
            if let Some(p) = st.pending.get_mut(k) {
                p.stream = Some(s);
            }
        }
        Self::new_stream(&mut st, s)
    }

    fn new_stream(st: &mut State, s: u64) -> Option<Bytes> {
        st.streams.insert(s, StreamState { next_event: 1, sink: None });
        let priming = st.protocol_version.as_deref().is_some_and(|v| v >= "2025-11-25");
        if priming {
            let frame = Bytes::from(format!("id: {s}_0\ndata: \n\n"));
            Some(frame)
        } else {
            None
        }
    }

    fn log_event(st: &mut State, stream: u64, seq: u64, frame: &Bytes) {
        st.log_bytes += frame.len();
        st.log.push_back(LoggedEvent { stream, seq, frame: frame.clone() });
        while st.log.len() > LOG_MAX_EVENTS || st.log_bytes > LOG_MAX_BYTES {
            match st.log.pop_front() {
                Some(e) => st.log_bytes -= e.frame.len(),
                None => break,
            }
        }
    }

    fn stream_event(st: &mut State, stream: u64, data: &[u8]) -> Bytes {
        let n = match st.streams.get_mut(&stream) {
            Some(ss) => {
                let n = ss.next_event;
                ss.next_event += 1;
                n
            }
            None => 1,
        };
        let frame = sse_frame(Some(&format!("{stream}_{n}")), data);
        Self::log_event(st, stream, n, &frame);
        frame
    }

    /// Deliver a message related to pending request `key` (not its response).
    /// Returns false if it could not go there (then the caller uses the standalone stream).
    fn to_pending_related(st: &mut State, key: &str, msg: &[u8]) -> bool {
        let (stream, first) = match st.pending.get(key) {
            Some(p) if p.accept_sse => match p.stream {
                Some(s) => (s, None),
                None => (0, Some(())),
            },
            _ => return false,
        };
        let stream = if first.is_some() {
            let s = st.next_stream;
            st.next_stream += 1;
            let priming = Self::new_stream(st, s);
            if let Some(p) = st.pending.get_mut(key) {
                p.stream = Some(s);
            }
            if let Some(f) = priming {
                Self::push_pending(st, key, Out::Event(f));
            }
            s
        } else {
            stream
        };
        let frame = Self::stream_event(st, stream, msg);
        Self::push_pending(st, key, Out::Event(frame));
        true
    }

    /// Queue `out` for a client. A full queue means the client stopped reading: it is noted in
    /// `st.overflow` and [`Session::drop_slow_clients`] acts on it once the lock is released.
    fn push(st: &mut State, tx: &queue::Sender<Out>, out: Out, sink: Sink) {
        if tx.send(out) == Err(SendError::Full) && !st.overflow.contains(&sink) {
            st.overflow.push(sink);
        }
    }

    fn push_pending(st: &mut State, key: &str, out: Out) {
        if let Some(tx) = st.pending.get(key).map(|p| p.tx.clone()) {
            Self::push(st, &tx, out, Sink::Pending(key.to_string()));
        }
    }

    fn push_standalone(st: &mut State, out: Out) {
        if let Some(tx) = st.streams.get(&0).and_then(|s| s.sink.clone()) {
            Self::push(st, &tx, out, Sink::Standalone);
        }
    }

    /// Keep `msg` until a standalone stream opens; the oldest messages go beyond the limits.
    fn push_backlog(st: &mut State, msg: Bytes) {
        st.backlog_bytes += msg.len();
        st.backlog.push_back(msg);
        let max_messages = st.limits.messages.min(BACKLOG_MAX);
        while st.backlog.len() > max_messages || (st.backlog_bytes > st.limits.bytes && st.backlog.len() > 1)
        {
            match st.backlog.pop_front() {
                Some(old) => st.backlog_bytes -= old.len(),
                None => break,
            }
            if let Some(suppressed) = st.backlog_dropped.hit(Instant::now()) {
                tracing::warn!(
                    suppressed,
                    "no GET stream open: oldest buffered server message dropped (--max-buffered-*)"
                );
            }
        }
    }

    fn take_backlog(st: &mut State) -> Vec<Bytes> {
        st.backlog_bytes = 0;
        st.backlog.drain(..).collect()
    }

    fn to_standalone(st: &mut State, msg: Bytes) {
        let live = st.streams.get(&0).and_then(|s| s.sink.as_ref()).is_some_and(|tx| !tx.is_closed());
        if live {
            let frame = Self::stream_event(st, 0, &msg);
            Self::push_standalone(st, Out::Event(frame));
        } else {
            Self::push_backlog(st, msg);
        }
    }

    /// Deliver the response for pending `key` and retire it.
    fn respond(&self, st: &mut State, key: &str, msg: Bytes) {
        let Some(p) = st.pending.remove(key) else {
            tracing::debug!(session = %&self.id[..8], id = key, "response for unknown or expired request dropped");
            return;
        };
        let msg = match (&p.original_id, jsonrpc::inspect(&msg)) {
            (Some(orig), Ok(info)) => match info.id {
                Some((_, range)) => jsonrpc::splice(&msg, range, orig.as_bytes()),
                None => msg,
            },
            _ => msg,
        };
        if p.initialize {
            if let Ok(info) = jsonrpc::inspect(&msg) {
                if info.protocol_version.is_some() {
                    st.protocol_version = info.protocol_version;
                }
            }
        }
        let sink = || Sink::Pending(key.to_string());
        match p.stream {
            Some(s) => {
                let frame = Self::stream_event(st, s, &msg);
                Self::push(st, &p.tx, Out::Event(frame), sink());
            }
            None if p.accept_json || !p.accept_sse => {
                Self::push(st, &p.tx, Out::Json(msg), sink());
            }
            None => {
                let s = st.next_stream;
                st.next_stream += 1;
                if let Some(f) = Self::new_stream(st, s) {
                    Self::push(st, &p.tx, Out::Event(f), sink());
                }
                let frame = Self::stream_event(st, s, &msg);
                Self::push(st, &p.tx, Out::Event(frame), sink());
            }
        }
        if let Some(s) = p.stream {
            if !st.pending.values().any(|q| q.stream == Some(s)) {
                if let Some(ss) = st.streams.get_mut(&s) {
                    ss.sink = None;
                }
            }
        }
    }

    /// Route one message read from the child's stdout.
    fn from_child(self: &Arc<Self>, msg: Bytes) {
        let info = match jsonrpc::inspect(&msg) {
            Ok(i) => i,
            Err(e) => {
                // The line's content is not logged: it may hold anything, secrets included.
                if let Some(suppressed) = self.lock().non_json.hit(Instant::now()) {
                    tracing::warn!(
                        session = %&self.id[..8],
                        error = %e,
                        bytes = msg.len(),
                        suppressed,
                        "non-JSON-RPC output from child dropped"
                    );
                }
                return;
            }
        };
        let (reply, overflow) = {
            let mut st = self.lock();
            let reply = self.route(&mut st, msg, info);
            (reply, std::mem::take(&mut st.overflow))
        };
        self.drop_slow_clients(overflow);
        if let Some(reply) = reply {
            self.to_child(reply);
        }
    }

    /// Deliver one child message to its client queue. Returns an answer for the child, if any.
    fn route(&self, st: &mut State, msg: Bytes, info: jsonrpc::Info) -> Option<Bytes> {
        if self.mode == Mode::Legacy {
            if st.streams.get(&0).is_some_and(|ss| ss.sink.is_some()) {
                Self::push_standalone(st, Out::Event(legacy_frame(&msg)));
            } else {
                Self::push_backlog(st, msg);
            }
            return None;
        }
        match info.kind {
            Kind::Response => {
                if let Some((key, _)) = &info.id {
                    self.respond(st, key, msg);
                }
            }
            Kind::Notification => {
                let method = info.method.as_deref().unwrap_or("");
                let target = if let Some(tok) = &info.progress_token {
                    let found = st
                        .pending
                        .iter_mut()
                        .find(|(_, p)| p.progress_token.as_deref() == Some(tok.as_str()));
                    found.map(|(k, p)| {
                        // Progress shows the child is alive: restart the request's timeout.
                        if method == "notifications/progress" {
                            p.started = Instant::now();
                        }
                        k.clone()
                    })
                } else {
                    None
                };
                let target = target.or_else(|| {
                    // A pooled child is shared by concurrent requests: only a progress token
                    // identifies the request there.
                    if self.mode == Mode::Streamable
                        && (method == "notifications/message" || method == "notifications/progress")
                    {
                        Self::latest_sse_pending(st)
                    } else {
                        None
                    }
                });
                let delivered = match &target {
                    Some(k) => Self::to_pending_related(st, k, &msg),
                    None => false,
                };
                if !delivered && self.mode == Mode::Streamable {
                    Self::to_standalone(st, msg);
                }
            }
            Kind::Request => {
                if self.mode == Mode::Pooled {
                    let id = info.id.map(|(t, _)| t).unwrap_or_else(|| "null".into());
                    return Some(jsonrpc::error_response(
                        &id,
                        jsonrpc::METHOD_NOT_FOUND,
                        "server-to-client requests are not available in stateless mode",
                    ));
                }
                let delivered = match Self::latest_sse_pending(st) {
                    Some(k) => Self::to_pending_related(st, &k, &msg),
                    None => false,
                };
                if !delivered {
                    Self::to_standalone(st, msg);
                }
            }
        }
        None
    }

    /// Act on client queues found full: the client stopped reading. A session is ended (its child
    /// stopped, its other streams closed); a pooled child serves other clients, so only the
    /// stateless request is dropped (its stream ends) and the child is told to cancel it.
    fn drop_slow_clients(&self, overflow: Vec<Sink>) {
        if overflow.is_empty() {
            return;
        }
        let lim = self.server.limits;
        if self.mode == Mode::Pooled {
            for sink in overflow {
                if let Sink::Pending(key) = sink {
                    self.lock().pending.remove(&key);
                    tracing::warn!(
                        server = %self.server.cfg.name,
                        id = %key,
                        max_buffered_bytes = lim.bytes,
                        max_buffered_messages = lim.messages,
                        "HTTP client not reading its response stream: stateless request dropped"
                    );
                    self.to_child(cancelled(&key, "client not reading"));
                }
            }
            return;
        }
        tracing::warn!(
            server = %self.server.cfg.name,
            session = %&self.id[..8],
            max_buffered_bytes = lim.bytes,
            max_buffered_messages = lim.messages,
            "HTTP client not reading its SSE stream: session dropped"
        );
        self.close("the HTTP client stopped reading its stream");
    }

    /// Queue a message for the child's stdin. A child that stopped reading (its queue is full)
    /// ends the session rather than being buffered for forever. Must not be called with the
    /// state lock held. Returns false if the message could not be queued.
    pub fn to_child(&self, msg: Bytes) -> bool {
        match self.child.send(msg) {
            Ok(()) => true,
            Err(SendError::Closed) => false,
            Err(SendError::Full) => {
                let (messages, bytes) = self.child.stdin_usage();
                tracing::warn!(
                    server = %self.server.cfg.name,
                    session = %&self.id[..8],
                    pid = self.child.pid,
                    queued_messages = messages,
                    queued_bytes = bytes,
                    "MCP server not reading its stdin: session dropped"
                );
                self.close("the MCP server stopped reading its input");
                false
            }
        }
    }

    fn latest_sse_pending(st: &State) -> Option<String> {
        st.pending
            .iter()
            .filter(|(_, p)| p.accept_sse && !p.initialize)
            .max_by_key(|(_, p)| p.seq)
            .map(|(k, _)| k.clone())
    }

    /// Attach the standalone (GET) stream and flush the backlog into it.
    pub fn attach_standalone(&self, tx: queue::Sender<Out>) {
        let overflow = {
            let mut st = self.lock();
            st.last_activity = Instant::now();
            st.streams.entry(0).or_insert(StreamState { next_event: 1, sink: None }).sink = Some(tx);
            for msg in Self::take_backlog(&mut st) {
                if self.mode == Mode::Legacy {
                    Self::push_standalone(&mut st, Out::Event(legacy_frame(&msg)));
                } else {
                    Self::to_standalone(&mut st, msg);
                }
            }
            std::mem::take(&mut st.overflow)
        };
        self.drop_slow_clients(overflow);
    }

    /// Resume a stream after `last_event_id` ("<stream>_<n>"): replays logged events and
    /// attaches `tx` as the stream's new sink. Returns false if the id is unknown.
    pub fn resume(&self, last_event_id: &str, tx: queue::Sender<Out>) -> bool {
        let Some((s, n)) = parse_event_id(last_event_id) else {
            return false;
        };
        let overflow = {
            let mut st = self.lock();
            st.last_activity = Instant::now();
            if !st.streams.contains_key(&s) {
                return false;
            }
            let replay: Vec<Bytes> =
                st.log.iter().filter(|e| e.stream == s && e.seq > n).map(|e| e.frame.clone()).collect();
            let mut full = false;
            for frame in replay {
                full |= tx.send(Out::Event(frame)) == Err(SendError::Full);
            }
            if s == 0 {
                if let Some(ss) = st.streams.get_mut(&0) {
                    ss.sink = Some(tx);
                }
                for msg in Self::take_backlog(&mut st) {
                    Self::to_standalone(&mut st, msg);
                }
            } else {
                for p in st.pending.values_mut() {
                    if p.stream == Some(s) {
                        p.tx = tx.clone();
                    }
                }
            }
            // Only Streamable sessions resume (GET): a replay the client does not take ends the
            // session like any other full stream.
            if full && !st.overflow.contains(&Sink::Standalone) {
                st.overflow.push(Sink::Standalone);
            }
            std::mem::take(&mut st.overflow)
        };
        self.drop_slow_clients(overflow);
        true
    }

    /// Fail and drop requests older than the timeout; returns true if the session is idle.
    pub fn sweep(&self, now: Instant) -> bool {
        let timeout = self.server.cfg.request_timeout;
        let (expired, overflow, idle) = {
            let mut st = self.lock();
            let expired: Vec<String> = st
                .pending
                .iter()
                .filter(|(_, p)| now.duration_since(p.started) >= timeout)
                .map(|(k, _)| k.clone())
                .collect();
            for key in &expired {
                tracing::warn!(session = %&self.id[..8], id = %key, "request timed out");
                let err = jsonrpc::error_response(
                    key,
                    jsonrpc::REQUEST_TIMEOUT,
                    &format!("Request timed out after {} s waiting for the MCP server", timeout.as_secs()),
                );
                self.respond(&mut st, key, err);
            }
            let idle = self.mode != Mode::Pooled
                && st.pending.is_empty()
                && now.duration_since(st.last_activity) >= self.server.cfg.idle_timeout;
            (expired, std::mem::take(&mut st.overflow), idle)
        };
        self.drop_slow_clients(overflow);
        for key in expired {
            self.to_child(cancelled(&key, "timeout"));
        }
        idle
    }

    /// Requests still waiting for the child's answer.
    pub fn pending_count(&self) -> usize {
        self.lock().pending.len()
    }

    /// End the session: fail pending requests, close streams, stop the child.
    pub fn close(&self, reason: &str) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::info!(server = %self.server.cfg.name, session = %&self.id[..8], reason, "session closed");
        {
            let mut st = self.lock();
            let keys: Vec<String> = st.pending.keys().cloned().collect();
            for key in keys {
                let err = jsonrpc::error_response(
                    &key,
                    jsonrpc::CHILD_EXITED,
                    &format!("MCP session ended: {reason}"),
                );
                self.respond(&mut st, &key, err);
            }
            // The session is ending anyway: a client too slow to take its error is not acted on.
            st.overflow.clear();
            let non_json = st.non_json.take_suppressed();
            if non_json > 0 {
                tracing::warn!(session = %&self.id[..8], lines = non_json, "more non-JSON-RPC child output was dropped");
            }
            st.pending.clear();
            st.streams.clear();
            st.backlog.clear();
            st.backlog_bytes = 0;
            st.log.clear();
            st.log_bytes = 0;
        }
        if self.server.sessions().remove(&self.id).is_some() && self.counted {
            self.server.count.fetch_sub(1, Ordering::SeqCst);
        }
        self.child.stop(self.server.grace);
    }
}

/// `notifications/cancelled` for the child's request `key` (JSON text of the id).
fn cancelled(key: &str, reason: &str) -> Bytes {
    Bytes::from(format!(
        "{{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{{\"requestId\":{key},\"reason\":\"{reason}\"}}}}"
    ))
}
