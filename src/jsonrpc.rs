//! JSON-RPC classification of MCP messages.
