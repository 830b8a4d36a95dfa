//! Training of the model (`mcp-scan --train`; never called in the filter, so it is dropped from
//! the wasm by dead-code elimination).
//!
//! Multiple-instance logistic regression: a document is positive when its best window is, so
//! the gradient of each document flows through its highest-scoring window only (an attack row's
//! benign carrier text is not learned as "attack"). AdaGrad, L2 on the touched weights, rule
//! weights kept non-negative so that a matching rule can only raise the score.

use super::model::{best_window, inside, pos_feats, ModelTok, PosFeats, MAGIC, N, REACH};

/// One text of a document as the model sees it.
pub struct TrainText {
    feats: Vec<PosFeats>,
}

impl TrainText {
    pub(crate) fn new(toks: &[ModelTok]) -> TrainText {
        TrainText { feats: (0..toks.len()).map(|i| pos_feats(toks, i)).collect() }
    }

    /// The features of window `[s, e)` (look-ahead features whose end lies inside it).
    fn window(&self, s: usize, e: usize, out: &mut Vec<u32>) {
        out.clear();
        for i in s..e {
            let Some(f) = self.feats.get(i) else { break };
            for (d, fd) in f.iter().enumerate() {
                if inside(i, d, e) {
                    out.extend(fd.iter().copied().filter(|&x| x != u32::MAX));
                }
            }
        }
    }
}

/// A training document: the texts the scorer would scan for it (main text, smuggled text,
/// decoded segments), the built-in rules it matches (indices into `rule_ids`), its label and
/// its weight in the loss.
pub struct TrainDoc {
    pub texts: Vec<TrainText>,
    pub rules: Vec<u16>,
    pub label: bool,
    pub weight: f32,
}

pub struct TrainParams {
    pub epochs: usize,
    pub l2: f32,
    /// Pull of each rule weight back to its prior.
    pub rule_l2: f32,
    pub lr: f32,
    /// Bias kept fixed at this value instead of learned.
    pub fixed_bias: Option<f32>,
}

struct State {
    w: Vec<f32>,
    g2: Vec<f32>,
    rule_w: Vec<f32>,
    rule_g2: Vec<f32>,
    bias: f32,
    bias_g2: f32,
}

impl State {
    /// The document's best window: (logit without rules and bias, text index, start, end).
    fn best(&self, d: &TrainDoc) -> Option<(f32, usize, usize, usize)> {
        let w = |x: u32| self.w.get(x as usize).copied().unwrap_or(0.0);
        let mut best: Option<(f32, usize, usize, usize)> = None;
        for (ti, t) in d.texts.iter().enumerate() {
            let pos = |i: usize| {
                t.feats.get(i).map_or([0.0; REACH + 1], |f| f.map(|fd| fd.iter().map(|&x| w(x)).sum()))
            };
            if let Some((z, s, e)) = best_window(t.feats.len(), pos) {
                if best.is_none_or(|b| z > b.0) {
                    best = Some((z, ti, s, e));
                }
            }
        }
        best
    }
}

/// Trains the model; returns the `model.bin` bytes. `rules` names the rules the documents'
/// `rules` indices refer to, with each rule's prior weight: the hand-set precision of a rule is
/// knowledge the corpus may not show (a rule for a classic attack that few rows contain), so
/// rule weights start there and are pulled back to it rather than to zero.
pub fn train(docs: &[TrainDoc], rules: &[(&str, f32)], p: &TrainParams) -> Vec<u8> {
    let prior: Vec<f32> = rules.iter().map(|r| r.1).collect();
    let mut st = State {
        w: vec![0.0; N],
        g2: vec![1e-6; N],
        rule_w: prior.clone(),
        rule_g2: vec![1e-6; rules.len()],
        bias: p.fixed_bias.unwrap_or(-2.0),
        bias_g2: 1e-6,
    };
    let mut order: Vec<usize> = (0..docs.len()).collect();
    let mut rng: u64 = 0x2545_F491_4F6C_DD1D;
    let mut feats = Vec::new();
    for _ in 0..p.epochs {
        for i in (1..order.len()).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            order.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        for &di in &order {
            let d = &docs[di];
            let rules: f32 = d.rules.iter().filter_map(|&r| st.rule_w.get(usize::from(r))).sum();
            let best = st.best(d);
            let z = st.bias + rules + best.map_or(0.0, |b| b.0);
            let y = if d.label { 1.0 } else { 0.0 };
            let g = (1.0 / (1.0 + (-z).exp()) - y) * d.weight;
            if let Some((_, ti, s, e)) = best {
                if let Some(t) = d.texts.get(ti) {
                    t.window(s, e, &mut feats);
                    for &f in &feats {
                        let f = f as usize;
                        let gf = g + p.l2 * st.w[f];
                        st.g2[f] += gf * gf;
                        st.w[f] = (st.w[f] - p.lr * gf / st.g2[f].sqrt()).clamp(-6.0, 6.0);
                    }
                }
            }
            for &r in &d.rules {
                let r = usize::from(r);
                if let (Some(w), Some(g2), Some(w0)) =
                    (st.rule_w.get_mut(r), st.rule_g2.get_mut(r), prior.get(r))
                {
                    let gr = g + p.rule_l2 * (*w - w0);
                    *g2 += gr * gr;
                    *w = (*w - p.lr * gr / g2.sqrt()).clamp(0.0, 8.0);
                }
            }
            if p.fixed_bias.is_none() {
                st.bias_g2 += g * g;
                st.bias -= p.lr * g / st.bias_g2.sqrt();
            }
        }
    }
    let ids: Vec<&str> = rules.iter().map(|r| r.0).collect();
    serialize(&st, &ids)
}

fn serialize(st: &State, rule_ids: &[&str]) -> Vec<u8> {
    let maxw = st.w.iter().fold(1e-6f32, |m, &x| m.max(x.abs()));
    let scale = maxw / 127.0;
    let mut out = Vec::with_capacity(64 + N + rule_ids.len() * 16);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&st.bias.to_le_bytes());
    out.extend_from_slice(&scale.to_le_bytes());
    let kept: Vec<(&str, f32)> =
        rule_ids.iter().zip(&st.rule_w).filter(|(_, w)| **w > 0.0).map(|(id, w)| (*id, *w)).collect();
    out.extend_from_slice(&(kept.len() as u16).to_le_bytes());
    for (id, w) in kept {
        out.push(id.len() as u8);
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(&w.to_le_bytes());
    }
    for &x in &st.w {
        out.push((x / scale).round().clamp(-127.0, 127.0) as i8 as u8);
    }
    out
}
