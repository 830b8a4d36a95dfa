//! mcp-stdio-bridge: serves stdio MCP servers over Streamable HTTP and HTTP+SSE.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

use mcp_stdio_bridge::config::{Cli, Config};
use mcp_stdio_bridge::http::App;
use mcp_stdio_bridge::session::Server;
use mcp_stdio_bridge::shutdown::{self, Connections};

fn init_logging(cli: &Cli) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&cli.log_level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if cli.log_format == "json" {
        builder.json().init();
    } else {
        builder.with_ansi(false).init();
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let cfg = match Config::from_cli(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mcp-stdio-bridge: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let threads = cli.worker_threads.unwrap_or(cpus.min(2)).max(1);
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mcp-stdio-bridge: cannot start runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cfg)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-stdio-bridge: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cfg: Config) -> Result<(), String> {
    let listener =
        TcpListener::bind(cfg.listen).await.map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let local = listener.local_addr().map_err(|e| format!("cannot read the bound address: {e}"))?;
    let servers: Vec<Arc<Server>> = cfg
        .servers
        .iter()
        .map(|s| Server::new(s.clone(), cfg.shutdown_grace, cfg.max_message_bytes, cfg.buffer_limits))
        .collect();
    for s in &servers {
        tracing::info!(
            server = %s.cfg.name,
            command = %s.cfg.command,
            "serving http://{local}/{}/mcp (Streamable HTTP) and /{}/sse (HTTP+SSE)",
            s.cfg.name,
            s.cfg.name
        );
    }
    tracing::info!(
        max_message_bytes = cfg.max_message_bytes,
        max_buffered_bytes = cfg.buffer_limits.bytes,
        max_buffered_messages = cfg.buffer_limits.messages,
        drain_timeout_secs = cfg.drain_timeout.as_secs(),
        "limits"
    );
    // Announce the actual port (useful with --listen 127.0.0.1:0).
    tracing::info!(addr = %local, "listening");
    eprintln!("mcp-stdio-bridge listening on {local}");
    let app = Arc::new(App { cfg, servers });

    // Sweeper: request timeouts and idle sessions.
    let sweep_app = Arc::clone(&app);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let now = Instant::now();
            for server in &sweep_app.servers {
                for s in server.all_sessions() {
                    if s.sweep(now) {
                        s.close("idle timeout");
                    }
                }
                if let Ok(pool) = server.pool.try_lock() {
                    for s in pool.iter() {
                        s.sweep(now);
                    }
                }
            }
        }
    });

    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| format!("cannot watch SIGINT: {e}"))?;

    let conns = Connections::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                conns.serve(Arc::clone(&app), stream);
            }
            _ = sigterm.recv() => { tracing::info!("SIGTERM: shutting down"); break; }
            _ = sigint.recv() => { tracing::info!("SIGINT: shutting down"); break; }
        }
    }
    // No new connections from here on (they are refused).
    drop(listener);
    shutdown::drain(&app, conns).await;
    Ok(())
}
