//! mcp-stdio-bridge as a library: `main.rs` is a thin wrapper over these modules, and the fuzz
//! targets in `fuzz/` drive the request-handling pieces directly (items only public for them are
//! `#[doc(hidden)]`). Not a stable API.

mod body;
pub mod child;
pub mod config;
pub mod http;
pub mod jsonrpc;
pub mod queue;
mod ratelimit;
pub mod session;
pub mod shutdown;
