//! JSON-RPC classification of MCP messages.
//!
//! Parsing is strict where a lenient parser would open a bypass: duplicate object keys are an
//! error (a last-wins parser in front of a first-wins backend would authorise one tool and run
//! another), nesting is bounded by serde_json's recursion limit, and anything that is not a
//! well-formed JSON-RPC 2.0 request, notification, response or (2025-03-26) batch is `Invalid`.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Largest batch the filter will decide element by element.
pub const MAX_BATCH: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
    Response,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Request => "request",
            Kind::Notification => "notification",
            Kind::Response => "response",
        }
    }
}

/// What a message acts on: the tool, resource or prompt named in its params.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    None,
    Tool(String),
    Resource(String),
    Prompt(String),
}

impl Target {
    pub fn name(&self) -> Option<&str> {
        match self {
            Target::None => None,
            Target::Tool(s) | Target::Resource(s) | Target::Prompt(s) => Some(s),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub kind: Kind,
    /// The JSON-RPC id as sent (number or string), for error replies.
    pub id: Option<Value>,
    pub method: Option<String>,
    pub params: Option<Value>,
    pub target: Target,
}

impl Message {
    pub fn method(&self) -> &str {
        self.method.as_deref().unwrap_or("")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    pub batch: bool,
    pub messages: Vec<Message>,
}

/// Why a body is not acceptable JSON-RPC; maps to a JSON-RPC error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not JSON, or duplicate keys (-32700).
    Parse(String),
    /// JSON, but not a JSON-RPC 2.0 message (-32600). Carries the id when one was readable.
    InvalidRequest(String, Option<Value>),
}

impl ParseError {
    pub fn code(&self) -> i64 {
        match self {
            ParseError::Parse(_) => -32700,
            ParseError::InvalidRequest(..) => -32600,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            ParseError::Parse(m) | ParseError::InvalidRequest(m, _) => m,
        }
    }

    /// The id to answer with; a `null` id is no id (the reply says `"id": null` either way).
    pub fn id(&self) -> Option<&Value> {
        match self {
            ParseError::Parse(_) => None,
            ParseError::InvalidRequest(_, id) => id.as_ref().filter(|v| !v.is_null()),
        }
    }
}

/// Parses a JSON document, rejecting duplicate object keys at any depth.
pub fn parse_strict(body: &[u8]) -> Result<Value, ParseError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let StrictValue(v) =
        StrictValue::deserialize(&mut de).map_err(|e| ParseError::Parse(parse_message(&e)))?;
    de.end().map_err(|e| ParseError::Parse(parse_message(&e)))?;
    Ok(v)
}

fn parse_message(e: &serde_json::Error) -> String {
    // serde_json messages carry line/column but never echo input text, so they are safe to return.
    format!("parse error: {e}")
}

/// Parses and classifies an MCP POST body.
pub fn classify(body: &[u8]) -> Result<Classified, ParseError> {
    let v = parse_strict(body)?;
    classify_value(v)
}

pub fn classify_value(v: Value) -> Result<Classified, ParseError> {
    match v {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(ParseError::InvalidRequest("empty batch".into(), None));
            }
            if items.len() > MAX_BATCH {
                return Err(ParseError::InvalidRequest(
                    format!("batch larger than {MAX_BATCH} messages"),
                    None,
                ));
            }
            let messages = items.into_iter().map(classify_one).collect::<Result<Vec<_>, _>>()?;
            Ok(Classified { batch: true, messages })
        }
        other => Ok(Classified { batch: false, messages: vec![classify_one(other)?] }),
    }
}

fn classify_one(v: Value) -> Result<Message, ParseError> {
    let Value::Object(mut obj) = v else {
        return Err(ParseError::InvalidRequest("message is not a JSON object".into(), None));
    };
    let id = obj.remove("id");
    if let Some(bad) = id.as_ref().filter(|i| !matches!(i, Value::String(_) | Value::Number(_) | Value::Null))
    {
        let _ = bad;
        return Err(ParseError::InvalidRequest("id must be a string or a number".into(), None));
    }
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(ParseError::InvalidRequest("jsonrpc must be \"2.0\"".into(), id));
    }
    match obj.remove("method") {
        Some(Value::String(method)) => {
            let params = obj.remove("params");
            if let Some(p) = &params {
                if !p.is_object() && !p.is_array() {
                    return Err(ParseError::InvalidRequest(
                        "params must be an object or an array".into(),
                        id,
                    ));
                }
            }
            let target = target_of(&method, params.as_ref());
            let kind = if id.is_some() { Kind::Request } else { Kind::Notification };
            Ok(Message { kind, id, method: Some(method), params, target })
        }
        Some(_) => Err(ParseError::InvalidRequest("method must be a string".into(), id)),
        None => {
            if id.is_none() || !(obj.contains_key("result") ^ obj.contains_key("error")) {
                return Err(ParseError::InvalidRequest("not a request, notification or response".into(), id));
            }
            Ok(Message { kind: Kind::Response, id, method: None, params: None, target: Target::None })
        }
    }
}

