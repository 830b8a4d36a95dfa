//! Hashed n-gram logistic regression over token windows (the learned half of the score).
//!
//! # Features
//! For every token position `i` of a normalised text (tokens `t`, concept ids `c`, see
//! `concepts.rs`): the token `t[i]`, its concept `c[i]`, the token (or its concept) with the
//! punctuation that follows it (`agent:`), the bigram `t[i] t[i+1]`, the skip bigram
//! `t[i] · t[i+2]`, the word again when it starts a sentence or a list item, quoted words (apart
//! from the same words unquoted), and concept pairs `c[i] … c[i+d]` for `d` = 1, 2, 3. Each is
//! hashed into one table of `2^BITS` weights. A feature that looks ahead belongs to a window
//! only when its last token does.
//!
//! # Score
//! A text is cut into windows of `WIN` tokens every `STRIDE` tokens; the text's logit is the
//! maximum window logit, so an injection inside a long tool output is diluted only by the benign
//! text inside its window, not by the rest of the output. Window sums come from one prefix sum
//! per look-ahead distance, so every window costs O(1) after one O(n) pass. The built-in rules
//! that matched add their learned, non-negative weights:
//! `p = σ(bias + max_window Σ w + Σ_matched a_rule)`.
//!
//! # File (`model.bin`, written by `mcp-scan --train`)
//! magic `MCPLR3\0\0`, bias (f32 LE), scale (f32 LE), rule count (u16 LE), then per rule its id
//! length (u8), id bytes and weight (f32 LE), then `2^BITS` weights as i8 (weight = i8 · scale).

use std::borrow::Cow;

pub(crate) const BITS: u32 = 18;
pub(crate) const N: usize = 1 << BITS;
pub(crate) const WIN: usize = 48;
pub(crate) const STRIDE: usize = 8;
/// Longest look-ahead of a feature (concept pairs up to 3 tokens apart).
pub(crate) const REACH: usize = 3;
pub(crate) const MAGIC: &[u8; 8] = b"MCPLR3\0\0";

static BLOB: &[u8] = include_bytes!("model.bin");

#[inline]
fn mix(h: u64) -> u32 {
    (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - BITS)) as u32
}

/// One token as the model sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ModelTok {
    pub hash: u64,
    /// Concept id (0: none).
    pub class: u16,
    /// Punctuation right after the token (0: none).
    pub punct: u8,
    /// Hash of the word's first five characters when it is longer (0: none).
    pub stem: u64,
    /// Inside quotes (see `normalize::Tok::quoted`).
    pub quoted: bool,
}

/// The features of one token position, by look-ahead distance (`u32::MAX` = absent, which
/// indexes no weight).
pub(crate) type PosFeats = [[u32; 6]; REACH + 1];

const NONE: u32 = u32::MAX;

#[inline]
pub(crate) fn pos_feats(toks: &[ModelTok], i: usize) -> PosFeats {
    let mut f = [[NONE; 6]; REACH + 1];
    let Some(&ModelTok { hash: t, class: c, punct, stem, quoted }) = toks.get(i) else { return f };
    if quoted {
        f[0][4] = mix(t ^ 0x2222_9999_4444_7777);
    }
    // the first word of a sentence or line item: where an imperative stands
    let starts = i == 0
        || toks
            .get(i - 1)
            .is_some_and(|p| matches!(p.punct, b'.' | b'!' | b'?' | b':' | b';' | b'>' | b']' | b')'));
    if starts {
        f[0][5] = mix(t ^ 0x4b4b_2d2d_1e1e_f0f0);
    }
    if stem != 0 {
        f[0][3] = mix(stem ^ 0x6666_1111_bbbb_2222);
    }
    f[0][0] = mix(t ^ 0x5555_0000_1111_2222);
    if c != 0 {
        f[0][1] = mix(u64::from(c).wrapping_mul(0x1000_0000_01b3) ^ 0x7777_3333_aaaa_0001);
    }
    if punct != 0 {
        // the word with its punctuation, or its concept with it when it has one
        let key = if c != 0 { u64::from(c) << 8 } else { t.rotate_left(11) };
        f[0][2] = mix((key ^ u64::from(punct)).wrapping_mul(0x9E37_79B9) ^ 0x1234_0000_5678_9abc);
    }
    for d in 1..=REACH {
        let Some(&ModelTok { hash: t2, class: c2, .. }) = toks.get(i + d) else { break };
        match d {
            1 => f[1][0] = mix(t.rotate_left(23) ^ t2 ^ 0x0123_4567_89ab_cdef),
            2 => f[2][0] = mix(t.rotate_left(17) ^ t2 ^ 0x0fed_cba9_8765_4321),
            _ => {}
        }
        if c != 0 && c2 != 0 {
            let k = (u64::from(c) << 32) | (u64::from(c2) << 8) | d as u64;
            f[d][1] = mix(k.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0x3c3c_5a5a_9696_0f0f);
        }
    }
    f
}

/// Windows `[start, end)` over `n` tokens.
pub(crate) fn windows(n: usize) -> impl Iterator<Item = (usize, usize)> {
    let last = n.saturating_sub(WIN);
    let mut s = 0usize;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let start = s.min(last);
        if start >= last {
            done = true;
        }
        s += STRIDE;
        Some((start, (start + WIN).min(n)))
    })
}

/// Whether a feature at position `i` with look-ahead `d` lies inside the window ending at `e`.
#[inline]
pub(crate) fn inside(i: usize, d: usize, e: usize) -> bool {
    i + d < e
}

