//! Argument constraints on permissions, and path / URI normalisation.
//!
//! A constraint names a top-level key of `params.arguments` and one test (`equals`, `one_of`,
//! `prefix`, `glob`). With `normalize: "path"` (the default) the argument is compared after
//! [`normalize_path`], and must pass for EVERY interpretation of it: the string as sent and its
//! percent-decoded forms (decoded repeatedly, at most [`MAX_DECODE_ROUNDS`] times; a value that
//! still changes after that fails). So `/data/sandbox/%2e%2e/etc` is checked as written (stays
//! inside) and decoded (`/data/etc`, outside) and is refused. With `normalize: "none"` the raw
//! string is compared byte-exactly. A missing argument, a non-string value, or `arguments` that
//! is not an object fails the constraint.

use serde_json::{Map, Value};

use super::glob::Glob;

/// Percent-decoding rounds tried before a value is considered undecidable.
pub(crate) const MAX_DECODE_ROUNDS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Normalize {
    Path,
    None,
}

#[derive(Debug, Clone)]
enum Test {
    Equals(Vec<u8>),
    OneOf(Vec<Vec<u8>>),
    Prefix(Vec<u8>),
    Glob(Glob),
}

/// One compiled argument constraint.
#[derive(Debug, Clone)]
pub(crate) struct Constraint {
    arg: String,
    normalize: Normalize,
    test: Test,
}

/// Parses `{ "<arg>": {prefix|equals|one_of|glob: .., normalize: "path"|"none"}, .. }`.
/// `key` is the config key of the object; errors name the offending sub-key.
pub(crate) fn parse_constraints(v: &Value, key: &str) -> Result<Vec<Constraint>, (String, String)> {
    let obj = v.as_object().ok_or_else(|| (key.to_string(), "must be an object".to_string()))?;
    if obj.is_empty() {
        return Err((key.to_string(), "must name at least one argument".to_string()));
    }
    let mut out = Vec::with_capacity(obj.len());
    for (arg, spec) in obj {
        let k = format!("{key}.{arg}");
        out.push(parse_one(arg, spec, &k)?);
    }
    Ok(out)
}

fn parse_one(arg: &str, spec: &Value, key: &str) -> Result<Constraint, (String, String)> {
    let err = |k: String, m: &str| (k, m.to_string());
    let obj: &Map<String, Value> =
        spec.as_object().ok_or_else(|| err(key.to_string(), "must be an object"))?;
    let mut normalize = Normalize::Path;
    let mut test: Option<(&str, &Value)> = None;
    for (name, val) in obj {
        let k = format!("{key}.{name}");
        match name.as_str() {
            "normalize" => {
                normalize = match val.as_str() {
                    Some("path") => Normalize::Path,
                    Some("none") => Normalize::None,
                    _ => return Err(err(k, "must be \"path\" or \"none\"")),
                }
            }
            "equals" | "one_of" | "prefix" | "glob" => {
                if test.is_some() {
                    return Err(err(k, "only one of equals, one_of, prefix, glob may be given"));
                }
                test = Some((name.as_str(), val));
            }
            _ => return Err(err(k, "unknown key (expected equals, one_of, prefix, glob, normalize)")),
        }
    }
    let (name, val) =
        test.ok_or_else(|| err(key.to_string(), "needs one of equals, one_of, prefix, glob"))?;
    let k = format!("{key}.{name}");
    let lit = |v: &Value, k: &str| -> Result<Vec<u8>, (String, String)> {
        let s = v.as_str().ok_or_else(|| err(k.to_string(), "must be a string"))?;
        match normalize {
            Normalize::None => Ok(s.as_bytes().to_vec()),
            Normalize::Path => normalize_path(s.as_bytes()).ok_or_else(|| {
                err(k.to_string(), "is not a valid path (empty, NUL/control byte or backslash)")
            }),
        }
    };
    let test = match name {
        "equals" => Test::Equals(lit(val, &k)?),
        "prefix" => {
            let p = lit(val, &k)?;
            if normalize == Normalize::Path && (p == b"." || p.starts_with(b"..")) {
                return Err(err(k, "a path prefix must not normalise to `.` or start with `..`"));
            }
            Test::Prefix(p)
        }
        "one_of" => {
            let arr = val.as_array().ok_or_else(|| err(k.clone(), "must be an array of strings"))?;
            if arr.is_empty() {
                return Err(err(k, "must not be empty"));
            }
            let mut opts = Vec::with_capacity(arr.len());
            for (i, v) in arr.iter().enumerate() {
                opts.push(lit(v, &format!("{k}[{i}]"))?);
            }
            Test::OneOf(opts)
        }
        _ => {
            let s = val.as_str().ok_or_else(|| err(k.clone(), "must be a string"))?;
            Test::Glob(Glob::new(s).map_err(|m| (k.clone(), m))?)
        }
    };
    Ok(Constraint { arg: arg.to_string(), normalize, test })
}

