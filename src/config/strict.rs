//! JSON text to `serde_json::Value`, refusing an object that repeats a key.
//!
//! `serde_json::Value` keeps the last of two equal keys without a word; in a security
//! configuration that hides a mistake (a second `block_threshold` silently wins). The typed
//! structs are then deserialised from the `Value`, one code path for JSON text and for the
//! protobuf `Struct` (which cannot repeat a key): deserialising the structs straight from the
//! text as well doubled the configuration code in the wasm (about 200 KB).

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::ConfigError;

/// Parses `bytes`; a repeated key is an error naming its path (`security.injection.x`).
pub(super) fn parse(bytes: &[u8]) -> Result<Value, ConfigError> {
    let dup = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = Seed { path: String::new(), dup: &dup }.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    match (v, dup.into_inner()) {
        (_, Some(path)) => Err(ConfigError::new(path, "duplicate key")),
        (Ok(v), None) => Ok(v),
        (Err(e), None) => Err(ConfigError::new("", e.to_string())),
    }
}

struct Seed<'a> {
    path: String,
    /// Where the first repeated key was found.
    dup: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v).map(Value::Number).ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) =
            seq.next_element_seed(Seed { path: format!("{}[{}]", self.path, out.len()), dup: self.dup })?
        {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let path = if self.path.is_empty() { k.clone() } else { format!("{}.{k}", self.path) };
            if out.contains_key(&k) {
                *self.dup.borrow_mut() = Some(path);
                return Err(de::Error::custom("duplicate key"));
            }
            let v = map.next_value_seed(Seed { path, dup: self.dup })?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        let text = r#"{"a":[1,-2,3.5,"x",null,true,{"b":{}}],"c":"d"}"#;
        assert_eq!(parse(text.as_bytes()).unwrap(), serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn repeated_key_is_named_with_its_path() {
        let e = parse(br#"{"security":{"injection":{"block_threshold":0.5,"block_threshold":0.9}}}"#)
            .unwrap_err();
        assert_eq!(e.key, "security.injection.block_threshold");
        let e = parse(br#"{"backends":[{"name":"a"},{"name":"b","name":"c"}]}"#).unwrap_err();
        assert_eq!(e.key, "backends[1].name");
    }

    #[test]
    fn syntax_errors_and_trailing_text_are_refused() {
        assert!(parse(b"{\"a\":").unwrap_err().message.contains("EOF"));
        assert!(parse(b"{} x").is_err());
    }
}
