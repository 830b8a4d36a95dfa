//! Arbitrary bytes → `jsonrpc::classify`.
//!
//! Oracle: an independent reference classifier written from the JSON-RPC 2.0 / MCP rules over a
//! duplicate-preserving parse. Checked: no panic; duplicate keys (at any depth) are always a
//! parse error; Ok/Err agrees with the reference; every message's kind, id, method, params and
//! target agree with it; the error reply the gateway would send is itself valid JSON-RPC.
#![no_main]

#[path = "../common/mod.rs"]
mod common;

use common::Raw;
use libfuzzer_sys::fuzz_target;
use mcp_gateway::jsonrpc::{self, Kind, ParseError, Target, MAX_BATCH};
use serde_json::Value;

#[derive(Debug, PartialEq)]
struct RefMsg {
    kind: Kind,
    id: Option<Value>,
    method: Option<String>,
    params: Option<Value>,
    target: Target,
}

fn str_at<'a>(v: Option<&'a Value>, key: &str) -> Option<&'a str> {
    v.and_then(|v| v.as_object()).and_then(|o| o.get(key)).and_then(Value::as_str)
}

fn ref_target(method: &str, params: Option<&Value>) -> Target {
    let named =
        |k: &str, f: fn(String) -> Target| str_at(params, k).map_or(Target::None, |s| f(s.to_owned()));
    match method {
        "tools/call" => named("name", Target::Tool),
        "prompts/get" => named("name", Target::Prompt),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => named("uri", Target::Resource),
        "completion/complete" => {
            let r = params.and_then(|p| p.as_object()).and_then(|o| o.get("ref"));
            match str_at(r, "type") {
                Some("ref/prompt") => {
                    str_at(r, "name").map_or(Target::None, |s| Target::Prompt(s.to_owned()))
                }
                Some("ref/resource") => {
                    str_at(r, "uri").map_or(Target::None, |s| Target::Resource(s.to_owned()))
                }
                _ => Target::None,
            }
        }
        _ => Target::None,
    }
}

fn ref_one(v: &Value) -> Option<RefMsg> {
    let o = v.as_object()?;
    let id = o.get("id").cloned();
    if !matches!(id, None | Some(Value::String(_) | Value::Number(_) | Value::Null)) {
        return None;
    }
    if o.get("jsonrpc") != Some(&Value::String("2.0".into())) {
        return None;
    }
    match o.get("method") {
        Some(Value::String(m)) => {
            let params = o.get("params").cloned();
            if !matches!(params, None | Some(Value::Object(_) | Value::Array(_))) {
                return None;
            }
            let kind = if id.is_some() { Kind::Request } else { Kind::Notification };
            let target = ref_target(m, params.as_ref());
            Some(RefMsg { kind, id, method: Some(m.clone()), params, target })
        }
        Some(_) => None,
        None => {
            let (r, e) = (o.contains_key("result"), o.contains_key("error"));
            (id.is_some() && r != e).then_some(RefMsg {
                kind: Kind::Response,
                id,
                method: None,
                params: None,
                target: Target::None,
            })
        }
    }
}

fn ref_classify(v: &Value) -> Option<(bool, Vec<RefMsg>)> {
    match v {
        Value::Array(items) => {
            if items.is_empty() || items.len() > MAX_BATCH {
                return None;
            }
            Some((true, items.iter().map(ref_one).collect::<Option<Vec<_>>>()?))
        }
        other => Some((false, vec![ref_one(other)?])),
    }
}

fuzz_target!(|data: &[u8]| {
    let got = jsonrpc::classify(data);
    let raw = Raw::parse(data);

    // The error reply built from any rejection must itself be a well-formed JSON-RPC response.
    if let Err(e) = &got {
        let reply = jsonrpc::error_body(e.id(), e.code(), e.message(), None);
        let c = jsonrpc::classify(reply.as_bytes()).expect("error reply is not valid JSON-RPC");
        assert_eq!(c.messages.len(), 1);
        assert_eq!(c.messages[0].kind, Kind::Response);
        assert!(matches!(e.id(), None | Some(Value::String(_) | Value::Number(_))), "error id {:?}", e.id());
    }

    let Some(raw) = raw else {
        assert!(matches!(got, Err(ParseError::Parse(_))), "accepted bytes serde_json rejects: {got:?}");
        return;
    };
    if raw.has_duplicate_keys() {
        assert!(matches!(got, Err(ParseError::Parse(_))), "duplicate keys accepted: {got:?}");
        return;
    }
    let value = raw.to_value();
    match (ref_classify(&value), got) {
        (None, Err(ParseError::InvalidRequest(..))) => {}
        (None, other) => panic!("reference rejects, gateway says {other:?}"),
        (Some(_), Err(e)) => panic!("reference accepts, gateway rejects: {e:?}"),
        (Some((batch, expected)), Ok(c)) => {
            assert_eq!(c.batch, batch);
            assert_eq!(c.messages.len(), expected.len());
            for (m, r) in c.messages.iter().zip(&expected) {
                let got = RefMsg {
                    kind: m.kind,
                    id: m.id.clone(),
                    method: m.method.clone(),
                    params: m.params.clone(),
                    target: m.target.clone(),
                };
                assert_eq!(&got, r);
                // Re-serialising the message and classifying it again gives the same verdict.
                let mut o = serde_json::Map::new();
                o.insert("jsonrpc".into(), "2.0".into());
                if let Some(id) = &m.id {
                    o.insert("id".into(), id.clone());
                }
                if let Some(method) = &m.method {
                    o.insert("method".into(), method.clone().into());
                    if let Some(p) = &m.params {
                        o.insert("params".into(), p.clone());
                    }
                } else {
                    o.insert("result".into(), Value::Null);
                }
                let again =
                    jsonrpc::classify(Value::Object(o).to_string().as_bytes()).expect("re-parse failed");
                assert_eq!(again.messages[0].target, m.target);
                assert_eq!(again.messages[0].kind, m.kind);
            }
        }
    }
});