impl Constraint {
    /// True when `arguments.<arg>` is a string that passes the test.
    pub(crate) fn check(&self, arguments: Option<&Value>) -> bool {
        let Some(Value::String(v)) = arguments.and_then(|a| a.as_object()).and_then(|m| m.get(&self.arg))
        else {
            return false;
        };
        match self.normalize {
            Normalize::None => self.test_bytes(v.as_bytes()),
            Normalize::Path => {
                let mut current = v.as_bytes().to_vec();
                for _ in 0..=MAX_DECODE_ROUNDS {
                    match normalize_path(&current) {
                        Some(n) if self.test_bytes(&n) => {}
                        _ => return false,
                    }
                    let decoded = percent_decode(&current);
                    if decoded == current {
                        return true;
                    }
                    current = decoded;
                }
                false
            }
        }
    }

    fn test_bytes(&self, v: &[u8]) -> bool {
        match &self.test {
            Test::Equals(e) => e.as_slice() == v,
            Test::OneOf(opts) => opts.iter().any(|o| o.as_slice() == v),
            Test::Glob(g) => g.is_match_bytes(v),
            Test::Prefix(p) => match self.normalize {
                Normalize::None => v.starts_with(p),
                // Segment-aware: `/data/sandbox` matches itself and `/data/sandbox/...`, never
                // `/data/sandbox2`.
                Normalize::Path => {
                    v == p.as_slice()
                        || (v.starts_with(p) && (p.ends_with(b"/") || v.get(p.len()) == Some(&b'/')))
                }
            },
        }
    }
}

/// Lexical path normalisation. Returns `None` (the constraint fails) for an empty value or one
/// containing a NUL / ASCII control byte (0x00-0x1f, 0x7f) or a backslash. Otherwise: runs of
/// `/` collapse to one, `.` segments are dropped, `..` removes the previous segment (at the root
/// of an absolute path it is dropped; leading `..` of a relative path are kept), a trailing `/`
/// is dropped (except for `/` itself); an empty relative result is `.`. Symlinks are not resolved.
pub(crate) fn normalize_path(p: &[u8]) -> Option<Vec<u8>> {
    if p.is_empty() || p.iter().any(|&b| b < 0x20 || b == 0x7f || b == b'\\') {
        return None;
    }
    let absolute = p.first() == Some(&b'/');
    let mut segs: Vec<&[u8]> = Vec::new();
    for seg in p.split(|&b| b == b'/') {
        match seg {
            b"" | b"." => {}
            b".." => {
                if segs.last().is_some_and(|s| *s != b"..") {
                    segs.pop();
                } else if !absolute {
                    segs.push(seg);
                }
            }
            _ => segs.push(seg),
        }
    }
    let mut out = Vec::with_capacity(p.len());
    if absolute {
        out.push(b'/');
    }
    for (i, s) in segs.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(s);
    }
    if out.is_empty() {
        out.push(b'.');
    }
    Some(out)
}

