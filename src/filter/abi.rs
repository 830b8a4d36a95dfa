//! Panic-free proxy-wasm host calls.
//!
//! The `proxy-wasm` crate's `hostcalls` module `panic!`s on any status it does not expect (and
//! its `Context` trait methods `unwrap` those results); a panic aborts the VM. These wrappers
//! declare the same ABI 0.2.1 imports with a plain `u32` status (never transmuted into an enum)
//! and return `Result`, so every host failure becomes a value the filter can fail closed on.
//! The SDK is still used for what it does well: the exported `proxy_on_*` dispatcher and the
//! memory allocator the host uses to hand us buffers (which we adopt with `Vec::from_raw_parts`,
//! exactly as the SDK does).

#![allow(clashing_extern_declarations)]

use std::ptr::{null, null_mut};

pub const OK: u32 = 0;
pub const NOT_FOUND: u32 = 1;
pub const CAS_MISMATCH: u32 = 8;

/// A non-OK host status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostError(pub u32);

pub type HostResult<T> = Result<T, HostError>;

pub const REQUEST_HEADERS: u32 = 0;
pub const RESPONSE_HEADERS: u32 = 2;
pub const HTTP_CALL_RESPONSE_HEADERS: u32 = 6;

pub const REQUEST_BODY: u32 = 0;
pub const RESPONSE_BODY: u32 = 1;
pub const HTTP_CALL_RESPONSE_BODY: u32 = 4;
pub const PLUGIN_CONFIGURATION: u32 = 7;

const STREAM_REQUEST: u32 = 0;
const STREAM_RESPONSE: u32 = 1;