pub(crate) struct Model {
    pub bias: f32,
    scale: f32,
    /// Learned weight of each built-in rule, by id.
    pub rules: Vec<(String, f32)>,
    w: Cow<'static, [u8]>,
}

impl Model {
    pub fn load() -> Option<Model> {
        Self::from_bytes(Cow::Borrowed(BLOB))
    }

    pub fn from_bytes(b: Cow<'static, [u8]>) -> Option<Model> {
        if b.get(..8)? != MAGIC {
            return None;
        }
        let f32_at =
            |o: usize| -> Option<f32> { Some(f32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?)) };
        let bias = f32_at(8)?;
        let scale = f32_at(12)?;
        let count = u16::from_le_bytes(b.get(16..18)?.try_into().ok()?);
        let mut o = 18;
        let mut rules = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let len = usize::from(*b.get(o)?);
            let id = std::str::from_utf8(b.get(o + 1..o + 1 + len)?).ok()?.to_string();
            let w = f32_at(o + 1 + len)?;
            if !(w.is_finite() && w >= 0.0) {
                return None;
            }
            rules.push((id, w));
            o += 1 + len + 4;
        }
        if b.len() != o + N || !bias.is_finite() || !scale.is_finite() {
            return None;
        }
        let w = match b {
            Cow::Borrowed(s) => Cow::Borrowed(s.get(o..)?),
            Cow::Owned(v) => Cow::Owned(v.get(o..)?.to_vec()),
        };
        Some(Model { bias, scale, rules, w })
    }

    /// Maximum window logit (without bias and rules) over one text's tokens;
    /// `None` when it has no tokens.
    pub fn max_logit(&self, toks: &[ModelTok]) -> Option<f32> {
        let sum = |i: usize| pos_feats(toks, i).map(|fd| fd.iter().map(|&x| self.w(x)).sum());
        best_window(toks.len(), sum).map(|b| b.0)
    }

    #[inline]
    fn w(&self, i: u32) -> f32 {
        match self.w.get(i as usize) {
            Some(&q) => f32::from(q as i8) * self.scale,
            None => 0.0,
        }
    }
}

/// The best window over `n` positions, `(logit, start, end)`, given each position's feature
/// weight sums by look-ahead distance: one prefix sum per distance, then O(1) per window.
pub(crate) fn best_window(n: usize, pos: impl Fn(usize) -> [f32; REACH + 1]) -> Option<(f32, usize, usize)> {
    if n == 0 {
        return None;
    }
    // prefix[i][d]: sum of the look-ahead-d feature weights of positions < i
    let mut prefix: Vec<[f32; REACH + 1]> = Vec::with_capacity(n + 1);
    let mut sums = [0.0f32; REACH + 1];
    prefix.push(sums);
    for i in 0..n {
        for (sum, w) in sums.iter_mut().zip(pos(i)) {
            *sum += w;
        }
        prefix.push(sums);
    }
    let mut best: Option<(f32, usize, usize)> = None;
    for (s, e) in windows(n) {
        let Some(first) = prefix.get(s) else { continue };
        let mut z = 0.0;
        for (d, start) in first.iter().enumerate() {
            // features at positions s..e-d, whose look-ahead stays inside the window
            let end = e.saturating_sub(d).max(s);
            z += prefix.get(end).map_or(0.0, |p| p[d]) - start;
        }
        if best.is_none_or(|b| z > b.0) {
            best = Some((z, s, e));
        }
    }
    best
}

#[inline]
pub(crate) fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_everything() {
        assert_eq!(windows(0).collect::<Vec<_>>(), [(0, 0)]);
        assert_eq!(windows(10).collect::<Vec<_>>(), [(0, 10)]);
        let w: Vec<_> = windows(100).collect();
        assert_eq!(w.first(), Some(&(0, WIN)));
        assert_eq!(w.last(), Some(&(100 - WIN, 100)));
    }

    #[test]
    fn bad_blob_is_no_model() {
        assert!(Model::from_bytes(Cow::Borrowed(b"nope")).is_none());
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&[0; 10]);
        assert!(Model::from_bytes(Cow::Owned(b)).is_none(), "weights missing");
    }

    #[test]
    fn compiled_model_loads() {
        let m = Model::load().expect("model.bin");
        assert!(m.rules.iter().all(|(_, w)| *w >= 0.0));
    }

    #[test]
    fn prefix_sums_equal_direct_window_sums() {
        let m = Model::load().expect("model.bin");
        let toks: Vec<ModelTok> = (0..77u64)
            .map(|i| ModelTok {
                hash: i.wrapping_mul(0x9E37_79B9) % 13,
                class: if i % 3 == 0 { (i % 5) as u16 } else { 0 },
                punct: if i % 4 == 0 { b':' } else { 0 },
                stem: i % 7,
                quoted: i % 5 == 0,
            })
            .collect();
        let mut best = f32::NEG_INFINITY;
        for (s, e) in windows(toks.len()) {
            let mut z = 0.0;
            for i in s..e {
                let f = pos_feats(&toks, i);
                for (d, fd) in f.iter().enumerate() {
                    for &x in fd {
                        if x != NONE && inside(i, d, e) {
                            z += m.w(x);
                        }
                    }
                }
            }
            best = best.max(z);
        }
        let fast = m.max_logit(&toks).unwrap();
        assert!((fast - best).abs() < 1e-3, "{fast} vs {best}");
    }
}
