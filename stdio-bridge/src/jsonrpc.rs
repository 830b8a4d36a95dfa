//! Minimal JSON-RPC inspection. Messages are never re-serialised: we only borrow the few
//! fields needed for routing (id, method, progress token, name) from the original bytes.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

#[derive(Deserialize)]
struct PeekMeta<'a> {
    #[serde(borrow, rename = "progressToken", default)]
    progress_token: Option<&'a RawValue>,
    #[serde(borrow, rename = "io.modelcontextprotocol/protocolVersion", default)]
    protocol_version: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct PeekParams<'a> {
    #[serde(borrow, rename = "_meta", default)]
    meta: Option<PeekMeta<'a>>,
    #[serde(borrow, rename = "progressToken", default)]
    progress_token: Option<&'a RawValue>,
    #[serde(borrow, default)]
    name: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    uri: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, rename = "protocolVersion", default)]
    protocol_version: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct PeekResult<'a> {
    #[serde(borrow, rename = "protocolVersion", default)]
    protocol_version: Option<std::borrow::Cow<'a, str>>,
}

#[derive(Deserialize)]
struct PeekError {
    #[serde(default)]
    code: Option<i64>,
}

#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
    Response,
}

/// What the bridge needs to know about one message.
#[derive(Debug, Clone)]
pub struct Info {
    pub kind: Kind,
    /// The id exactly as written (JSON text), and its byte range within the message.
    pub id: Option<(String, std::ops::Range<usize>)>,
    pub method: Option<String>,
    /// progressToken of a request (`params._meta.progressToken`) or of a progress notification
    /// (`params.progressToken`), as JSON text.
    pub progress_token: Option<String>,
    pub name: Option<String>,
    pub uri: Option<String>,
    /// `params.protocolVersion` (initialize), `result.protocolVersion` (initialize result) or
    /// `params._meta["io.modelcontextprotocol/protocolVersion"]`.
    pub protocol_version: Option<String>,
    pub meta_protocol_version: Option<String>,
    /// `error.code` of an error response.
    pub error_code: Option<i64>,
}

fn offset_in(outer: &[u8], inner: &str) -> Option<std::ops::Range<usize>> {
    let start = (inner.as_ptr() as usize).checked_sub(outer.as_ptr() as usize)?;
    let end = start.checked_add(inner.len())?;
    if end <= outer.len() {
        Some(start..end)
    } else {
        None
    }
}

/// Inspect one JSON-RPC message (not a batch). Returns an error text for invalid messages.
pub fn inspect(msg: &[u8]) -> Result<Info, String> {
    // JSON text is UTF-8. serde_json only checks the strings it decodes, so invalid bytes in a
    // field the bridge skips would otherwise be forwarded to the other side.
    let text = std::str::from_utf8(msg).map_err(|_| "message is not valid UTF-8")?;
    // serde reads a struct from a JSON array too (fields by position): `[1,"tools/call"]` would
    // pass for a request while the child sees an array.
    if !text.trim_start_matches([' ', '\t', '\n', '\r']).starts_with('{') {
        return Err("a JSON-RPC message must be a JSON object".into());
    }
    let peek: Peek = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let id = match peek.id {
        Some(raw) if raw.get() != "null" => {
            let range = offset_in(msg, raw.get()).ok_or("id outside message")?;
            Some((raw.get().to_string(), range))
        }
        _ => None,
    };
    let kind = if peek.method.is_some() {
        if id.is_some() {
            Kind::Request
        } else {
            Kind::Notification
        }
    } else if peek.result.is_some() || peek.error.is_some() {
        Kind::Response
    } else {
        return Err("neither a request, a notification nor a response".into());
    };
    let mut info = Info {
        kind,
        id,
        method: peek.method.map(|m| m.into_owned()),
        progress_token: None,
        name: None,
        uri: None,
        protocol_version: None,
        meta_protocol_version: None,
        error_code: None,
    };
    if let Some(raw) = peek.params {
        if let Ok(p) = serde_json::from_str::<PeekParams>(raw.get()) {
            info.name = p.name.map(|s| s.into_owned());
            info.uri = p.uri.map(|s| s.into_owned());
            info.protocol_version = p.protocol_version.map(|s| s.into_owned());
            let mut tok = p.progress_token.map(|t| t.get().to_string());
            if let Some(meta) = p.meta {
                if tok.is_none() {
                    tok = meta.progress_token.map(|t| t.get().to_string());
                }
                info.meta_protocol_version = meta.protocol_version.map(|s| s.into_owned());
            }
            info.progress_token = tok;
        }
    }
    if let Some(raw) = peek.error {
        if let Ok(e) = serde_json::from_str::<PeekError>(raw.get()) {
            info.error_code = e.code;
        }
    }
    if let Some(raw) = peek.result {
        if let Ok(r) = serde_json::from_str::<PeekResult>(raw.get()) {
            info.protocol_version = r.protocol_version.map(|s| s.into_owned());
        }
    }
    Ok(info)
}