pub const METRIC_COUNTER: u32 = 0;
pub const METRIC_HISTOGRAM: u32 = 2;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, data: *const u8, size: usize) -> u32;
    fn proxy_get_current_time_nanoseconds(out: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_buffer_bytes(
        kind: u32,
        start: usize,
        max: usize,
        out: *mut *mut u8,
        out_size: *mut usize,
    ) -> u32;
    fn proxy_set_buffer_bytes(kind: u32, start: usize, size: usize, data: *const u8, data_size: usize)
        -> u32;
    fn proxy_get_header_map_pairs(map: u32, out: *mut *mut u8, out_size: *mut usize) -> u32;
    fn proxy_get_header_map_value(
        map: u32,
        k: *const u8,
        ks: usize,
        out: *mut *mut u8,
        out_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(map: u32, k: *const u8, ks: usize, v: *const u8, vs: usize) -> u32;
    fn proxy_add_header_map_value(map: u32, k: *const u8, ks: usize, v: *const u8, vs: usize) -> u32;
    fn proxy_remove_header_map_value(map: u32, k: *const u8, ks: usize) -> u32;
    fn proxy_get_property(p: *const u8, ps: usize, out: *mut *mut u8, out_size: *mut usize) -> u32;
    fn proxy_set_property(p: *const u8, ps: usize, v: *const u8, vs: usize) -> u32;
    fn proxy_get_shared_data(
        k: *const u8,
        ks: usize,
        out: *mut *mut u8,
        out_size: *mut usize,
        cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(k: *const u8, ks: usize, v: *const u8, vs: usize, cas: u32) -> u32;
    #[allow(clippy::too_many_arguments)]
    fn proxy_send_local_response(
        status: u32,
        details: *const u8,
        details_size: usize,
        body: *const u8,
        body_size: usize,
        headers: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_continue_stream(stream: u32) -> u32;
    fn proxy_define_metric(kind: u32, name: *const u8, name_size: usize, id: *mut u32) -> u32;
    fn proxy_increment_metric(id: u32, offset: i64) -> u32;
    fn proxy_record_metric(id: u32, value: u64) -> u32;
}

fn check(status: u32) -> HostResult<()> {
    if status == OK {
        Ok(())
    } else {
        Err(HostError(status))
    }
}

/// Takes ownership of a host-allocated buffer (allocated through the SDK's
/// `proxy_on_memory_allocate`, a boxed slice of exactly `size` bytes).
fn adopt(data: *mut u8, size: usize) -> Option<Vec<u8>> {
    if data.is_null() {
        return None;
    }
    // SAFETY: the host filled a buffer it obtained from proxy_on_memory_allocate(size), which
    // returns a leaked `Box<[u8]>` of that length; we are its only owner from here on.
    Some(unsafe { Vec::from_raw_parts(data, size, size) })
}

fn fetch(f: impl FnOnce(*mut *mut u8, *mut usize) -> u32) -> HostResult<Option<Vec<u8>>> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    match f(&mut data, &mut size) {
        OK => Ok(adopt(data, size)),
        NOT_FOUND => Ok(None),
        s => Err(HostError(s)),
    }
}

pub fn log(level: u32, message: &str) {
    // SAFETY: pointer/length of a live &str.
    let _ = unsafe { proxy_log(level, message.as_ptr(), message.len()) };
}

pub fn now_nanos() -> HostResult<u64> {
    let mut t: u64 = 0;
    // SAFETY: out-pointer to a local.
    check(unsafe { proxy_get_current_time_nanoseconds(&mut t) })?;
    Ok(t)
}

pub fn set_tick_period_ms(ms: u32) -> HostResult<()> {
    // SAFETY: plain value call.
    check(unsafe { proxy_set_tick_period_milliseconds(ms) })
}

pub fn get_buffer(kind: u32, start: usize, max: usize) -> HostResult<Option<Vec<u8>>> {
    // SAFETY: out-pointers to locals owned by `fetch`.
    fetch(|d, s| unsafe { proxy_get_buffer_bytes(kind, start, max, d, s) })
}

pub fn set_buffer(kind: u32, start: usize, size: usize, value: &[u8]) -> HostResult<()> {
    // SAFETY: pointer/length of a live slice.
    check(unsafe { proxy_set_buffer_bytes(kind, start, size, value.as_ptr(), value.len()) })
}

pub fn header(map: u32, name: &str) -> HostResult<Option<String>> {
    // SAFETY: pointer/length of a live &str; out-pointers owned by `fetch`.
    let bytes = fetch(|d, s| unsafe { proxy_get_header_map_value(map, name.as_ptr(), name.len(), d, s) })?;
    Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

pub fn header_pairs(map: u32) -> HostResult<Vec<(String, String)>> {
    // SAFETY: out-pointers owned by `fetch`.
    let bytes = fetch(|d, s| unsafe { proxy_get_header_map_pairs(map, d, s) })?;
    Ok(bytes.map(|b| deserialize_map(&b)).unwrap_or_default())
}

pub fn set_header(map: u32, name: &str, value: &str) -> HostResult<()> {
    // SAFETY: pointers/lengths of live &strs.
    check(unsafe {
        proxy_replace_header_map_value(map, name.as_ptr(), name.len(), value.as_ptr(), value.len())
    })
}

pub fn add_header(map: u32, name: &str, value: &str) -> HostResult<()> {
    // SAFETY: pointers/lengths of live &strs.
    check(unsafe { proxy_add_header_map_value(map, name.as_ptr(), name.len(), value.as_ptr(), value.len()) })
}

pub fn remove_header(map: u32, name: &str) -> HostResult<()> {
    // SAFETY: pointer/length of a live &str.
    match unsafe { proxy_remove_header_map_value(map, name.as_ptr(), name.len()) } {
        OK | NOT_FOUND => Ok(()),
        s => Err(HostError(s)),
    }
}

pub fn property(path: &[&str]) -> HostResult<Option<Vec<u8>>> {
    let p = path.join("\0");
    // SAFETY: pointer/length of a live String; out-pointers owned by `fetch`.
    fetch(|d, s| unsafe { proxy_get_property(p.as_ptr(), p.len(), d, s) })
}

pub fn property_string(path: &[&str]) -> Option<String> {
    property(path).ok().flatten().and_then(|b| String::from_utf8(b).ok())
}

/// Writes filter state `wasm.<key>` (a single path segment, see research notes).
pub fn set_filter_state(key: &str, value: &str) -> HostResult<()> {
    // SAFETY: pointers/lengths of live &strs.
    check(unsafe { proxy_set_property(key.as_ptr(), key.len(), value.as_ptr(), value.len()) })
}

pub fn get_shared(key: &str) -> HostResult<Option<(Vec<u8>, u32)>> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    let mut cas: u32 = 0;
    // SAFETY: pointer/length of a live &str; out-pointers to locals.
    match unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) } {
        OK => Ok(Some((adopt(data, size).unwrap_or_default(), cas))),
        NOT_FOUND => Ok(None),
        s => Err(HostError(s)),
    }
}