/// Decodes `%XX` (hex, either case); a `%` not followed by two hex digits stays as is.
pub(crate) fn percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let b = s.get(i).copied().unwrap_or(0);
        if b == b'%' {
            if let (Some(h), Some(l)) =
                (s.get(i + 1).and_then(|c| hex(*c)), s.get(i + 2).and_then(|c| hex(*c)))
            {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// True when a resource URI, as sent or percent-decoded (up to [`MAX_DECODE_ROUNDS`] times),
/// has a `.` or `..` path segment, a backslash or a control byte, or does not settle after the
/// decoding rounds. Such URIs are refused outright: globs over URIs are textual, so
/// `file:///data/../etc/passwd` would otherwise match `file:///data/*`.
pub(crate) fn uri_is_suspicious(uri: &str) -> bool {
    let mut current = uri.as_bytes().to_vec();
    for _ in 0..=MAX_DECODE_ROUNDS {
        let path_end = current.iter().position(|&b| b == b'?' || b == b'#').unwrap_or(current.len());
        let path = current.get(..path_end).unwrap_or_default();
        if current.iter().any(|&b| b < 0x20 || b == 0x7f || b == b'\\')
            || path.split(|&b| b == b'/').any(|seg| seg == b"." || seg == b"..")
        {
            return true;
        }
        let decoded = percent_decode(&current);
        if decoded == current {
            return false;
        }
        current = decoded;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn n(p: &str) -> Option<String> {
        normalize_path(p.as_bytes()).map(|v| String::from_utf8_lossy(&v).into_owned())
    }

    #[test]
    fn normalisation() {
        assert_eq!(n("/data//sandbox/./a/../b/"), Some("/data/sandbox/b".into()));
        assert_eq!(n("/../../etc"), Some("/etc".into()));
        assert_eq!(n("a/../../b"), Some("../b".into()));
        assert_eq!(n("./"), Some(".".into()));
        assert_eq!(n("/"), Some("/".into()));
        assert_eq!(n(""), None);
        assert_eq!(n("/a\0b"), None);
        assert_eq!(n("/a\\..\\b"), None);
        assert_eq!(n("/a\nb"), None);
    }

    fn constraint(spec: Value) -> Constraint {
        let parsed = parse_constraints(&json!({ "path": spec }), "k");
        assert!(parsed.is_ok(), "{parsed:?}");
        parsed.ok().and_then(|mut v| v.pop()).unwrap_or_else(|| unreachable!())
    }

    fn ok(c: &Constraint, path: Value) -> bool {
        c.check(Some(&json!({ "path": path })))
    }

    #[test]
    fn prefix_path_constraint() {
        let c = constraint(json!({"prefix": "/data/sandbox/"}));
        assert!(ok(&c, json!("/data/sandbox/a.txt")));
        assert!(ok(&c, json!("/data/sandbox")));
        assert!(ok(&c, json!("/data//sandbox/./x/../y")));
        assert!(ok(&c, json!("/data/sandbox/%41.txt")), "decodes to a name inside");
        assert!(!ok(&c, json!("/data/sandbox2/a")));
        assert!(!ok(&c, json!("/data/sandbox/../etc/passwd")));
        assert!(!ok(&c, json!("/data/sandbox/a/../../etc")));
        assert!(!ok(&c, json!("/data/sandbox/%2e%2e/etc/passwd")));
        assert!(!ok(&c, json!("/data/sandbox/%2E%2E%2Fetc")));
        assert!(!ok(&c, json!("/data/sandbox/..%2f..%2fetc")));
        assert!(!ok(&c, json!("/data/sandbox/%252e%252e/etc")), "double encoding");
        assert!(!ok(&c, json!("/data/sandbox/%25252525252e")), "does not settle");
        assert!(!ok(&c, json!("/data/sandbox/a\u{0}b")));
        assert!(!ok(&c, json!("/data/sandbox/a%00b")));
        assert!(!ok(&c, json!("/data/sandbox\\..\\..\\etc")));
        assert!(!ok(&c, json!("data/sandbox/a")), "relative path is not under an absolute prefix");
        assert!(!ok(&c, json!(42)));
        assert!(!ok(&c, json!(["/data/sandbox/a"])));
        assert!(!c.check(Some(&json!({"other": "/data/sandbox/a"}))));
        assert!(!c.check(None));
        assert!(!c.check(Some(&json!("/data/sandbox/a"))));
    }

    #[test]
    fn other_tests() {
        let c = constraint(json!({"equals": "/a/b"}));
        assert!(ok(&c, json!("/a//b/")));
        assert!(!ok(&c, json!("/a/b/c")));
        let c = constraint(json!({"one_of": ["read", "write"], "normalize": "none"}));
        assert!(ok(&c, json!("read")));
        assert!(!ok(&c, json!("Read")));
        assert!(!ok(&c, json!("./read")));
        let c = constraint(json!({"glob": "/tmp/*.txt"}));
        assert!(ok(&c, json!("/tmp/x/y.txt")));
        assert!(!ok(&c, json!("/tmp/../etc/y.txt")));
        let c = constraint(json!({"prefix": "ab", "normalize": "none"}));
        assert!(ok(&c, json!("abc")));
    }

    #[test]
    fn bad_specs_name_the_key() {
        let e = parse_constraints(&json!({"path": {"prefx": "/a"}}), "x.arguments");
        assert_eq!(e.err().map(|e| e.0), Some("x.arguments.path.prefx".to_string()));
        let e = parse_constraints(&json!({"path": {"prefix": "/a", "equals": "/b"}}), "x");
        assert!(e.is_err());
        let e = parse_constraints(&json!({"path": {"prefix": "../a"}}), "x");
        assert_eq!(e.err().map(|e| e.0), Some("x.path.prefix".to_string()));
        assert!(parse_constraints(&json!({}), "x").is_err());
    }

    #[test]
    fn suspicious_uris() {
        assert!(!uri_is_suspicious("file:///data/a.txt"));
        assert!(!uri_is_suspicious("repo://owner%2Frepo/readme"));
        assert!(!uri_is_suspicious("https://x/?q=../a"));
        assert!(uri_is_suspicious("file:///data/../etc/passwd"));
        assert!(uri_is_suspicious("file:///data/./a"));
        assert!(uri_is_suspicious("file:///data/%2e%2e/etc"));
        assert!(uri_is_suspicious("file:///data/..%2Fetc"));
        assert!(uri_is_suspicious("file:///data/%252e%252e/etc"));
        assert!(uri_is_suspicious("file:///data\\..\\etc"));
        assert!(uri_is_suspicious("file:///data/a%00"));
    }
}
