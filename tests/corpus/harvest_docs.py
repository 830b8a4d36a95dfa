#!/usr/bin/env python3
"""Benign documentation text from this machine, as extra negatives for the scorer.

    python3 tests/corpus/harvest_docs.py [--out target/corpus/docs.jsonl] [--max-rows 16000]

Tool output in MCP traffic is full of documentation: man pages, READMEs, docstrings, command
references. They are written in the imperative ("delete", "ignore", "override", "send"), name
secrets and destructive commands, and are exactly what a keyword filter mistakes for an attack.
This script cuts such text from what is installed here (man pages, README files of the npm and
crates.io packages the build installed, Rust doc comments, Python docstrings) into chunks of 8-220
words, labelled benign. Nothing it reads is committed: it runs where the training runs, and the
chunks go to `target/`. Every file goes to `train` or `test` by a hash of its path, so the test
part measures false positives on documents never trained on.

Deterministic for a given machine: files are sorted and sampled by hash.
"""
import argparse
import ast
import glob
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bucket(key, mod):
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % mod


def split_of(path):
    return "test" if bucket("split:" + path, 4) == 3 else "train"


def words(s):
    return len(s.split())


def chunks_of(paragraphs, lo=8, hi=220):
    """Joins consecutive paragraphs into chunks of lo..hi words (a long paragraph is cut)."""
    out, cur = [], []
    for p in paragraphs:
        p = p.strip()
        if not p:
            continue
        if words(p) > hi:
            ws = p.split()
            for i in range(0, len(ws), hi):
                out.append(" ".join(ws[i:i + hi]))
            continue
        if cur and words("\n\n".join(cur + [p])) > hi:
            out.append("\n\n".join(cur))
            cur = []
        cur.append(p)
        if words("\n\n".join(cur)) >= lo and bucket("cut:" + p[:80], 3) == 0:
            out.append("\n\n".join(cur))
            cur = []
    if cur:
        out.append("\n\n".join(cur))
    return [c for c in out if words(c) >= lo]


def man_pages(limit):
    pages = sorted(glob.glob("/usr/share/man/man[1-8]/*.gz"))
    # gcloud ships thousands of near-identical pages; keep a few so they do not dominate
    other = [p for p in pages if "gcloud" not in os.path.basename(p)]
    gcloud = [p for p in pages if "gcloud" in os.path.basename(p)]
    picked = [p for p in other if bucket(p, max(1, len(other) // limit)) == 0]
    picked += [p for p in gcloud if bucket(p, max(1, len(gcloud) // 40)) == 0]
    env = dict(os.environ, MANWIDTH="100", LANG="C.UTF-8")
    for p in picked:
        try:
            r = subprocess.run(["man", "-l", p], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               env=env, timeout=20)
            txt = subprocess.run(["col", "-bx"], input=r.stdout, stdout=subprocess.PIPE,
                                 timeout=20).stdout.decode("utf-8", "replace")
        except (subprocess.SubprocessError, OSError):
            continue
        lines = txt.splitlines()[1:-1]  # header and footer lines
        paras, cur = [], []
        for ln in lines:
            if not ln.strip():
                if cur:
                    paras.append("\n".join(cur))
                    cur = []
                continue
            cur.append(ln[7:] if ln.startswith("       ") else ln.strip())
        if cur:
            paras.append("\n".join(cur))
        yield p, "docs_man", chunks_of(paras)


def markdown_files():
    pats = [os.path.join(ROOT, ".deps/npm/node_modules/**/README.md"),
            os.path.expanduser("~/.cargo/registry/src/*/*/README.md"),
            "/usr/share/doc/**/README*"]
    seen = set()
    for pat in pats:
        for p in sorted(glob.glob(pat, recursive=True)):
            real = os.path.realpath(p)
            if real in seen or os.path.getsize(p) > 400_000:
                continue
            seen.add(real)
            try:
                raw = gzip.open(p).read() if p.endswith(".gz") else open(p, "rb").read()
            except OSError:
                continue
            txt = raw.decode("utf-8", "replace")
            # badges and bare image lines carry no language
            txt = re.sub(r"^\s*(\[!\[|!\[|<img|<p align|</?div|<a href).*$", "", txt, flags=re.M)
            yield p, "docs_readme", chunks_of(re.split(r"\n\s*\n", txt))


def rust_doc_comments(limit_files):
    files = sorted(glob.glob(os.path.expanduser("~/.cargo/registry/src/*/*/src/**/*.rs"), recursive=True))
    files = [f for f in files if bucket(f, max(1, len(files) // limit_files)) == 0]
    for f in files:
        try:
            lines = open(f, encoding="utf-8", errors="replace").read().splitlines()
        except OSError:
            continue
        paras, cur = [], []
        for ln in lines:
            s = ln.strip()
            if s.startswith("///") or s.startswith("//!"):
                cur.append(s[3:].strip())
            elif cur:
                paras.append("\n".join(cur))
                cur = []
        if cur:
            paras.append("\n".join(cur))
        yield f, "docs_rustdoc", chunks_of(paras)


def python_docstrings():
    base = os.path.dirname(os.__file__)
    files = sorted(glob.glob(os.path.join(base, "*.py")) + glob.glob(os.path.join(base, "*/*.py")))
    files = [f for f in files if "/test" not in f and "/idlelib/" not in f]
    for f in files:
        try:
            tree = ast.parse(open(f, encoding="utf-8", errors="replace").read())
        except (SyntaxError, ValueError, OSError):
            continue
        docs = []
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                d = ast.get_docstring(node)
                if d:
                    docs.append(d)
        yield f, "docs_pydoc", chunks_of(docs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "target/corpus/docs.jsonl"))
    ap.add_argument("--max-rows", type=int, default=16000)
    ap.add_argument("--man-pages", type=int, default=1500)
    a = ap.parse_args()
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    sources = [man_pages(a.man_pages), markdown_files(), rust_doc_comments(900), python_docstrings()]
    rows, seen = [], set()
    per_cat = {}
    cap = a.max_rows // len(sources)
    for gen in sources:
        for path, cat, chunks in gen:
            for c in chunks:
                if per_cat.get(cat, 0) >= cap:
                    break
                key = hashlib.sha256(c.encode()).hexdigest()
                if key in seen:
                    continue
                seen.add(key)
                per_cat[cat] = per_cat.get(cat, 0) + 1
                rows.append({"text": c, "label": 0, "category": cat, "source": "docs",
                             "split": split_of(path)})
    with open(a.out, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(rows)} chunks -> {a.out}: " + ", ".join(f"{k} {v}" for k, v in sorted(per_cat.items())),
          file=sys.stderr)


if __name__ == "__main__":
    main()
