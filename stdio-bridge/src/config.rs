//! Command line and configuration file handling.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use serde::Deserialize;

use crate::queue::Limits;

/// Environment variables a child receives when its configuration does not name its own
/// allow-list. A trailing `*` matches any suffix.
pub const DEFAULT_ENV_ALLOW: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TERM",
    "TZ",
    "TMPDIR",
    "NODE_*",
    "NPM_CONFIG_*",
    "npm_config_*",
    "XDG_*",
];

#[derive(Parser, Debug)]
#[command(
    name = "mcp-stdio-bridge",
    version,
    about = "Serve stdio MCP servers over HTTP: Streamable HTTP (2025-03-26 .. 2025-11-25, one child \
             process per session), stateless Streamable HTTP (2026-07-28, pooled children) and the \
             legacy HTTP+SSE transport (2024-11-05).",
    after_help = "EXAMPLES:\n  \
        mcp-stdio-bridge --listen 127.0.0.1:8081 -- npx -y @modelcontextprotocol/server-filesystem /data\n      \
        one server, reachable at /mcp and /default/mcp (Streamable HTTP), /sse + /messages (HTTP+SSE)\n  \
        mcp-stdio-bridge --config bridge.json\n      \
        several named servers, each at /<name>/mcp, /<name>/sse and /<name>/messages\n\n\
        ENDPOINTS:\n  /healthz                 liveness and session counts (JSON)\n  \
        /<name>/mcp, /mcp        Streamable HTTP (POST, GET, DELETE)\n  \
        /<name>/sse, /sse        legacy HTTP+SSE stream (GET)\n  \
        /<name>/messages, /messages  legacy HTTP+SSE POST endpoint (?sessionId= or ?session_id=)\n\n\
        Logs go to stderr; RUST_LOG (e.g. RUST_LOG=debug) overrides --log-level."
)]
pub struct Cli {
    /// Address to listen on. Defaults to 127.0.0.1:8081 (loopback only). The config file's
    /// "listen" is used when this flag is absent.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// JSON configuration file with several named servers (see the README for the format).
    /// Cannot be combined with a command after `--`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Name of the server given on the command line; it is served at /<name>/mcp and /mcp.
    #[arg(long, default_value = "default", value_name = "NAME")]
    pub name: String,

    /// Maximum number of concurrent sessions (children) per server; more answer 503 [default: 64].
    #[arg(long, value_name = "N")]
    pub max_sessions: Option<usize>,

    /// Seconds a request may wait for the child's response before it fails with a JSON-RPC error
    /// (progress notifications restart the clock) [default: 60].
    #[arg(long, value_name = "SECS")]
    pub request_timeout_secs: Option<u64>,

    /// Seconds without HTTP requests after which a session and its child are ended [default: 600].
    #[arg(long, value_name = "SECS")]
    pub idle_timeout_secs: Option<u64>,

    /// Number of pre-initialized children serving stateless 2026-07-28 requests per server
    /// [default: 2].
    #[arg(long, value_name = "N")]
    pub pool_size: Option<usize>,

    /// Largest accepted HTTP request body and largest child message, in bytes [default: 33554432].
    #[arg(long, value_name = "BYTES")]
    pub max_message_bytes: Option<usize>,

    /// Extra allowed Origin (e.g. https://app.example.com); repeatable. Loopback origins are
    /// always allowed, as are requests without an Origin header. "*" allows every origin.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,

    /// Extra allowed Host header value (host name, with or without port); repeatable. localhost,
    /// 127.0.0.1 and [::1] with any port are always allowed. "*" disables Host checking.
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,

    /// Environment variable the child may inherit (trailing * = prefix); repeatable. Replaces the
    /// default allow-list (PATH HOME USER LOGNAME SHELL LANG LANGUAGE LC_* TERM TZ TMPDIR NODE_*
    /// NPM_CONFIG_* npm_config_* XDG_*).
    #[arg(long = "env-allow", value_name = "NAME")]
    pub env_allow: Vec<String>,

    /// Environment variable set for the child (KEY=VALUE); repeatable.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// Working directory of the child [default: the bridge's].
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,

    /// Seconds children get between SIGTERM and SIGKILL when they are stopped [default: 5].
    #[arg(long, value_name = "SECS")]
    pub shutdown_grace_secs: Option<u64>,