pub fn set_shared(key: &str, value: &[u8], cas: u32) -> HostResult<()> {
    // SAFETY: pointers/lengths of live slices.
    check(unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) })
}

pub fn send_local_response(status: u32, headers: &[(&str, &str)], body: &[u8]) -> HostResult<()> {
    let h = serialize_map(headers);
    // SAFETY: pointers/lengths of live buffers; details left empty.
    check(unsafe {
        proxy_send_local_response(status, null(), 0, body.as_ptr(), body.len(), h.as_ptr(), h.len(), -1)
    })
}

pub fn resume_request() -> HostResult<()> {
    // SAFETY: plain value call.
    check(unsafe { proxy_continue_stream(STREAM_REQUEST) })
}

pub fn resume_response() -> HostResult<()> {
    // SAFETY: plain value call.
    check(unsafe { proxy_continue_stream(STREAM_RESPONSE) })
}

pub fn define_metric(kind: u32, name: &str) -> HostResult<u32> {
    let mut id: u32 = 0;
    // SAFETY: pointer/length of a live &str; out-pointer to a local.
    check(unsafe { proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

pub fn increment_metric(id: u32, by: i64) {
    // SAFETY: plain value call. Metrics are best effort: a failure must not change a decision.
    let _ = unsafe { proxy_increment_metric(id, by) };
}

pub fn record_metric(id: u32, value: u64) {
    // SAFETY: plain value call; best effort as above.
    let _ = unsafe { proxy_record_metric(id, value) };
}

/// proxy-wasm map encoding: count, (key_len, value_len) pairs, then NUL-terminated keys/values.
fn serialize_map(map: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + map.iter().map(|(k, v)| k.len() + v.len() + 10).sum::<usize>());
    out.extend_from_slice(&(map.len() as u32).to_le_bytes());
    for (k, v) in map {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in map {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// Inverse of `serialize_map`, tolerant of truncation (returns what it could read).
fn deserialize_map(b: &[u8]) -> Vec<(String, String)> {
    let read_u32 = |at: usize| -> Option<usize> {
        b.get(at..at + 4).and_then(|s| <[u8; 4]>::try_from(s).ok()).map(|a| u32::from_le_bytes(a) as usize)
    };
    let Some(n) = read_u32(0) else { return Vec::new() };
    let mut out = Vec::with_capacity(n.min(256));
    let mut p = 4usize.saturating_add(n.saturating_mul(8));
    for i in 0..n {
        let (Some(ks), Some(vs)) = (read_u32(4 + i * 8), read_u32(8 + i * 8)) else { break };
        let (Some(k), Some(v)) = (b.get(p..p + ks), b.get(p + ks + 1..p + ks + 1 + vs)) else { break };
        out.push((String::from_utf8_lossy(k).into_owned(), String::from_utf8_lossy(v).into_owned()));
        p += ks + vs + 2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_round_trip_and_truncation() {
        let m = serialize_map(&[(":status", "200"), ("x", "")]);
        assert_eq!(deserialize_map(&m), vec![(":status".into(), "200".into()), ("x".into(), String::new())]);
        assert!(deserialize_map(&m[..m.len() - 3]).len() < 2);
        assert!(deserialize_map(&[0xff, 0xff, 0xff, 0xff]).is_empty());
    }
}
