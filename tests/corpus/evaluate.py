#!/usr/bin/env python3
"""Runs mcp-scan over a labelled JSONL split and prints recall per category and the FP rate.

    python3 tests/corpus/evaluate.py [--split tests/corpus/test.jsonl] [--bin target/release/mcp-scan]
                                     [--threshold 0.7] [--config FILE] [--no-model]

Builds mcp-scan (cargo build --release --bin mcp-scan) when --bin does not exist. Lines need
`text` and `label` (1 attack / 0 benign); `category` groups the report.
"""
import argparse
import collections
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", default=os.path.join(ROOT, "tests/corpus/test.jsonl"))
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/mcp-scan"))
    ap.add_argument("--threshold", type=float)
    ap.add_argument("--config")
    ap.add_argument("--no-model", action="store_true")
    a = ap.parse_args()
    if not os.path.exists(a.bin):
        subprocess.run(["cargo", "build", "--release", "--bin", "mcp-scan"], cwd=ROOT, check=True)
    rows = [json.loads(l) for l in open(a.split, encoding="utf-8") if l.strip()]
    cmd = [a.bin]
    if a.threshold is not None:
        cmd += ["--threshold", str(a.threshold)]
    if a.config:
        cmd += ["--config", a.config]
    if a.no_model:
        cmd.append("--no-model")
    inp = "".join(json.dumps({"text": r["text"]}, ensure_ascii=False) + "\n" for r in rows)
    out = subprocess.run(cmd, input=inp.encode(), stdout=subprocess.PIPE, check=True).stdout.decode().splitlines()
    assert len(out) == len(rows), (len(out), len(rows))
    per = collections.defaultdict(lambda: [0, 0])
    # The free-form hand-written rows on their own (they share no template with train), and the
    # eval-only ones (files never trained on) separately.
    hand = collections.Counter()
    tp = p = fp = n = 0
    for r, o in zip(rows, out):
        f = json.loads(o)["flagged"]
        src = r.get("source", "")
        if src.startswith("hand"):
            hand[(src, r["label"], "flagged")] += int(f)
            hand[(src, r["label"], "all")] += 1
        c = per[(r["label"], r.get("category", "?"))]
        c[0] += int(f)
        c[1] += 1
        if r["label"] == 1:
            p += 1
            tp += int(f)
        else:
            n += 1
            fp += int(f)
    print(f"attacks: recall {100 * tp / max(p, 1):.2f}% ({tp}/{p})")
    for (label, cat), (f, t) in sorted(per.items()):
        if label == 1:
            print(f"  {cat:<28} recall {100 * f / t:6.2f}% ({f}/{t})")
    print(f"benign: false positives {100 * fp / max(n, 1):.2f}% ({fp}/{n})")
    for (label, cat), (f, t) in sorted(per.items()):
        if label == 0:
            print(f"  {cat:<28} FP     {100 * f / t:6.2f}% ({f}/{t})")
    for src, title in (("hand", "free-form rows (held out by position)"),
                       ("hand-eval", "free-form eval-only rows (never trained on)")):
        ha, hb = hand[(src, 1, "all")], hand[(src, 0, "all")]
        if ha or hb:
            ta, fb = hand[(src, 1, "flagged")], hand[(src, 0, "flagged")]
            print(f"{title}: recall {100 * ta / max(ha, 1):.2f}% ({ta}/{ha}), "
                  f"false positives {100 * fb / max(hb, 1):.2f}% ({fb}/{hb})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