    /// Bytes queued towards one peer that is not reading (one SSE stream or response of an HTTP
    /// client, or one child's stdin) before that session, or that stateless request, is dropped
    /// [default: 16777216].
    #[arg(long, value_name = "BYTES")]
    pub max_buffered_bytes: Option<usize>,

    /// Messages queued towards one peer that is not reading before its session (or stateless
    /// request) is dropped; same queues as --max-buffered-bytes [default: 4096].
    #[arg(long, value_name = "N")]
    pub max_buffered_messages: Option<usize>,

    /// On SIGTERM/SIGINT: seconds in-flight requests get to finish before they are answered with
    /// a JSON-RPC error (-32002) and the children are stopped [default: 5].
    #[arg(long, value_name = "SECS")]
    pub drain_timeout_secs: Option<u64>,

    /// Runtime worker threads (default: 2, or 1 on a single-CPU machine).
    #[arg(long, value_name = "N")]
    pub worker_threads: Option<usize>,

    /// Log level when RUST_LOG is not set (error, warn, info, debug, trace).
    #[arg(long, default_value = "info", value_name = "LEVEL")]
    pub log_level: String,

    /// Log format: "text" or "json".
    #[arg(long, default_value = "text", value_name = "FORMAT")]
    pub log_format: String,

    /// Command (and its arguments) of the stdio MCP server, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    #[serde(default)]
    pub max_message_bytes: Option<usize>,
    #[serde(default)]
    pub shutdown_grace_secs: Option<u64>,
    #[serde(default)]
    pub max_buffered_bytes: Option<usize>,
    #[serde(default)]
    pub max_buffered_messages: Option<usize>,
    #[serde(default)]
    pub drain_timeout_secs: Option<u64>,
    pub servers: BTreeMap<String, ServerFileConfig>,
}

#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct ServerFileConfig {
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub env_allow: Option<Vec<String>>,
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    #[serde(default)]
    pub max_sessions: Option<usize>,
    #[serde(default)]
    pub request_timeout_secs: Option<u64>,
    #[serde(default)]
    pub idle_timeout_secs: Option<u64>,
    #[serde(default)]
    pub pool_size: Option<usize>,
}

/// Settings of one bridged stdio server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub name: String,
    pub command: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub env_allow: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub max_sessions: usize,
    pub request_timeout: std::time::Duration,
    pub idle_timeout: std::time::Duration,
    pub pool_size: usize,
}

/// Settings of the whole bridge.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub allowed_origins: Vec<String>,
    pub allowed_hosts: Vec<String>,
    pub max_message_bytes: usize,
    pub shutdown_grace: std::time::Duration,
    /// Bounds of every queue towards a peer that may stop reading.
    pub buffer_limits: Limits,
    pub drain_timeout: std::time::Duration,
    pub servers: Vec<ServerConfig>,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8081";
pub const DEFAULT_MAX_SESSIONS: usize = 64;
pub const DEFAULT_REQUEST_TIMEOUT: u64 = 60;
pub const DEFAULT_IDLE_TIMEOUT: u64 = 600;
pub const DEFAULT_POOL_SIZE: usize = 2;
pub const DEFAULT_MAX_MESSAGE: usize = 32 * 1024 * 1024;
pub const DEFAULT_GRACE: u64 = 5;
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 16 * 1024 * 1024;
pub const DEFAULT_MAX_BUFFERED_MESSAGES: usize = 4096;
pub const DEFAULT_DRAIN: u64 = 5;

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && name != "mcp"
        && name != "sse"
        && name != "messages"
        && name != "message"
        && name != "healthz"
}

