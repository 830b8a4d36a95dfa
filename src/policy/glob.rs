//! Glob matcher for permission patterns, compiled once at configuration time.
//!
//! Semantics (documented in `policy/mod.rs`):
//! - `*` matches any run of bytes, including the empty run and `/`;
//! - `\` escapes the next character (`\*` is a literal star, `\\` a literal backslash);
//! - every other byte matches itself: byte-exact, case-sensitive, no Unicode folding or
//!   normalisation (a Cyrillic `а` never matches a Latin `a`).
//!
//! Matching is linear in `pattern + subject`: the pattern is split into literal pieces around the
//! stars, the first piece must be a prefix, the last a suffix, and the middle pieces are found
//! left-most in order with a precomputed KMP table. Left-most placement is optimal when the only
//! wildcard is `*`, so there is no backtracking and no pathological input.

/// A compiled glob.
#[derive(Debug, Clone)]
pub(crate) struct Glob {
    /// The pattern as written (for audit messages).
    source: String,
    kind: GlobKind,
}

#[derive(Debug, Clone)]
enum GlobKind {
    /// No star: byte equality.
    Literal(Vec<u8>),
    /// `head * mid_1 * ... * mid_n * tail`.
    Star { head: Vec<u8>, mids: Vec<Piece>, tail: Vec<u8> },
}

#[derive(Debug, Clone)]
struct Piece {
    bytes: Vec<u8>,
    /// KMP failure function.
    fail: Vec<usize>,
}

impl Piece {
    fn new(bytes: Vec<u8>) -> Piece {
        let mut fail = vec![0usize; bytes.len()];
        let mut k = 0usize;
        for i in 1..bytes.len() {
            while k > 0 && bytes.get(i) != bytes.get(k) {
                k = fail.get(k - 1).copied().unwrap_or(0);
            }
            if bytes.get(i) == bytes.get(k) {
                k += 1;
            }
            if let Some(f) = fail.get_mut(i) {
                *f = k;
            }
        }
        Piece { bytes, fail }
    }

    /// Index just past the left-most occurrence of the piece in `hay`, if any.
    fn find_end(&self, hay: &[u8]) -> Option<usize> {
        let n = self.bytes.len();
        if n == 0 {
            return Some(0);
        }
        let mut k = 0usize;
        for (i, &c) in hay.iter().enumerate() {
            while k > 0 && self.bytes.get(k) != Some(&c) {
                k = self.fail.get(k - 1).copied().unwrap_or(0);
            }
            if self.bytes.get(k) == Some(&c) {
                k += 1;
            }
            if k == n {
                return Some(i + 1);
            }
        }
        None
    }
}

impl Glob {
    /// Compiles a glob. Errors: empty pattern, trailing unescaped `\`.
    pub(crate) fn new(pattern: &str) -> Result<Glob, String> {
        if pattern.is_empty() {
            return Err("empty pattern".to_string());
        }
        let mut pieces: Vec<Vec<u8>> = vec![Vec::new()];
        let mut bytes = pattern.bytes();
        while let Some(b) = bytes.next() {
            match b {
                b'\\' => match bytes.next() {
                    Some(e) => push_byte(&mut pieces, e),
                    None => return Err(format!("pattern `{pattern}` ends with an unescaped `\\`")),
                },
                b'*' => pieces.push(Vec::new()),
                other => push_byte(&mut pieces, other),
            }
        }
        let kind = if pieces.len() == 1 {
            GlobKind::Literal(pieces.pop().unwrap_or_default())
        } else {
            let tail = pieces.pop().unwrap_or_default();
            let mut it = pieces.into_iter();
            let head = it.next().unwrap_or_default();
            let mids = it.filter(|p| !p.is_empty()).map(Piece::new).collect();
            GlobKind::Star { head, mids, tail }
        };
        Ok(Glob { source: pattern.to_string(), kind })
    }

    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// The literal value when the glob has no star (used to index rules).
    pub(crate) fn literal(&self) -> Option<&[u8]> {
        match &self.kind {
            GlobKind::Literal(l) => Some(l),
            GlobKind::Star { .. } => None,
        }
    }

