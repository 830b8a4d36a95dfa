//! Plugin configuration bytes → `Config::from_plugin_bytes` (JSON text or binary protobuf Struct).
//!
//! Checked: no panic; an accepted config validates and builds a `Gateway` without panicking; a
//! JSON config and the same config delivered as a protobuf Struct (how Envoy 1.40 hands over
//! inline YAML) are accepted or refused alike, so the two delivery forms cannot diverge.
#![no_main]

#[path = "../common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use mcp_gateway::config::Config;
use mcp_gateway::pipeline::Gateway;

fuzz_target!(|data: &[u8]| {
    let parsed = Config::from_plugin_bytes(data);
    if let Ok(cfg) = &parsed {
        assert!(cfg.validate().is_ok(), "accepted config fails validate()");
        let _ = Gateway::new(cfg.clone());
    }
    if let Err(e) = &parsed {
        let _ = e.to_string();
    }

    // JSON text: the Struct form of the same document must get the same verdict.
    let trimmed = data.trim_ascii();
    if trimmed.first() != Some(&b'{') {
        return;
    }
    let Some(raw) = common::Raw::parse(trimmed) else { return };
    if raw.has_duplicate_keys() {
        return; // a Struct map cannot carry duplicates
    }
    let value = raw.to_value();
    if !common::numbers_exact_in_f64(&value) {
        return; // Struct numbers are doubles; integral floats come back as integers
    }
    let Some(pb) = common::encode_struct(&value) else { return };
    if pb.first().is_some_and(|b| b.is_ascii_whitespace() || *b == b'{') || pb.is_empty() {
        return; // would be read as JSON text, not as a Struct
    }
    let via_struct = Config::from_plugin_bytes(&pb);
    assert_eq!(
        parsed.is_ok(),
        via_struct.is_ok(),
        "JSON says {:?}, Struct says {:?}",
        parsed.as_ref().err(),
        via_struct.as_ref().err()
    );
});