impl Config {
    pub fn from_cli(cli: &Cli) -> Result<Config, String> {
        let file = match &cli.config {
            Some(path) => {
                if !cli.command.is_empty() {
                    return Err("give either --config or a command after `--`, not both".into());
                }
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let parsed: FileConfig = serde_json::from_str(&text)
                    .map_err(|e| format!("invalid config {}: {e}", path.display()))?;
                if parsed.servers.is_empty() {
                    return Err(format!("{}: \"servers\" is empty", path.display()));
                }
                parsed
            }
            None => {
                let Some((command, args)) = cli.command.split_first() else {
                    return Err("no server: give a command after `--` or --config FILE (see --help)".into());
                };
                let mut servers = BTreeMap::new();
                servers.insert(
                    cli.name.clone(),
                    ServerFileConfig { command: command.clone(), args: args.to_vec(), ..Default::default() },
                );
                FileConfig { servers, ..Default::default() }
            }
        };

        let mut cli_env = Vec::new();
        for kv in &cli.env {
            let Some((k, v)) = kv.split_once('=') else {
                return Err(format!("--env {kv}: expected KEY=VALUE"));
            };
            cli_env.push((k.to_string(), v.to_string()));
        }

        let mut servers = Vec::new();
        for (name, s) in file.servers {
            if !valid_name(&name) {
                return Err(format!(
                    "invalid server name {name:?}: use 1-64 of [A-Za-z0-9._-], not a reserved path word"
                ));
            }
            if s.command.is_empty() {
                return Err(format!("server {name}: empty command"));
            }
            let env_allow = if !cli.env_allow.is_empty() {
                cli.env_allow.clone()
            } else if let Some(list) = s.env_allow {
                list
            } else {
                DEFAULT_ENV_ALLOW.iter().map(|s| s.to_string()).collect()
            };
            let mut env: Vec<(String, String)> = s.env.into_iter().collect();
            env.extend(cli_env.iter().cloned());
            let max_sessions = cli.max_sessions.or(s.max_sessions).unwrap_or(DEFAULT_MAX_SESSIONS);
            if max_sessions == 0 {
                return Err(format!("server {name}: max_sessions must be > 0"));
            }
            servers.push(ServerConfig {
                name,
                command: s.command,
                args: s.args,
                env,
                env_allow,
                cwd: cli.cwd.clone().or(s.cwd),
                max_sessions,
                request_timeout: std::time::Duration::from_secs(
                    cli.request_timeout_secs
                        .or(s.request_timeout_secs)
                        .unwrap_or(DEFAULT_REQUEST_TIMEOUT)
                        .max(1),
                ),
                idle_timeout: std::time::Duration::from_secs(
                    cli.idle_timeout_secs.or(s.idle_timeout_secs).unwrap_or(DEFAULT_IDLE_TIMEOUT).max(1),
                ),
                pool_size: cli.pool_size.or(s.pool_size).unwrap_or(DEFAULT_POOL_SIZE).max(1),
            });
        }

        let default_listen: SocketAddr =
            DEFAULT_LISTEN.parse().map_err(|e| format!("internal: bad default address: {e}"))?;
        let mut allowed_origins = file.allowed_origins;
        allowed_origins.extend(cli.allowed_origins.iter().cloned());
        let mut allowed_hosts = file.allowed_hosts;
        allowed_hosts.extend(cli.allowed_hosts.iter().cloned());
        let max_buffered_bytes =
            cli.max_buffered_bytes.or(file.max_buffered_bytes).unwrap_or(DEFAULT_MAX_BUFFERED_BYTES);
        if max_buffered_bytes == 0 {
            return Err("max_buffered_bytes (--max-buffered-bytes) must be > 0".into());
        }
        let max_buffered_messages =
            cli.max_buffered_messages.or(file.max_buffered_messages).unwrap_or(DEFAULT_MAX_BUFFERED_MESSAGES);
        if max_buffered_messages == 0 {
            return Err("max_buffered_messages (--max-buffered-messages) must be > 0".into());
        }
        Ok(Config {
            listen: cli.listen.or(file.listen).unwrap_or(default_listen),
            allowed_origins,
            allowed_hosts,
            max_message_bytes: cli
                .max_message_bytes
                .or(file.max_message_bytes)
                .unwrap_or(DEFAULT_MAX_MESSAGE)
                .max(1024),
            shutdown_grace: std::time::Duration::from_secs(
                cli.shutdown_grace_secs.or(file.shutdown_grace_secs).unwrap_or(DEFAULT_GRACE),
            ),
            buffer_limits: Limits { bytes: max_buffered_bytes, messages: max_buffered_messages },
            drain_timeout: std::time::Duration::from_secs(
                cli.drain_timeout_secs.or(file.drain_timeout_secs).unwrap_or(DEFAULT_DRAIN),
            ),
            servers,
        })
    }
}

/// Does `name` match an allow-list entry (exact, or prefix when the entry ends in `*`)?
pub fn env_allowed(name: &str, allow: &[String]) -> bool {
    allow.iter().any(|pat| match pat.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pat,
    })
}
