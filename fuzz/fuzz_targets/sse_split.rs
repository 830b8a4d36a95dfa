//! An SSE byte stream cut into arbitrary chunks → `SseSplitter`.
//!
//! Checked: no panic; any chunking yields exactly the events of a single push, and the same
//! unfinished tail; no byte is lost or duplicated (events + tail == stream); every event ends
//! at its first blank line; `Event::data()` equals what a WHATWG-conformant client (the one
//! that acts on the stream after the gateway) reconstructs, so the gateway scans exactly what
//! the client will see; `with_data` round-trips.
#![no_main]

#[path = "../common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use mcp_gateway::sse::{Event, SseSplitter};

/// The `data` buffer of one event per the HTML Living Standard's event-stream interpretation
/// (lines end at CRLF, LF or a lone CR; data lines are joined with LF; `None` without data).
fn spec_data(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    let mut lines = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                lines.push(std::mem::take(&mut cur));
            }
            '\n' => lines.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    let mut data: Option<String> = None;
    for line in lines {
        let (name, value) = match line.split_once(':') {
            Some((n, v)) => (n, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_str(), ""),
        };
        if name == "data" {
            match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_owned()),
            }
        }
    }
    data
}

fuzz_target!(|input: &[u8]| {
    let (seed, stream) = common::seed_and_rest(input);
    let mut rng = common::Rng(seed);

    let mut whole = SseSplitter::default();
    let Ok(expected) = whole.push(stream) else { return };
    let expected_rest = whole.take_rest();

    let mut chunked = SseSplitter::default();
    let mut got = Vec::new();
    let mut pos = 0;
    while pos < stream.len() {
        let n = 1 + rng.below((stream.len() - pos) as u64) as usize;
        let n = if rng.below(4) == 0 { 1 } else { n };
        got.extend(chunked.push(&stream[pos..pos + n]).expect("oversized on a small stream"));
        pos += n;
    }
    if rng.below(2) == 0 {
        got.extend(chunked.push(b"").expect("empty push"));
    }
    assert_eq!(got, expected, "chunking changed the events");
    assert_eq!(chunked.take_rest(), expected_rest, "chunking changed the tail");

    let mut rebuilt: Vec<u8> = expected.iter().flat_map(|e| e.raw.clone()).collect();
    rebuilt.extend_from_slice(&expected_rest);
    assert_eq!(rebuilt, stream, "events + tail != stream");

    for ev in &expected {
        // The event contains no earlier complete event: re-splitting it yields itself. (A
        // trailing lone CR needs one more byte to be told apart from CRLF, hence the sentinel.)
        let mut s = SseSplitter::default();
        let mut framed = ev.raw.clone();
        framed.push(b'x');
        assert_eq!(s.push(&framed).expect("small"), vec![ev.clone()]);
        assert_eq!(s.take_rest(), b"x".to_vec());

        let data = ev.data();
        if std::str::from_utf8(&ev.raw).is_ok() {
            assert_eq!(data, spec_data(&ev.raw), "gateway and client disagree on the event data");
        }
        if let Some(d) = data {
            let rewritten = Event { raw: ev.with_data(&d) };
            assert_eq!(rewritten.data().as_deref(), Some(d.as_str()), "with_data does not round-trip");
            let mut s = SseSplitter::default();
            assert_eq!(s.push(&rewritten.raw).expect("small").len(), 1, "rewritten event is not one event");
        }
    }
});
