//! Graceful shutdown on SIGTERM/SIGINT: stop accepting, let in-flight requests finish for up to
//! `--drain-timeout-secs`, answer the rest with a JSON-RPC error instead of dropping them, make
//! sure those answers reach the clients, then stop every child's process group.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::http::{self, App};

/// How long answers already produced get to reach their clients once the drain is over. A client
/// that does not read them within this time is not waited for.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Tracks open HTTP connections so that shutdown can ask them to finish and wait for them.
pub struct Connections {
    stop: watch::Sender<bool>,
    /// Every connection task holds a clone; the receiver sees `None` once all have ended.
    alive_tx: mpsc::Sender<()>,
    alive_rx: mpsc::Receiver<()>,
}

impl Default for Connections {
    fn default() -> Self {
        Self::new()
    }
}

impl Connections {
    pub fn new() -> Self {
        let (alive_tx, alive_rx) = mpsc::channel(1);
        Connections { stop: watch::channel(false).0, alive_tx, alive_rx }
    }

    /// Serve one HTTP/1.1 connection until it ends. Once shutdown starts it finishes the request
    /// in progress (its response included) and closes; an idle keep-alive connection closes at
    /// once.
    pub fn serve(&self, app: Arc<App>, stream: TcpStream) {
        let alive = self.alive_tx.clone();
        let mut stop = self.stop.subscribe();
        tokio::spawn(async move {
            let _alive = alive;
            let svc = service_fn(move |req| http::handle(Arc::clone(&app), req));
            let conn = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            let mut stopping = false;
            loop {
                tokio::select! {
                    res = conn.as_mut() => {
                        if let Err(e) = res {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    changed = stop.changed(), if !stopping => {
                        stopping = true;
                        if changed.is_ok() {
                            conn.as_mut().graceful_shutdown();
                        }
                    }
                }
            }
        });
    }

    /// Ask every connection to finish, then wait (up to `limit`) until all have ended.
    async fn finish(self, limit: Duration) -> bool {
        let Connections { stop, alive_tx, mut alive_rx } = self;
        stop.send_replace(true);
        drop(alive_tx);
        tokio::time::timeout(limit, alive_rx.recv()).await.is_ok()
    }

    fn stop_keepalive(&self) {
        self.stop.send_replace(true);
    }
}

/// Requests of every session and pooled child still waiting for an answer.
async fn in_flight(app: &App) -> usize {
    let mut n = 0;
    for server in &app.servers {
        n += server.all_sessions().iter().map(|s| s.pending_count()).sum::<usize>();
        n += server.pool_sessions().await.iter().map(|s| s.pending_count()).sum::<usize>();
    }
    n
}

/// Runs once the listener is closed.
pub async fn drain(app: &App, conns: Connections) {
    let started = Instant::now();
    for server in &app.servers {
        server.shutting_down.store(true, Ordering::SeqCst);
    }
    // Idle keep-alive connections close now; busy ones after their current response.
    conns.stop_keepalive();
    let deadline = started + app.cfg.drain_timeout;
    let mut waiting = in_flight(app).await;
    tracing::info!(in_flight = waiting, drain_timeout_secs = app.cfg.drain_timeout.as_secs(), "draining");
    while waiting > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waiting = in_flight(app).await;
    }
    if waiting > 0 {
        tracing::warn!(unanswered = waiting, "drain timeout: answering the remaining requests with an error");
    }

    // Closing a session answers its pending requests with -32002, ends its streams and stops its
    // child's process group (SIGTERM, SIGKILL after the grace period).
    let mut all = Vec::new();
    for server in &app.servers {
        all.extend(server.all_sessions());
        all.extend(server.pool_sessions().await);
    }
    for s in &all {
        s.close("the bridge is shutting down");
    }
    if !conns.finish(FLUSH_TIMEOUT).await {
        tracing::warn!("some clients did not take their last response in time");
    }
    let grace = app.cfg.shutdown_grace + Duration::from_secs(1);
    let all_done = async {
        for s in &all {
            s.child.wait_exit().await;
        }
    };
    if tokio::time::timeout(grace, all_done).await.is_err() {
        tracing::warn!("some children did not exit in time");
    }
    tracing::info!(
        children = all.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "shutdown complete"
    );
}
