//! Server-sent-events framing: splitting a byte stream into whole events.
//!
//! Envoy delivers an SSE response in arbitrary chunks; an event may be split across chunks and a
//! chunk may hold several events. The filter must see each event whole (to filter a list or scan
//! a tool result) without holding the stream: [`SseSplitter::push`] returns every event completed
//! by the chunk and keeps only the unfinished tail.

/// Events larger than this are not buffered further; the caller fails closed.
pub const MAX_EVENT_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The event exactly as received, including its terminating blank line.
    pub raw: Vec<u8>,
}

impl Event {
    /// The `data:` field: the values of all data lines joined by `\n` (per the SSE spec).
    pub fn data(&self) -> Option<String> {
        let text = std::str::from_utf8(&self.raw).ok()?;
        let mut out: Option<String> = None;
        for line in lines(text) {
            if let Some(v) = field_value(line, "data") {
                match &mut out {
                    Some(s) => {
                        s.push('\n');
                        s.push_str(v);
                    }
                    None => out = Some(v.to_string()),
                }
            }
        }
        out
    }

    /// The same event with its data replaced; other fields (id, event, retry) are kept.
    pub fn with_data(&self, data: &str) -> Vec<u8> {
        let text = String::from_utf8_lossy(&self.raw);
        let mut out = String::with_capacity(self.raw.len() + data.len());
        let mut wrote = false;
        for line in lines(&text) {
            if field_value(line, "data").is_some() {
                if !wrote {
                    for d in data.split(['\r', '\n']) {
                        out.push_str("data: ");
                        out.push_str(d);
                        out.push('\n');
                    }
                    wrote = true;
                }
            } else if !line.is_empty() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push('\n');
        out.into_bytes()
    }
}

/// SSE lines end with CRLF, LF or a lone CR (all three, as clients parse them).
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match rest.find(['\r', '\n']) {
            Some(i) => {
                let line = &rest[..i];
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
                Some(line)
            }
            None => {
                let line = rest;
                rest = "";
                Some(line)
            }
        }
    })
}

fn field_value<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(name)?;
    if rest.is_empty() {
        return Some("");
    }
    let v = rest.strip_prefix(':')?;
    Some(v.strip_prefix(' ').unwrap_or(v))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oversized;

#[derive(Debug, Default)]
pub struct SseSplitter {
    buf: Vec<u8>,
}

impl SseSplitter {
    /// Appends a chunk and returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Event>, Oversized> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        let mut start = 0;
        while let Some(end) = find_event_end(&self.buf[start..]) {
            events.push(Event { raw: self.buf[start..start + end].to_vec() });
            start += end;
        }
        self.buf.drain(..start);
        if self.buf.len() > MAX_EVENT_BYTES {
            return Err(Oversized);
        }
        Ok(events)
    }
}

impl SseSplitter {
    /// The unfinished tail. The filter drops it at the end of a stream (clients discard an
    /// unterminated event too); the `sse_split` fuzz target checks that events + tail always
    /// equal the input, however it was chunked.
    pub fn take_rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }
}

/// Length of the first complete event (through its blank line), if any.
fn find_event_end(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < b.len() {
        // An event ends at a line terminator that immediately follows another one.
        let first = match (b[i], b.get(i + 1)) {
            (b'\r', Some(b'\n')) => i + 2,
            (b'\r', None) => return None, // might be the start of \r\n
            (b'\r', _) | (b'\n', _) => i + 1,
            _ => {
                i += 1;
                continue;
            }
        };
        match (b.get(first), b.get(first + 1)) {
            (Some(b'\n'), _) => return Some(first + 1),
            (Some(b'\r'), Some(b'\n')) => return Some(first + 2),
            (Some(b'\r'), Some(_)) => return Some(first + 1),
            (Some(b'\r'), None) | (None, _) => return None,
            _ => i = first,
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn splits_events_across_chunks() {
        let mut s = SseSplitter::default();
        assert!(s.push(b"event: message\ndata: {\"a\"").unwrap().is_empty());
        let ev = s.push(b":1}\n\nid: 2\ndata: x\n\ndata: par").unwrap();
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].data().as_deref(), Some("{\"a\":1}"));
        assert_eq!(ev[1].data().as_deref(), Some("x"));
        assert_eq!(s.take_rest(), b"data: par".to_vec());
    }

    #[test]
    fn crlf_and_multi_line_data() {
        let mut s = SseSplitter::default();
        let ev = s.push(b"data: a\r\ndata: b\r\n\r\n").unwrap();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].data().as_deref(), Some("a\nb"));
        // a lone \r at a chunk boundary must wait for the next byte
        assert!(s.push(b"data: c\r\n\r").unwrap().is_empty());
        assert_eq!(s.push(b"\n").unwrap().len(), 1);
    }

    #[test]
    fn lone_cr_ends_lines_like_clients_do() {
        // A client joins these two data lines with \n into valid JSON: so must the filter.
        let e = Event { raw: b"data: {\"a\":\rdata: 1}\n\n".to_vec() };
        assert_eq!(e.data().as_deref(), Some("{\"a\":\n1}"));
        let out = String::from_utf8(e.with_data("x\ry")).unwrap();
        assert_eq!(out, "data: x\ndata: y\n\n");
    }

    #[test]
    fn rewrite_keeps_other_fields() {
        let e = Event { raw: b"id: 7\nevent: message\ndata: old\n\n".to_vec() };
        let out = String::from_utf8(e.with_data("new")).unwrap();
        assert_eq!(out, "id: 7\nevent: message\ndata: new\n\n");
    }

    #[test]
    fn event_without_data_and_oversize() {
        let e = Event { raw: b": comment\n\n".to_vec() };
        assert_eq!(e.data(), None);
        let mut s = SseSplitter::default();
        assert_eq!(s.push(&vec![b'x'; MAX_EVENT_BYTES + 1]), Err(Oversized));
    }

    #[test]
    fn byte_by_byte_equals_whole() {
        let stream = b"id: 1\ndata: {\"x\":1}\n\n: ping\n\nevent: message\r\ndata: y\r\n\r\n";
        let mut whole = SseSplitter::default();
        let a = whole.push(stream).unwrap();
        let mut bytes = SseSplitter::default();
        let mut b = Vec::new();
        for c in stream.chunks(1) {
            b.extend(bytes.push(c).unwrap());
        }
        assert_eq!(a, b);
        assert_eq!(a.len(), 3);
    }
}
