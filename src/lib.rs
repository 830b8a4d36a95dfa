//! MCP security gateway: an Envoy proxy-wasm filter.
//!
//! Everything except `filter` is host-independent and tested natively; `filter` is the thin
//! proxy-wasm glue that maps Envoy callbacks onto the core and the core's decisions onto hostcalls.

pub mod audit;
pub mod auth;
pub mod config;
pub mod jsonrpc;
pub mod pbstruct;
pub mod pinning;
pub mod pipeline;
pub mod policy;
pub mod ratelimit;
pub mod scorer;
pub mod session;
pub mod shared;
pub mod sse;
#[doc(hidden)]
pub mod testing;

pub mod filter;
