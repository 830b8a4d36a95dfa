//! Arbitrary bytes → `pbstruct::decode_struct`.
//!
//! Checked: no panic (truncated varints, huge lengths, deep nesting are errors); the result is
//! always a JSON object; decoding is a fixed point: encode(decode(x)) decodes to the same value.
#![no_main]

#[path = "../common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use mcp_gateway::pbstruct::decode_struct;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = decode_struct(data) else { return };
    assert!(v.is_object(), "decode_struct returned a non-object: {v}");
    let pb = common::encode_struct(&v).expect("object encodes");
    let again = decode_struct(&pb).expect("re-encoded Struct does not decode");
    assert_eq!(again, v, "decode(encode(v)) != v");
    let _ = mcp_gateway::config::Config::from_value(v);
});
