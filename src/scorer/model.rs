//! Hashed n-gram logistic regression (the learned half of the score).
//!
//! Features: every normalised token (unigram) and every adjacent token pair (bigram), hashed
//! into 2^16 buckets. A text is cut into windows of `WIN` tokens every `STRIDE` tokens; the
//! model's logit is the maximum window logit (so an injection hidden in a long tool output is
//! not diluted by the benign text around it). Window logits are O(1) each from prefix sums.
//! Weights are trained by `mcp-scan --train` (multiple-instance learning: the gradient flows
//! through the highest-scoring window) and stored in `model.bin`: magic `MCPLR1\0\0`, bias
//! (f32 LE), scale (f32 LE), then 2^16 weights as i16 LE (weight = i16 * scale). 128 KB.

pub(crate) const BITS: u32 = 16;
pub(crate) const N: usize = 1 << BITS;
pub(crate) const WIN: usize = 32;
pub(crate) const STRIDE: usize = 8;
const MAGIC: &[u8; 8] = b"MCPLR2\0\0";
const HEADER: usize = 20;

static BLOB: &[u8] = include_bytes!("model.bin");

#[inline]
fn mix(h: u64) -> usize {
    (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - BITS)) as usize
}

#[inline]
pub(crate) fn uni(h: u64) -> usize {
    mix(h ^ 0x5555_0000_1111_2222)
}

