//! Child process management: spawning with a filtered environment in its own process group,
//! line-delimited stdio framing, stderr forwarding and SIGTERM → SIGKILL shutdown of the group.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{ChildStdout, Command};
use tokio::sync::watch;

use crate::config::{env_allowed, ServerConfig};
use crate::queue::{self, Limits, SendError};

/// Handle on a running child. Dropping it does not stop the child; call [`ChildHandle::stop`].
pub struct ChildHandle {
    pub pid: i32,
    /// Bounded: a child that stops reading its stdin makes sends fail with `Full` instead of
    /// growing the bridge's memory.
    stdin_tx: std::sync::Mutex<Option<queue::Sender<Bytes>>>,
    exited: watch::Receiver<bool>,
    stopping: AtomicBool,
}

/// Output side of a freshly spawned child.
pub struct ChildOutput {
    pub stdout: ChildStdout,
}

impl ChildHandle {
    /// Queue one message (without trailing newline) for the child's stdin.
    pub fn send(&self, msg: Bytes) -> Result<(), SendError> {
        match self.stdin_tx.lock() {
            Ok(guard) => match guard.as_ref() {
                Some(tx) => tx.send(msg),
                None => Err(SendError::Closed),
            },
            Err(_) => Err(SendError::Closed),
        }
    }

    /// What the stdin queue holds: (messages, bytes). For logs.
    pub fn stdin_usage(&self) -> (usize, usize) {
        match self.stdin_tx.lock() {
            Ok(guard) => guard.as_ref().map(|tx| tx.usage()).unwrap_or((0, 0)),
            Err(_) => (0, 0),
        }
    }

    pub fn has_exited(&self) -> bool {
        *self.exited.borrow()
    }

    /// Wait until the child has exited (and its process group has been killed).
    pub async fn wait_exit(&self) {
        let mut rx = self.exited.clone();
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Close stdin, send SIGTERM to the process group, SIGKILL after `grace`.
    pub fn stop(self: &Arc<Self>, grace: Duration) {
        if self.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Ok(mut guard) = self.stdin_tx.lock() {
            guard.take();
        }
        if self.has_exited() {
            return;
        }
        signal_group(self.pid, libc::SIGTERM);
        let me = Arc::clone(self);
        tokio::spawn(async move {
            if tokio::time::timeout(grace, me.wait_exit()).await.is_err() {
                tracing::warn!(pid = me.pid, "child ignored SIGTERM; sending SIGKILL");
                signal_group(me.pid, libc::SIGKILL);
            }
        });
    }
}

fn signal_group(pid: i32, sig: i32) {
    if pid > 0 {
        // SAFETY: kill(2) with a negative pid signals the process group; no memory is touched.
        unsafe {
            libc::kill(-pid, sig);
        }
    }
}

/// Spawn the configured command. `label` identifies the child in logs.
pub fn spawn(
    cfg: &ServerConfig,
    label: &str,
    stdin_limits: Limits,
) -> std::io::Result<(Arc<ChildHandle>, ChildOutput)> {
    let mut cmd = Command::new(&cfg.command);
    cmd.args(&cfg.args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false)
        .process_group(0);
    for (k, v) in std::env::vars_os() {
        if let Some(name) = k.to_str() {
            if env_allowed(name, &cfg.env_allow) {
                cmd.env(&k, &v);
            }
        }
    }
    for (k, v) in &cfg.env {
        cmd.env(k, v);
    }
    if let Some(dir) = &cfg.cwd {
        cmd.current_dir(dir);
    }
    // SAFETY: only async-signal-safe calls (prctl, getppid) run between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            // The child dies with the bridge even if the bridge is SIGKILLed.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() == 1 {
                // The bridge already died between fork and prctl.
                return Err(std::io::Error::other("parent exited"));
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let pid = child.id().map(|p| p as i32).unwrap_or(-1);
    let stdin = child.stdin.take().ok_or_else(|| std::io::Error::other("no stdin pipe"))?;
    let stdout = child.stdout.take().ok_or_else(|| std::io::Error::other("no stdout pipe"))?;
    let stderr = child.stderr.take().ok_or_else(|| std::io::Error::other("no stderr pipe"))?;

    let (exit_tx, exit_rx) = watch::channel(false);
    let (stdin_tx, stdin_rx) = queue::channel::<Bytes>(stdin_limits);

    // Waiter: reaps the child, then kills whatever is left in its process group.
    let wlabel = label.to_string();
    tokio::spawn(async move {
        let status = child.wait().await;
        signal_group(pid, libc::SIGKILL);
        match status {
            Ok(s) => tracing::info!(child = %wlabel, pid, status = %s, "child exited"),
            Err(e) => tracing::warn!(child = %wlabel, pid, error = %e, "waiting for child failed"),
        }
        let _ = exit_tx.send(true);
    });

    // Writer: batches queued messages onto stdin, newline-terminated.
    tokio::spawn(async move {
        let mut stdin = stdin;
        let mut rx = stdin_rx;
        let mut buf = Vec::with_capacity(8192);
        while let Some(first) = rx.recv().await {
            buf.clear();
            push_line(&mut buf, &first);
            while buf.len() < 256 * 1024 {
                match rx.try_recv() {
                    Some(more) => push_line(&mut buf, &more),
                    None => break,
                }
            }
            if stdin.write_all(&buf).await.is_err() || stdin.flush().await.is_err() {
                break;
            }
            if buf.capacity() > 1024 * 1024 {
                buf = Vec::with_capacity(8192);
            }
        }
        // Dropping stdin closes the pipe: the MCP stdio signal to exit.
    });

    // Stderr forwarder.
    let slabel = label.to_string();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr);
        let mut line = Vec::new();
        loop {
            line.clear();
            match lines.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if line.len() > 8192 {
                        line.truncate(8192);
                    }
                    let text = String::from_utf8_lossy(&line);
                    tracing::info!(child = %slabel, "stderr: {}", text.trim_end());
                }
            }
        }
    });

    Ok((
        Arc::new(ChildHandle {
            pid,
            stdin_tx: std::sync::Mutex::new(Some(stdin_tx)),
            exited: exit_rx,
            stopping: AtomicBool::new(false),
        }),
        ChildOutput { stdout },
    ))
}

