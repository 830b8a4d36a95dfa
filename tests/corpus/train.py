#!/usr/bin/env python3
"""Trains the scorer's model and reports how it does on text it was not trained on.

    python3 tests/corpus/harvest_docs.py           # once per machine: benign documentation chunks
    python3 tests/corpus/train.py                  # train -> src/scorer/model.bin, evaluate the held-out writers
    python3 tests/corpus/train.py --cv             # leave-one-writer-out estimate (one model per writer)
    python3 tests/corpus/train.py --eval-only      # evaluate the compiled-in model (or --model FILE)

Data: `free/<writer>.jsonl`, one file per writer (see `free/BRIEF.md`), and benign documentation
chunks cut from this machine by `harvest_docs.py` (its `train` half; output in target/corpus/).
Training also sees variants of the training rows (`augment.py`). The writers in `--holdout`
(default: EVAL_WRITERS) are never trained on; they, `eval/*.jsonl` and the docs `test` half are
the evaluation.
A held-out *writer* matters: rows of one writer share habits of phrasing, so a random split
flatters the model, and the product is judged on text written by other people.
"""
import argparse
import collections
import glob
import json
import os
import random
import subprocess
import sys

import augment

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TMP = os.path.join(ROOT, "target", "corpus")
SCAN = os.path.join(ROOT, "target", "release", "mcp-scan")
EVAL_WRITERS = []
# The harvested documentation outnumbers everything else; this keeps it from dominating the loss.
DOCS_WEIGHT = 0.5
# Security writing quotes attacks word for word (a blog post on tool poisoning quotes the poisoned
# description). At full weight it taught the model that the classic attacks are benign; at half
# weight a quoted attack in an essay may be flagged (measured apart as `benign_security`) and a
# real one is not missed (a quarter flagged more essays without catching more attacks).
SECURITY_WEIGHT = 0.5


