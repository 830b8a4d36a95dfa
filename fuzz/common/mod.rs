//! Helpers shared by the fuzz targets: a duplicate-preserving JSON tree (an oracle independent of
//! the gateway's strict parser), a protobuf `Struct` encoder, and a tiny deterministic PRNG.
#![allow(dead_code)]

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// A JSON document as written: objects keep every entry in order, duplicates included.
#[derive(Debug, Clone)]
pub enum Raw {
    Scalar(Value),
    Array(Vec<Raw>),
    Object(Vec<(String, Raw)>),
}

impl Raw {
    /// Parses with serde_json (same recursion limit as the gateway) without dropping duplicates.
    pub fn parse(bytes: &[u8]) -> Option<Raw> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let r = Raw::deserialize(&mut de).ok()?;
        de.end().ok()?;
        Some(r)
    }

    pub fn has_duplicate_keys(&self) -> bool {
        match self {
            Raw::Scalar(_) => false,
            Raw::Array(items) => items.iter().any(Raw::has_duplicate_keys),
            Raw::Object(entries) => {
                let mut seen = std::collections::HashSet::new();
                entries.iter().any(|(k, v)| !seen.insert(k.as_str()) || v.has_duplicate_keys())
            }
        }
    }

    /// The last-wins view (what a lenient parser would hand a backend).
    pub fn to_value(&self) -> Value {
        match self {
            Raw::Scalar(v) => v.clone(),
            Raw::Array(items) => Value::Array(items.iter().map(Raw::to_value).collect()),
            Raw::Object(entries) => {
                let mut m = Map::new();
                for (k, v) in entries {
                    m.insert(k.clone(), v.to_value());
                }
                Value::Object(m)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Scalar(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Scalar(Value::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::Scalar(Value::from(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
        Ok(Raw::Scalar(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::Scalar(Value::String(v.to_owned())))
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Scalar(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<Raw>()? {
            out.push(v);
        }
        Ok(Raw::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut out = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value::<Raw>()?;
            out.push((k, v));
        }
        Ok(Raw::Object(out))
    }
}

// ---- protobuf google.protobuf.Struct encoder (the inverse of pbstruct::decode_struct) --------

fn varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn len_field(out: &mut Vec<u8>, number: u64, payload: &[u8]) {
    varint(out, (number << 3) | 2);
    varint(out, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// Encodes a JSON object as a binary `Struct`; `None` when `v` is not an object.
pub fn encode_struct(v: &Value) -> Option<Vec<u8>> {
    let Value::Object(m) = v else { return None };
    let mut out = Vec::new();
    for (k, v) in m {
        let mut entry = Vec::new();
        len_field(&mut entry, 1, k.as_bytes());
        len_field(&mut entry, 2, &encode_value(v));
        len_field(&mut out, 1, &entry);
    }
    Some(out)
}

fn encode_value(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    match v {
        Value::Null => {
            varint(&mut out, 1 << 3);
            varint(&mut out, 0);
        }
        Value::Bool(b) => {
            varint(&mut out, 4 << 3);
            varint(&mut out, u64::from(*b));
        }
        Value::Number(n) => {
            varint(&mut out, (2 << 3) | 1);
            out.extend_from_slice(&n.as_f64().unwrap_or(0.0).to_le_bytes());
        }
        Value::String(s) => len_field(&mut out, 3, s.as_bytes()),
        Value::Array(items) => {
            let mut list = Vec::new();
            for i in items {
                len_field(&mut list, 1, &encode_value(i));
            }
            len_field(&mut out, 6, &list);
        }
        Value::Object(_) => len_field(&mut out, 5, &encode_struct(v).unwrap_or_default()),
    }
    out
}

/// Whether every number in `v` survives a round trip through an f64 unchanged.
pub fn numbers_exact_in_f64(v: &Value) -> bool {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.unsigned_abs() < (1 << 53)
            } else if let Some(u) = n.as_u64() {
                u < (1 << 53)
            } else {
                // floats: integral ones come back as integers, which is a different Value
                n.as_f64().is_some_and(|f| f.fract() != 0.0)
            }
        }
        Value::Array(items) => items.iter().all(numbers_exact_in_f64),
        Value::Object(m) => m.values().all(numbers_exact_in_f64),
        _ => true,
    }
}

/// SplitMix64: a deterministic generator seeded from the fuzz input.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// Splits the first 8 bytes off as a seed (zero-padded when the input is shorter).
pub fn seed_and_rest(data: &[u8]) -> (u64, &[u8]) {
    let n = data.len().min(8);
    let mut seed = [0u8; 8];
    seed[..n].copy_from_slice(&data[..n]);
    (u64::from_le_bytes(seed), &data[n..])
}