/// Append `msg` to `buf` as one stdin line.
#[doc(hidden)]
pub fn push_line(buf: &mut Vec<u8>, msg: &[u8]) {
    let start = buf.len();
    buf.extend_from_slice(msg);
    // Valid JSON never has a raw newline inside a string, so turning line breaks into spaces
    // keeps the message identical in meaning while keeping the stdio framing intact.
    if memchr_nl(&buf[start..]) {
        for b in &mut buf[start..] {
            if *b == b'\n' || *b == b'\r' {
                *b = b' ';
            }
        }
    }
    buf.push(b'\n');
}

fn memchr_nl(s: &[u8]) -> bool {
    s.iter().any(|&b| b == b'\n' || b == b'\r')
}

/// Reads newline-delimited messages with a size limit.
pub struct LineReader<R> {
    inner: R,
    max: usize,
    buf: BytesMut,
}

pub enum Line {
    Msg(Bytes),
    /// The line exceeds the limit (at least this many bytes); the reader must not be used again.
    TooLong(usize),
    Eof,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub fn new(inner: R, max: usize) -> Self {
        LineReader { inner, max, buf: BytesMut::new() }
    }

    pub async fn next(&mut self) -> Line {
        loop {
            let avail = match self.inner.fill_buf().await {
                Ok(a) => a,
                Err(_) => return Line::Eof,
            };
            if avail.is_empty() {
                return Line::Eof;
            }
            let (chunk, found) = match avail.iter().position(|&b| b == b'\n') {
                Some(i) => (&avail[..i], Some(i + 1)),
                None => (avail, None),
            };
            if self.buf.len() + chunk.len() > self.max {
                // Stop here rather than read on to the newline: the caller ends the session, and
                // a child that never ends the line must not keep the bridge reading forever.
                let seen = self.buf.len() + chunk.len();
                self.buf = BytesMut::new();
                return Line::TooLong(seen);
            }
            self.buf.extend_from_slice(chunk);
            let consumed = found.unwrap_or(avail.len());
            self.inner.consume(consumed);
            if found.is_some() {
                let mut line = self.buf.split().freeze();
                while line.last().is_some_and(|&b| b == b'\r' || b == b' ') {
                    line.truncate(line.len() - 1);
                }
                if line.is_empty() {
                    continue;
                }
                return Line::Msg(line);
            }
        }
    }
}