/// The tool, resource or prompt a method acts on. A missing or non-string name yields
/// `Target::None`, which policy treats as nothing granted for item-scoped methods.
pub fn target_of(method: &str, params: Option<&Value>) -> Target {
    let field = |k: &str| params.and_then(|p| p.get(k)).and_then(Value::as_str).map(str::to_string);
    match method {
        "tools/call" => field("name").map_or(Target::None, Target::Tool),
        "prompts/get" => field("name").map_or(Target::None, Target::Prompt),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
            field("uri").map_or(Target::None, Target::Resource)
        }
        "completion/complete" => {
            let r = params.and_then(|p| p.get("ref"));
            let s = |k: &str| r.and_then(|r| r.get(k)).and_then(Value::as_str).map(str::to_string);
            match r.and_then(|r| r.get("type")).and_then(Value::as_str) {
                Some("ref/prompt") => s("name").map_or(Target::None, Target::Prompt),
                Some("ref/resource") => s("uri").map_or(Target::None, Target::Resource),
                _ => Target::None,
            }
        }
        _ => Target::None,
    }
}

/// Builds a JSON-RPC error object. `data` must never carry secrets or request text.
pub fn error_body(id: Option<&Value>, code: i64, message: &str, data: Option<Value>) -> String {
    let mut err = Map::new();
    err.insert("code".into(), Value::from(code));
    err.insert("message".into(), Value::from(message));
    if let Some(d) = data {
        err.insert("data".into(), d);
    }
    let mut obj = Map::new();
    obj.insert("jsonrpc".into(), Value::from("2.0"));
    obj.insert("id".into(), id.cloned().unwrap_or(Value::Null));
    obj.insert("error".into(), Value::Object(err));
    Value::Object(obj).to_string()
}

/// Splits an aggregated name `<backend><sep><name>` as Envoy's `mcp_router` builds it.
pub fn split_prefixed<'a>(name: &'a str, sep: &str) -> Option<(&'a str, &'a str)> {
    let (backend, rest) = name.split_once(sep)?;
    (!backend.is_empty() && !rest.is_empty()).then_some((backend, rest))
}

/// Splits an aggregated resource URI `<backend>+<scheme>://...` as `mcp_router` builds it.
pub fn split_prefixed_uri(uri: &str) -> Option<(&str, &str)> {
    let (backend, rest) = uri.split_once('+')?;
    let valid = !backend.is_empty() && rest.contains("://") && !backend.contains([':', '/']);
    valid.then_some((backend, rest))
}

/// A `serde_json::Value` built by a visitor that refuses duplicate keys.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let StrictValue(v) = map.next_value()?;
            if out.insert(key, v).is_some() {
                return Err(de::Error::custom("duplicate object key"));
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn one(body: &str) -> Message {
        let c = classify(body.as_bytes()).unwrap();
        assert!(!c.batch);
        c.messages.into_iter().next().unwrap()
    }

    #[test]
    fn tool_call_request() {
        let m = one(
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/a"}}}"#,
        );
        assert_eq!(m.kind, Kind::Request);
        assert_eq!(m.id, Some(Value::from(7)));
        assert_eq!(m.target, Target::Tool("read_file".into()));
    }

    #[test]
    fn notification_response_and_string_id() {
        assert_eq!(one(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).kind, Kind::Notification);
        let r = one(r#"{"jsonrpc":"2.0","id":"a","result":{}}"#);
        assert_eq!((r.kind, r.id), (Kind::Response, Some(Value::from("a"))));
    }

    #[test]
    fn resources_prompts_and_completion_targets() {
        let m = one(r#"{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"file:///x"}}"#);
        assert_eq!(m.target, Target::Resource("file:///x".into()));
        let m = one(r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p"}}"#);
        assert_eq!(m.target, Target::Prompt("p".into()));
        let m = one(
            r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p"}}}"#,
        );
        assert_eq!(m.target, Target::Prompt("p".into()));
    }

    #[test]
    fn duplicate_keys_rejected_at_any_depth() {
        let dup =
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"delete_file"}}"#;
        assert_eq!(classify(dup.as_bytes()).unwrap_err().code(), -32700);
        let top = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}"#;
        assert!(classify(top.as_bytes()).is_err());
    }

    #[test]
    fn batch_classified_element_wise() {
        let c = classify(br#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}},{"jsonrpc":"2.0","method":"notifications/x"}]"#).unwrap();
        assert!(c.batch);
        assert_eq!(c.messages.len(), 2);
        assert!(classify(b"[]").is_err());
    }

    #[test]
    fn invalid_messages() {
        for bad in [
            r#"{"id":1,"method":"x"}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":5}"#,
            r#"{"jsonrpc":"2.0","id":{},"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":"s"}"#,
            r#"42"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"x"} trailing"#,
            "{",
        ] {
            assert!(classify(bad.as_bytes()).is_err(), "{bad}");
        }
        let e = classify(br#"{"jsonrpc":"1.0","id":9,"method":"x"}"#).unwrap_err();
        assert_eq!(e.id(), Some(&Value::from(9)));
        // found by the jsonrpc_classify fuzz target
        assert_eq!(classify(br#"{"id" :null}"#).unwrap_err().id(), None);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        assert!(classify(deep.as_bytes()).is_err());
    }

    #[test]
    fn error_body_carries_id() {
        let b = error_body(Some(&Value::from(3)), -32001, "denied", None);
        let v: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(v["id"], 3);
        assert_eq!(v["error"]["code"], -32001);
    }

    #[test]
    fn prefix_splitting() {
        assert_eq!(split_prefixed("filesystem__read_file", "__"), Some(("filesystem", "read_file")));
        assert_eq!(split_prefixed("read_file", "__"), None);
        assert_eq!(split_prefixed("__x", "__"), None);
        assert_eq!(split_prefixed_uri("fs+file:///a"), Some(("fs", "file:///a")));
        assert_eq!(split_prefixed_uri("file:///a+b"), None);
    }
}