    /// The first byte every match starts with, when the glob starts with a literal.
    pub(crate) fn first_byte(&self) -> Option<u8> {
        match &self.kind {
            GlobKind::Literal(l) => l.first().copied(),
            GlobKind::Star { head, .. } => head.first().copied(),
        }
    }

    pub(crate) fn is_match(&self, subject: &str) -> bool {
        self.is_match_bytes(subject.as_bytes())
    }

    pub(crate) fn is_match_bytes(&self, s: &[u8]) -> bool {
        match &self.kind {
            GlobKind::Literal(l) => l.len() == s.len() && bytes_eq(l, s),
            GlobKind::Star { head, mids, tail } => {
                if s.len() < head.len() + tail.len()
                    || !bytes_eq(head, s.get(..head.len()).unwrap_or_default())
                    || !bytes_eq(tail, s.get(s.len() - tail.len()..).unwrap_or_default())
                {
                    return false;
                }
                let mut rest = s.get(head.len()..s.len() - tail.len()).unwrap_or_default();
                for piece in mids {
                    match piece.find_end(rest) {
                        Some(end) => rest = rest.get(end..).unwrap_or_default(),
                        None => return false,
                    }
                }
                true
            }
        }
    }
}

/// Byte equality of equal-length slices without a libc `memcmp` call (patterns and names are
/// short; the call overhead dominated in measurements).
#[inline]
fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

fn push_byte(pieces: &mut [Vec<u8>], b: u8) {
    if let Some(last) = pieces.last_mut() {
        last.push(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Glob::new(p).map(|g| g.is_match(s)).unwrap_or(false)
    }

    #[test]
    fn literal_and_star() {
        assert!(m("read_file", "read_file"));
        assert!(!m("read_file", "read_file2"));
        assert!(!m("read_file", "Read_file"));
        assert!(m("*", ""));
        assert!(m("*", "a/b/c"));
        assert!(m("read_*", "read_"));
        assert!(m("read_*", "read_file"));
        assert!(!m("read_*", "xread_file"));
        assert!(m("*_file", "read_file"));
        assert!(m("a*b*c", "abc"));
        assert!(m("a*b*c", "a_b_b_c"));
        assert!(!m("a*b*c", "acb"));
        assert!(m("a**c", "ac"));
        assert!(!m("ab*ba", "aba"), "head and tail must not overlap");
        assert!(m("*aab*", "xaaab"));
        assert!(m("*abab*", "aabaabab"));
        assert!(m("file:///data/*", "file:///data/x/y"));
    }

    #[test]
    fn escapes_and_errors() {
        assert!(m(r"a\*b", "a*b"));
        assert!(!m(r"a\*b", "axb"));
        assert!(m(r"a\\b", r"a\b"));
        assert!(Glob::new("").is_err());
        assert!(Glob::new("abc\\").is_err());
    }

    #[test]
    fn unicode_lookalikes_and_case() {
        // Cyrillic "а" (U+0430) is not Latin "a".
        assert!(!m("read_*", "re\u{0430}d_file"));
        assert!(!m("read_file", "read_fil\u{0435}"));
        assert!(!m("READ_*", "read_file"));
        assert!(m("r\u{00e9}sum\u{00e9}*", "r\u{00e9}sum\u{00e9}.txt"));
        // NFC vs NFD are different byte strings.
        assert!(!m("r\u{00e9}*", "re\u{0301}sume"));
    }

    #[test]
    fn pathological_patterns_are_linear() {
        let pat = format!("{}b*", "*a".repeat(2000));
        let subject = "a".repeat(100_000);
        let g = Glob::new(&pat);
        assert!(g.is_ok());
        let start = std::time::Instant::now();
        assert!(!g.map(|g| g.is_match(&subject)).unwrap_or(true));
        assert!(start.elapsed().as_millis() < 500, "took {:?}", start.elapsed());
    }
}
