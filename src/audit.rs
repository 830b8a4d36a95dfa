//! The audit record: what the filter decided, exported as `wasm.*` filter state.