def load(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def write(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def writers(folder):
    return {os.path.basename(p)[:-6]: load(p) for p in sorted(glob.glob(os.path.join(folder, "*.jsonl")))}


def docs(split):
    p = os.path.join(TMP, "docs.jsonl")
    if not os.path.exists(p):
        sys.exit("run tests/corpus/harvest_docs.py first")
    return [r for r in load(p) if r["split"] == split]


def training_rows(ws, holdout):
    rows = [r for w, rs in ws.items() if w not in holdout for r in rs]
    sec = float(os.environ.get("SECURITY_WEIGHT", SECURITY_WEIGHT))
    rows = [dict(r, weight=sec) if r["category"] == "benign_security" else r for r in rows]
    d = docs("train")
    carriers = [r for r in rows + d if r["label"] == 0 and 30 <= len(r["text"].split()) <= 250
                and r["category"] in augment.CARRIERS]
    rows += augment.variants(rows, carriers, seed=len(rows))
    return rows + [dict(r, weight=DOCS_WEIGHT) for r in d]


def train(rows, out, epochs):
    path = os.path.join(TMP, "train-input.jsonl")
    write(path, rows)
    subprocess.run([SCAN, "--train", path, "--out", out, "--epochs", str(epochs)], check=True)


def scores(model, rows):
    inp = "".join(json.dumps({"text": r["text"]}, ensure_ascii=False) + "\n" for r in rows).encode()
    cmd = [SCAN] + (["--model", model] if model else [])
    out = subprocess.run(cmd, input=inp, stdout=subprocess.PIPE, check=True).stdout.decode().splitlines()
    return [json.loads(o)["score"] for o in out]


def report(name, rows, sc, th, per_category=True):
    att = [s for r, s in zip(rows, sc) if r["label"] == 1]
    ben = [s for r, s in zip(rows, sc) if r["label"] == 0]
    line = f"{name:<34}"
    if att:
        tp = sum(s >= th for s in att)
        line += f" recall {100 * tp / len(att):6.2f}% ({tp}/{len(att)})"
    if ben:
        fp = sum(s >= th for s in ben)
        line += f"  FP {100 * fp / len(ben):5.2f}% ({fp}/{len(ben)})"
    print(line)
    if per_category:
        cats = collections.defaultdict(list)
        for r, s in zip(rows, sc):
            cats[(r["label"], r.get("category", "?"))].append(s)
        for (label, cat), ss in sorted(cats.items(), key=lambda x: (-x[0][0], x[0][1])):
            f = sum(s >= th for s in ss)
            kind = "recall" if label else "FP    "
            print(f"    {cat:<28} {kind} {100 * f / len(ss):6.2f}% ({f}/{len(ss)})")


def sweep(rows, sc, skip=()):
    """Recall where the threshold gives 0.5 / 1 / 2 % false positives."""
    att = [s for r, s in zip(rows, sc) if r["label"] == 1]
    ben = sorted((s for r, s in zip(rows, sc) if r["label"] == 0 and r.get("category") not in skip),
                 reverse=True)
    if not att or not ben:
        return
    label = f" (benign without {', '.join(skip)})" if skip else ""
    for fp_target in (0.005, 0.01, 0.02):
        th = ben[min(int(len(ben) * fp_target), len(ben) - 1)]
        rec = sum(s > th for s in att) / len(att)
        print(f"    at {100 * fp_target:.1f}% FP{label}: threshold {th:.3f}, recall {100 * rec:.2f}%")


def placed_in_documents(rows, carriers, seed):
    """The short attacks of `rows` three ways: alone, inside a benign document (at a sentence
    boundary near its middle) and right after one. Measures how much benign context dilutes an
    injection (the indirect case: a poisoned web page or file)."""
    rng = random.Random(seed)
    out = []
    for r in rows:
        if r["label"] != 1 or len(r["text"]) > 300:
            continue
        d = rng.choice(carriers)["text"]
        cut = d.rfind(". ", 0, len(d) // 2)
        cut = cut + 2 if cut > 0 else len(d) // 2
        out += [("alone", r["text"]), ("inside a document", d[:cut] + r["text"] + " " + d[cut:]),
                ("after a document", d + "\n\n" + r["text"])]
    return out


def report_placement(placed, sc, th):
    for where in ("alone", "inside a document", "after a document"):
        ss = [s for (w, _), s in zip(placed, sc) if w == where]
        if ss:
            print(f"    short attacks {where:<18} recall {100 * sum(s >= th for s in ss) / len(ss):6.2f}% ({len(ss)})")


def same_text(row):
    """What two writers wrote alike: the text without case and spacing differences."""
    return " ".join(row["text"].lower().split())


def cross_validate(ws, a):
    """One model per writer, trained on the others (or on `--cv-writers` of them, to see how
    recall grows with the number of writers)."""
    pooled_rows, pooled_sc, placed, placed_sc = [], [], [], []
    carriers = [r for r in docs("test") if 150 <= len(r["text"]) <= 1500]
    texts = {w: {same_text(r) for r in rs} for w, rs in ws.items()}
    for w in ws:
        model = os.path.join(TMP, f"cv-{w}.bin")
        others = [x for x in ws if x != w]
        keep = a.cv_writers or len(others)
        drop = set(random.Random(w).sample(others, len(others) - keep))
        train(training_rows(ws, {w} | drop), model, a.epochs)
        # a text another writer also wrote (a common command, a classic phrase) is not held out
        seen = set().union(*(texts[x] for x in others))
        held = [r for r in ws[w] if same_text(r) not in seen]
        sc = scores(model, held)
        report(f"held-out writer {w}", held, sc, a.threshold, per_category=False)
        p = placed_in_documents(held, carriers, seed=len(held))
        placed += p
        placed_sc += scores(model, [{"text": t} for _, t in p])
        pooled_rows += held
        pooled_sc += sc
    write(os.path.join(TMP, "cv-scores.jsonl"), [dict(r, score=s) for r, s in zip(pooled_rows, pooled_sc)])
    report("all writers, each held out", pooled_rows, pooled_sc, a.threshold, per_category=not a.brief)
    sweep(pooled_rows, pooled_sc)
    sweep(pooled_rows, pooled_sc, skip=("benign_security",))
    report_placement(placed, placed_sc, a.threshold)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "src", "scorer", "model.bin"))
    ap.add_argument("--holdout", default=",".join(EVAL_WRITERS), help="writers never trained on")
    ap.add_argument("--free-dir", default=os.path.join(HERE, "free"))
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--threshold", type=float, default=0.75)
    ap.add_argument("--cv", action="store_true", help="leave-one-writer-out: one model per writer")
    ap.add_argument("--cv-writers", type=int, help="with --cv: train on this many of the other writers")
    ap.add_argument("--brief", action="store_true", help="no per-category lines")
    ap.add_argument("--eval-only", action="store_true", help="evaluate without training")
    ap.add_argument("--model", help="with --eval-only: this model.bin instead of the compiled-in one")
    a = ap.parse_args()
    os.makedirs(TMP, exist_ok=True)
    if not os.path.exists(SCAN):
        subprocess.run(["cargo", "build", "--release", "--bin", "mcp-scan"], cwd=ROOT, check=True)
    ws = writers(a.free_dir)
    if a.cv:
        cross_validate(ws, a)
        return
    holdout = {h for h in a.holdout.split(",") if h}
    model = a.model if a.eval_only else a.out
    if not a.eval_only:
        train(training_rows(ws, holdout), a.out, a.epochs)
    sets = [(f"held-out writer {w}", ws[w]) for w in sorted(holdout) if w in ws]
    sets += [(f"eval/{os.path.basename(p)}", load(p)) for p in sorted(glob.glob(os.path.join(HERE, "eval", "*.jsonl")))]
    sets.append(("docs (test half)", docs("test")))
    for name, rows in sets:
        sc = scores(model, rows)
        report(name, rows, sc, a.threshold, per_category=not name.startswith("docs"))
        sweep(rows, sc)


if __name__ == "__main__":
    main()