/// If `body` is a JSON array, return its elements (borrowed byte ranges).
pub fn split_batch(body: &Bytes) -> Result<Option<Vec<Bytes>>, String> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'[') {
        return Ok(None);
    }
    let items: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let range = offset_in(body, item.get()).ok_or("element outside batch")?;
        out.push(body.slice(range));
    }
    Ok(Some(out))
}

/// Replace the byte range `range` of `msg` by `with`.
pub fn splice(msg: &[u8], range: std::ops::Range<usize>, with: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(msg.len() + with.len());
    out.extend_from_slice(&msg[..range.start]);
    out.extend_from_slice(with);
    out.extend_from_slice(&msg[range.end..]);
    Bytes::from(out)
}

/// A JSON-RPC error response. `id` is JSON text ("null" when unknown).
pub fn error_response(id: &str, code: i64, message: &str) -> Bytes {
    let msg = serde_json::to_string(message).unwrap_or_else(|_| "\"error\"".into());
    Bytes::from(format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"error\":{{\"code\":{code},\"message\":{msg}}}}}"
    ))
}

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INTERNAL_ERROR: i64 = -32603;
/// Server overloaded / unavailable (bridge-specific, in the implementation-defined range).
pub const SERVER_BUSY: i64 = -32000;
pub const REQUEST_TIMEOUT: i64 = -32001;
pub const SESSION_NOT_FOUND: i64 = -32001;
pub const CHILD_EXITED: i64 = -32002;
pub const HEADER_MISMATCH: i64 = -32020;
pub const UNSUPPORTED_VERSION: i64 = -32022;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspects_request() {
        let m = br#"{"jsonrpc":"2.0","id": "a\"b","method":"tools/call","params":{"name":"x","_meta":{"progressToken":7}}}"#;
        let i = inspect(m).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(i.kind, Kind::Request);
        let (id, r) = i.id.unwrap_or_default();
        assert_eq!(id, r#""a\"b""#);
        assert_eq!(&m[r], id.as_bytes());
        assert_eq!(i.progress_token.as_deref(), Some("7"));
        assert_eq!(i.name.as_deref(), Some("x"));
    }

    #[test]
    fn rejects_invalid_utf8_in_skipped_fields() {
        // Found by fuzz target bridge_http.
        assert!(inspect(b"{\"id\":1,\"method\":\"m\",\"x\":\"\x94\"}").is_err());
        assert!(inspect(b"{\"id\":1,\"method\":\"m\",\"x\":\"\xc3\xa9\"}").is_ok());
    }

    #[test]
    fn rejects_arrays_read_by_position() {
        assert!(inspect(br#"[1,"tools/call"]"#).is_err());
        assert!(inspect(b" \n{\"id\":1,\"method\":\"m\"}").is_ok());
    }

    #[test]
    fn batch_split() {
        let b = Bytes::from_static(b" [ {\"a\":1} , {\"b\":[2]} ]");
        let v = split_batch(&b).unwrap_or_default().unwrap_or_default();
        assert_eq!(v.len(), 2);
        assert_eq!(&v[1][..], b"{\"b\":[2]}");
    }
}