#[inline]
pub(crate) fn bi(a: u64, b: u64) -> usize {
    mix(a.rotate_left(23) ^ b ^ 0x0123_4567_89ab_cdef)
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

pub(crate) struct Model {
    bias: f32,
    scale: f32,
    /// weight of the rule evidence `logit(clamp(rule_score))` (stacking)
    pub beta: f32,
    w: &'static [u8],
}

/// The rule score as a model input: its logit, clamped so that "no rule" is a finite prior.
#[inline]
pub fn rule_logit(r: f64) -> f32 {
    let r = r.clamp(0.02, 0.995);
    (r / (1.0 - r)).ln() as f32
}

impl Model {
    pub fn load() -> Option<Model> {
        Self::from_bytes(BLOB)
    }

    pub fn from_bytes(b: &'static [u8]) -> Option<Model> {
        if b.len() != HEADER + 2 * N || b.get(..8)? != MAGIC {
            return None;
        }
        let f = |o: usize| -> Option<f32> {
            Some(f32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
        };
        Some(Model {
            bias: f(8)?,
            scale: f(12)?,
            beta: f(16)?,
            w: b.get(HEADER..)?,
        })
    }

    #[inline]
    fn w(&self, i: usize) -> f32 {
        let o = 2 * (i & (N - 1));
        match (self.w.get(o), self.w.get(o + 1)) {
            (Some(&a), Some(&b)) => f32::from(i16::from_le_bytes([a, b])) * self.scale,
            _ => 0.0,
        }
    }

    /// Maximum window logit over the token hashes of one text (`None` when it has no tokens).
    pub fn max_logit(&self, toks: &[u64]) -> Option<f32> {
        if toks.is_empty() {
            return None;
        }
        let n = toks.len();
        // prefix sums: pu[i] = sum of unigram weights of toks[..i]; pb[i] = bigrams (j, j+1) for j < i
        let mut pu = Vec::with_capacity(n + 1);
        let mut pb = Vec::with_capacity(n + 1);
        pu.push(0.0f32);
        pb.push(0.0f32);
        let (mut su, mut sb) = (0.0f32, 0.0f32);
        for i in 0..n {
            su += self.w(uni(toks[i]));
            pu.push(su);
            if i + 1 < n {
                sb += self.w(bi(toks[i], toks[i + 1]));
            }
            pb.push(sb);
        }
        let mut best = f32::NEG_INFINITY;
        for (s, e) in windows(n) {
            let z = self.bias + (pu[e] - pu[s]) + (pb[e - 1] - pb[s]);
            best = best.max(z);
        }
        Some(best)
    }
}

#[inline]
pub(crate) fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

// ---------------------------------------------------------------------------------------------
// Training (used by `mcp-scan --train`; never called in the filter, so it is dropped from the
// wasm by dead-code elimination).

/// One training document: the token-hash streams of its texts (main text, smuggled text,
/// decoded segments) and its label.
pub struct TrainDoc {
    pub texts: Vec<Vec<u64>>,
    pub label: bool,
    /// `rule_logit` of the document's rule score
    pub rule_logit: f32,
}

fn window_feats(toks: &[u64], s: usize, e: usize, out: &mut Vec<usize>) {
    out.clear();
    for i in s..e {
        out.push(uni(toks[i]));
        if i + 1 < e {
            out.push(bi(toks[i], toks[i + 1]));
        }
    }
}

/// Trains the model; returns the `model.bin` bytes.
/// `fixed_bias`: keep the bias at this value instead of learning it (a negative prior makes
/// text with no known evidence score low, which matters for unseen vocabulary).
pub fn train(
    docs: &[TrainDoc],
    epochs: usize,
    neg_weight: f32,
    l2: f32,
    fixed_bias: Option<f32>,
) -> Vec<u8> {
    let mut w = vec![0.0f32; N];
    let mut g2 = vec![1e-6f32; N];
    let mut bias = fixed_bias.unwrap_or(0.0);
    let mut gb = 1e-6f32;
    let beta_min: f32 = std::env::var("MCP_SCAN_BETA_MIN")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.1);
    let mut beta = beta_min.max(0.5);
    let mut gbeta = 1e-6f32;
    let lr = 0.2f32;
    let mut order: Vec<usize> = (0..docs.len()).collect();
    let mut rng: u64 = 0x2545_F491_4F6C_DD1D;
    let mut feats = Vec::new();
    for _ in 0..epochs {
        for i in (1..order.len()).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            order.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        for &di in &order {
            let d = &docs[di];
            // find the best window
            let mut best = (f32::NEG_INFINITY, 0usize, 0usize, 0usize);
            let base = bias + beta * d.rule_logit;
            for (ti, t) in d.texts.iter().enumerate() {
                for (s, e) in windows(t.len()) {
                    window_feats(t, s, e, &mut feats);
                    let z = base + feats.iter().map(|&f| w[f]).sum::<f32>();
                    if z > best.0 {
                        best = (z, ti, s, e);
                    }
                }
            }
            if best.0 == f32::NEG_INFINITY {
                continue;
            }
            let y = if d.label { 1.0 } else { 0.0 };
            let p = 1.0 / (1.0 + (-best.0).exp());
            let cw = if d.label { 1.0 } else { neg_weight };
            let g = (p - y) * cw;
            let Some(t) = d.texts.get(best.1) else {
                continue;
            };
            window_feats(t, best.2, best.3, &mut feats);
            for &f in &feats {
                let gf = g + l2 * w[f];
                g2[f] += gf * gf;
                w[f] -= lr * gf / g2[f].sqrt();
                w[f] = w[f].clamp(-8.0, 8.0);
            }
            gbeta += (g * d.rule_logit) * (g * d.rule_logit);
            beta = (beta - lr * g * d.rule_logit / gbeta.sqrt()).max(beta_min);
            if fixed_bias.is_none() {
                gb += g * g;
                bias -= lr * g / gb.sqrt();
            }
        }
    }
    let maxw = w.iter().fold(1e-6f32, |m, &x| m.max(x.abs()));
    let scale = maxw / 32767.0;
    let mut out = Vec::with_capacity(HEADER + 2 * N);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&bias.to_le_bytes());
    out.extend_from_slice(&scale.to_le_bytes());
    out.extend_from_slice(&beta.to_le_bytes());
    for x in w {
        let q = (x / scale).round().clamp(-32767.0, 32767.0) as i16;
        out.extend_from_slice(&q.to_le_bytes());
    }
    out
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
        assert!(Model::from_bytes(b"nope").is_none());
    }
}
