//! Decoding of a binary `google.protobuf.Struct` into JSON.
//!
//! Measured on Envoy 1.40: a plugin `configuration` of type `google.protobuf.Struct` (YAML
//! written inline in envoy.yaml) reaches the VM as the *serialised protobuf*, not as JSON; a
//! `google.protobuf.StringValue` arrives as its raw string. The filter accepts both: JSON text
//! is recognised by its first byte, anything else is decoded here.
//!
//! Wire format (descriptor.proto / struct.proto):
//! Struct { map<string, Value> fields = 1 } — map entries are messages { key = 1, value = 2 };
//! Value { null = 1 (varint), number = 2 (fixed64 double), string = 3, bool = 4 (varint),
//! struct = 5, list = 6 }; ListValue { repeated Value values = 1 }.

use serde_json::{Map, Number, Value};

const MAX_DEPTH: usize = 64;

pub fn decode_struct(bytes: &[u8]) -> Result<Value, String> {
    decode_struct_at(bytes, 0)
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

enum Field<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32,
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8]) -> Self {
        Self { b, pos: 0 }
    }

    fn done(&self) -> bool {
        self.pos >= self.b.len()
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self.b.get(self.pos).ok_or("truncated varint")?;
            self.pos += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).ok_or("length overflow")?;
        let s = self.b.get(self.pos..end).ok_or("truncated field")?;
        self.pos = end;
        Ok(s)
    }

    fn field(&mut self) -> Result<(u64, Field<'a>), String> {
        let key = self.varint()?;
        let number = key >> 3;
        let f = match key & 7 {
            0 => Field::Varint(self.varint()?),
            1 => {
                let s = self.take(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(s);
                Field::Fixed64(u64::from_le_bytes(a))
            }
            2 => {
                let n = usize::try_from(self.varint()?).map_err(|_| "length overflow")?;
                Field::Bytes(self.take(n)?)
            }
            5 => {
                self.take(4)?;
                Field::Fixed32
            }
            t => return Err(format!("unsupported wire type {t}")),
        };
        Ok((number, f))
    }
}

fn decode_struct_at(bytes: &[u8], depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err("configuration nested too deeply".into());
    }
    let mut out = Map::new();
    let mut r = Reader::new(bytes);
    while !r.done() {
        if let (1, Field::Bytes(entry)) = r.field()? {
            let (k, v) = decode_entry(entry, depth)?;
            out.insert(k, v);
        }
    }
    Ok(Value::Object(out))
}

fn decode_entry(bytes: &[u8], depth: usize) -> Result<(String, Value), String> {
    let mut key = String::new();
    let mut value = Value::Null;
    let mut r = Reader::new(bytes);
    while !r.done() {
        match r.field()? {
            (1, Field::Bytes(k)) => key = String::from_utf8(k.to_vec()).map_err(|_| "key is not UTF-8")?,
            (2, Field::Bytes(v)) => value = decode_value(v, depth + 1)?,
            _ => {}
        }
    }
    Ok((key, value))
}

fn decode_value(bytes: &[u8], depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err("configuration nested too deeply".into());
    }
    let mut r = Reader::new(bytes);
    let mut value = Value::Null;
    while !r.done() {
        value = match r.field()? {
            (1, _) => Value::Null,
            (2, Field::Fixed64(bits)) => {
                let f = f64::from_bits(bits);
                // Struct numbers are doubles; integral ones become JSON integers so that
                // `burst_size: 20` deserialises into an integer field.
                if f.fract() == 0.0 && f.abs() < 9.0e15 {
                    Value::from(f as i64)
                } else {
                    Number::from_f64(f).map_or(Value::Null, Value::Number)
                }
            }
            (3, Field::Bytes(s)) => {
                Value::String(String::from_utf8(s.to_vec()).map_err(|_| "string is not UTF-8")?)
            }
            (4, Field::Varint(b)) => Value::Bool(b != 0),
            (5, Field::Bytes(s)) => decode_struct_at(s, depth + 1)?,
            (6, Field::Bytes(l)) => decode_list(l, depth + 1)?,
            _ => value,
        };
    }
    Ok(value)
}

fn decode_list(bytes: &[u8], depth: usize) -> Result<Value, String> {
    let mut items = Vec::new();
    let mut r = Reader::new(bytes);
    while !r.done() {
        if let (1, Field::Bytes(v)) = r.field()? {
            items.push(decode_value(v, depth + 1)?);
        }
    }
    Ok(Value::Array(items))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // Hand-encoded test vectors, built with a tiny encoder so the test does not depend on
    // a protobuf library.
    fn len_field(n: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![(n << 3) | 2];
        let mut len = payload.len();
        loop {
            let byte = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                v.push(byte);
                break;
            }
            v.push(byte | 0x80);
        }
        v.extend_from_slice(payload);
        v
    }
    fn entry(k: &str, value: Vec<u8>) -> Vec<u8> {
        let mut e = len_field(1, k.as_bytes());
        e.extend(len_field(2, &value));
        len_field(1, &e)
    }
    fn num(f: f64) -> Vec<u8> {
        let mut v = vec![(2 << 3) | 1];
        v.extend_from_slice(&f.to_le_bytes());
        v
    }

    #[test]
    fn decodes_nested_struct_list_and_scalars() {
        let list = len_field(6, &[len_field(1, &len_field(3, b"a")), len_field(1, &[(4 << 3), 1])].concat());
        let inner = len_field(5, &entry("burst_size", num(20.0)));
        let bytes = [entry("names", list), entry("rl", inner), entry("rate", num(0.5))].concat();
        let v = decode_struct(&bytes).unwrap();
        assert_eq!(v, serde_json::json!({"names": ["a", true], "rl": {"burst_size": 20}, "rate": 0.5}));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(
            decode_struct(&[0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).is_err()
        );
        assert!(decode_struct(&[0x0a, 0x05, 0x01]).is_err());
        assert!(decode_struct(&[0x0f]).is_err());
    }
}
