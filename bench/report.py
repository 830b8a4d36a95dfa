#!/usr/bin/env python3
"""Turns target/bench/results.json into report.md and chart.png.

    bench/report.py [results.json] [out_dir]      (re-renders a saved run)

Ratios are taken within one round (same machine state), then the median over the rounds.
The chart needs matplotlib; when the running Python lacks it, the chart is drawn by the bench
venv's Python (.deps/bench/venv, installed by bench/setup.sh).
"""
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BENCH_VENV_PY = os.path.join(ROOT, ".deps", "bench", "venv", "bin", "python")
PEERS = ("supergateway", "mcp-proxy-npm", "mcp-proxy-pypi")
ORDER = ["A", "B", "C", "D0", "DN", "D", "E", "F", "G"]


def cfg_key(c):
    return (ORDER.index(c) if c in ORDER else len(ORDER), c)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fnum(x, fmt="{:.0f}", none="–"):
    return none if x is None else fmt.format(x)


# ---------------------------------------------------------------------------------------------
# filter


def filter_ok_points(results):
    return [p for p in results.get("filter", {}).get("points", []) if "error" not in p]


def metric(p, key):
    if key == "rps":
        return p["throughput"]["rps"]
    if key == "thr_p50":
        return p["throughput"]["p50_us"]
    if key == "thr_p99":
        return p["throughput"]["p99_us"]
    if key == "p50":
        return p["latency"]["p50_us"]
    if key == "p99":
        return p["latency"]["p99_us"]
    if key == "cpu":
        return p.get("cpu_us_per_req")
    if key == "rss":
        return p["rss_kib"] / 1024 if p.get("rss_kib") else None
    raise KeyError(key)


def filter_summary(results):
    """{(config, conc): {metric: median, 'rounds': n, 'min_rps', 'max_rps'}}."""
    out = {}
    for p in filter_ok_points(results):
        out.setdefault((p["config"], p["concurrency"]), []).append(p)
    summary = {}
    for k, pts in out.items():
        s = {m: med(metric(p, m) for p in pts) for m in ("rps", "thr_p50", "thr_p99", "p50", "p99", "cpu", "rss")}
        s["rounds"] = len(pts)
        s["rps_range"] = (min(metric(p, "rps") for p in pts), max(metric(p, "rps") for p in pts))
        summary[k] = s
    return summary


def paired(results, cfg, base, conc, key, op):
    """Median over rounds of op(metric(cfg), metric(base)) taken within the same round."""
    by = {}
    for p in filter_ok_points(results):
        if p["concurrency"] == conc:
            by[(p["config"], p["round"])] = p
    vals = []
    for (c, rnd), p in by.items():
        if c == cfg and (base, rnd) in by:
            a, b = metric(p, key), metric(by[(base, rnd)], key)
            if a is not None and b is not None and b != 0:
                vals.append(op(a, b))
    return med(vals), len(vals)


def ratio(a, b):
    return a / b


def diff(a, b):
    return a - b


def filter_targets(results):
    """The issue's filter targets, evaluated per Envoy concurrency (and the scorer in wasm alone)."""
    t = []
    concs = sorted({p["concurrency"] for p in filter_ok_points(results)})
    for c in concs:
        r, n = paired(results, "D", "B", c, "rps", ratio)
        rc, _ = paired(results, "B", "D", c, "cpu", ratio)  # B cpu / D cpu = D capacity / B capacity
        if r is not None:
            t.append({"target": f"D throughput within 15 % of B (Envoy --concurrency {c})",
                      "value": f"D/B = {r:.2f} measured rps, {fnum(rc, '{:.2f}')} per Envoy CPU-second ({n} rounds)",
                      "met": r >= 0.85 and (rc is None or rc >= 0.85)})
        d, n = paired(results, "D", "B", c, "p50", diff)
        dc, _ = paired(results, "D", "B", c, "cpu", diff)
        if d is not None:
            t.append({"target": f"D adds ≤ 50 µs p50 over B (1 connection, --concurrency {c})",
                      "value": f"{d:+.0f} µs ({n} rounds); Envoy CPU {fnum(dc, '{:+.0f}')} µs/request",
                      "met": d <= 50})
        g, n = paired(results, "D0", "B", c, "cpu", diff)
        if g is not None:
            t.append({"target": f"(info) wasm glue floor: D0 − B CPU per request (--concurrency {c})",
                      "value": f"+{g:.0f} µs ({n} rounds)", "met": None})
        sc, n = paired(results, "D", "DN", c, "cpu", diff)
        sr, _ = paired(results, "D", "DN", c, "cpu", ratio)
        kb = results.get("filter", {}).get("method", {}).get("argument_text_bytes")
        if sc is not None and kb:
            per_kb = sc * 1024 / kb
            t.append({"target": f"scoring 1 KB of arguments inside the wasm < 50 µs (D − DN Envoy CPU, --concurrency {c})",
                      "value": f"{sc:+.0f} µs for {kb} B of argument text = {per_kb:.0f} µs/KB; "
                               f"D/DN CPU per request = {sr:.2f} ({n} rounds)",
                      "met": per_kb < 50})
        for x in ("D", "E"):
            rc, n = paired(results, x, "C", c, "cpu", ratio)
            rr, _ = paired(results, x, "C", c, "rps", ratio)
            if rc is not None:
                t.append({"target": f"{x} cheaper than C (CPU per request, --concurrency {c})",
                          "value": f"{x}/C CPU = {rc:.2f}, rps = {fnum(rr, '{:.2f}')} ({n} rounds)",
                          "met": rc < 1.0})
            elif rr is not None:
                t.append({"target": f"{x} cheaper than C (throughput, --concurrency {c})",
                          "value": f"{x}/C rps = {rr:.2f}", "met": rr > 1.0})
    wasm = results.get("micro_wasm", {}).get("us_per_call", {}).get("benign 1 KiB")
    if wasm is not None:
        t.append({"target": "scoring 1 KB inside wasm < 50 µs (dist/mcp-scan.wasm in Node's V8, no Envoy)",
                  "value": f"{wasm:.1f} µs per 1 KiB of benign text (median of "
                           f"{results['micro_wasm'].get('runs')} runs)",
                  "met": wasm < 50})
    return t


def filter_table(results):
    summary = filter_summary(results)
    titles = results.get("filter", {}).get("titles", {})
    lines = ["| cfg | Envoy conc | rps (16 conn) | ×A | ×B | p50 / p99 µs (16 conn) | p50 / p99 µs (1 conn) "
             "| +p50 vs B µs | CPU µs/req | req per CPU-s | RSS MiB | rounds |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (cfg, conc) in sorted(summary, key=lambda k: (k[1], cfg_key(k[0]))):
        s = summary[(cfg, conc)]
        ra, _ = paired(results, cfg, "A", conc, "rps", ratio)
        rb, _ = paired(results, cfg, "B", conc, "rps", ratio)
        dp, _ = paired(results, cfg, "B", conc, "p50", diff)
        lo, hi = s["rps_range"]
        rps = f"{s['rps']:.0f}" + (f" ({lo:.0f}–{hi:.0f})" if s["rounds"] > 1 else "")
        lines.append(
            f"| {cfg} | {conc} | {rps} | {fnum(ra, '{:.2f}')} | {fnum(rb, '{:.2f}')} | "
            f"{fnum(s['thr_p50'])} / {fnum(s['thr_p99'])} | {fnum(s['p50'])} / {fnum(s['p99'])} | "
            f"{fnum(dp, '{:+.0f}')} | {fnum(s['cpu'], '{:.1f}')} | {fnum(1e6 / s['cpu'] if s['cpu'] else None)} | "
            f"{fnum(s['rss'], '{:.0f}')} | {s['rounds']} |")
    legend = [f"- **{k}**: {v}" for k, v in titles.items()]
    return "\n".join(lines), "\n".join(legend)


# ---------------------------------------------------------------------------------------------
# bridge


def bridge_summary(results):
    pts = [p for p in results.get("bridge", {}).get("points", []) if "error" not in p]
    by = {}
    for p in pts:
        by.setdefault(p["target"], []).append(p)
    s = {}
    for name, ps in by.items():
        s[name] = {f"c{c}_{m}": med(p[f"c{c}"].get(m) for p in ps) for c in (1, 8)
                   for m in ("rps", "p50_us", "p99_us", "cpu_us_per_req")}
        s[name]["bad"] = sum(p[f"c{c}"].get("bad", 0) + p[f"c{c}"].get("errors", 0) for p in ps for c in (1, 8))
        s[name]["rounds"] = len(ps)
    return s


def bridge_table(results):
    s = bridge_summary(results)
    titles = results.get("bridge", {}).get("titles", {})
    order = [t for t in titles if t in s]
    lines = ["| target | c=1 rps | c=1 p50 / p99 µs | c=8 rps | c=8 p50 / p99 µs | CPU µs/req (c=8) | bad+errors "
             "| rounds |", "|---|---|---|---|---|---|---|---|"]
    for t in order:
        x = s[t]
        lines.append(f"| {titles.get(t, t)} | {fnum(x['c1_rps'])} | {fnum(x['c1_p50_us'])} / {fnum(x['c1_p99_us'])} | "
                     f"{fnum(x['c8_rps'])} | {fnum(x['c8_p50_us'])} / {fnum(x['c8_p99_us'])} | "
                     f"{fnum(x['c8_cpu_us_per_req'], '{:.0f}')} | {x['bad']} | {x['rounds']} |")
    errors = [f"- {p['target']} round {p['round']}: {p['error'][:300]}"
              for p in results.get("bridge", {}).get("points", []) if "error" in p]
    return "\n".join(lines), errors


def bridge_targets(results):
    s = bridge_summary(results)
    t = []
    peers = [p for p in PEERS if p in s]
    if "ours" not in s or not peers:
        return t
    cheapest = min(peers, key=lambda p: s[p]["c8_cpu_us_per_req"] or float("inf"))
    if s["ours"].get("c8_cpu_us_per_req") and s[cheapest].get("c8_cpu_us_per_req"):
        t.append({"target": "(info) bridge CPU per request vs the cheapest peer (c=8)",
                  "value": f"{s['ours']['c8_cpu_us_per_req']:.0f} vs {s[cheapest]['c8_cpu_us_per_req']:.0f} µs "
                           f"({cheapest}): {s[cheapest]['c8_cpu_us_per_req'] / s['ours']['c8_cpu_us_per_req']:.0f}× "
                           "less", "met": None})
    for c in (1, 8):
        best = max(peers, key=lambda p: s[p][f"c{c}_rps"] or 0)
        tight = min(peers, key=lambda p: s[p][f"c{c}_p99_us"] or float("inf"))
        ours = s["ours"]
        r = ours[f"c{c}_rps"] / s[best][f"c{c}_rps"] if s[best][f"c{c}_rps"] else None
        q = ours[f"c{c}_p99_us"] / s[tight][f"c{c}_p99_us"] if s[tight][f"c{c}_p99_us"] else None
        if r is not None:
            t.append({"target": f"bridge ≥ 3× the best peer's throughput (c={c})",
                      "value": f"{r:.1f}× {best}", "met": r >= 3})
        if q is not None:
            t.append({"target": f"bridge p99 ≤ ⅓ of the best peer's p99 (c={c})",
                      "value": f"{q:.2f}× {tight} ({ours[f'c{c}_p99_us']:.0f} vs {s[tight][f'c{c}_p99_us']:.0f} µs)",
                      "met": q <= 1 / 3})
    return t


# ---------------------------------------------------------------------------------------------
# chart


def draw_chart(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fs = filter_summary(results)
    bs = bridge_summary(results)
    cfgs = sorted({k[0] for k in fs}, key=cfg_key)
    concs = sorted({k[1] for k in fs})
    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2))
    ax = axes[0]
    w = 0.8 / max(1, len(concs))
    for i, c in enumerate(concs):
        xs = [j + i * w for j in range(len(cfgs))]
        ys = [fs.get((cfg, c), {}).get("rps") or 0 for cfg in cfgs]
        ax.bar(xs, ys, w, label=f"Envoy --concurrency {c}")
    ax.set_xticks([j + w * (len(concs) - 1) / 2 for j in range(len(cfgs))], cfgs)
    ax.set_title("Filter chains: throughput (16 connections)")
    ax.set_ylabel("requests/s")
    ax.legend(fontsize=8)
    ax = axes[1]
    c0 = concs[0] if concs else 1
    p50 = [fs.get((cfg, c0), {}).get("p50") or 0 for cfg in cfgs]
    p99 = [fs.get((cfg, c0), {}).get("p99") or 0 for cfg in cfgs]
    xs = range(len(cfgs))
    ax.bar([x - 0.2 for x in xs], p50, 0.4, label="p50")
    ax.bar([x + 0.2 for x in xs], p99, 0.4, label="p99")
    ax.set_xticks(list(xs), cfgs)
    ax.set_title(f"Filter chains: latency, 1 connection (--concurrency {c0})")
    ax.set_ylabel("µs")
    ax.legend(fontsize=8)
    ax = axes[2]
    names = [t for t in ("stdio", "ours", *PEERS) if t in bs]
    if names:
        xs = range(len(names))
        ax.bar([x - 0.2 for x in xs], [bs[n]["c1_rps"] or 0 for n in names], 0.4, label="rps c=1")
        ax.bar([x + 0.2 for x in xs], [bs[n]["c8_rps"] or 0 for n in names], 0.4, label="rps c=8")
        ax.set_xticks(list(xs), names, rotation=20, fontsize=8)
        ax.set_ylabel("requests/s")
        ax2 = ax.twinx()
        ax2.plot(list(xs), [(bs[n]["c8_p99_us"] or 0) / 1000 for n in names], "kD--", label="p99 c=8 (ms)")
        ax2.plot(list(xs), [(bs[n]["c8_p50_us"] or 0) / 1000 for n in names], "ko:", label="p50 c=8 (ms)")
        ax2.set_ylabel("ms")
        ax2.set_yscale("log")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper right")
    ax.set_title("Bridges: tools/call on one session")
    fig.suptitle(f"make bench — {results.get('started', '')} — {results.get('host', {}).get('cpu', '')}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def chart(results, out):
    path = os.path.join(out, "chart.png")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        if os.path.exists(BENCH_VENV_PY) and os.path.abspath(sys.executable) != os.path.abspath(BENCH_VENV_PY):
            p = subprocess.run([BENCH_VENV_PY, os.path.abspath(__file__), "--chart-only",
                                os.path.join(out, "results.json"), out], capture_output=True, text=True)
            if p.returncode == 0 and os.path.exists(path):
                return path, None
            return None, p.stderr.strip()[-300:]
        return None, "matplotlib not installed (bench/setup.sh installs it into .deps/bench/venv)"
    draw_chart(results, path)
    return path, None


# ---------------------------------------------------------------------------------------------


def write(results, out):
    os.makedirs(out, exist_ok=True)
    png, chart_err = chart(results, out)
    md = [f"# make bench — {results.get('started', '?')}", ""]
    host = results.get("host", {})
    md.append(f"Host: {host.get('cpu', '?')}, {host.get('cpus', '?')} CPUs, load average at start "
              f"{' '.join(host.get('loadavg_at_start', []))}; git {results.get('git', '?')}; "
              f"total {results.get('elapsed_s', '?')} s. Loopback only. Numbers on a shared 2-core machine are "
              "noisy: read the ratios (taken within one round), not the absolute values.")
    md.append("")
    targets = filter_targets(results) + bridge_targets(results)
    if targets:
        md += ["## Targets", "", "| target | measured | met |", "|---|---|---|"]
        md += [f"| {t['target']} | {t['value']} | {'–' if t['met'] is None else 'yes' if t['met'] else '**no**'} |"
               for t in targets]
        md.append("")
    if png:
        md += ["![throughput and latency](chart.png)", ""]
    elif chart_err:
        md += [f"(chart not drawn: {chart_err})", ""]
    f = results.get("filter")
    if f:
        m = f["method"]
        table, legend = filter_table(results)
        md += ["## Filter chains (Envoy)", "",
               f"Envoy {f.get('envoy', '?')}; wasm {fnum(f.get('wasm_bytes'), '{:,}')} bytes. "
               f"Upstream: {m['upstream']}. Request: POST tools/call, {m['body_bytes']} B body, unique id per "
               f"request; credentials: X-API-Key (D, G), RS256 bearer JWT of {m['token_bytes']} B (C, E; F: "
               f"a different token every request, filter cache size 1). wrk -t1: {m['connections']} connections "
               f"for {m['duration_s']} s (throughput, CPU), then 1 connection for {m['latency_duration_s']} s "
               f"(latency), after {m['warmup_s']} s warm-up; fresh Envoy per point; {m['rounds']} interleaved "
               "rounds (the second in reverse order). --concurrency 1: Envoy pinned to CPU 0, wrk to CPU 1; "
               "--concurrency 2: unpinned. CPU µs/req: Envoy's CPU time (all threads, schedstat) during the "
               "16-connection run ÷ requests; req per CPU-s = 10⁶ ÷ that (what one fully available core would "
               "sustain: the steadier throughput measure on a shared machine). Ratios ×A/×B and +p50: within each round, then the median.",
               "", table, "", legend, ""]
        checks = {}
        for p in f.get("points", []):
            if p.get("checks"):
                checks.setdefault(p["config"], set()).add(
                    ", ".join(f"{k.replace('_', ' ')} → {v}" for k, v in sorted(p["checks"].items())))
        if checks:
            md += ["Enforcement checked before each point (expected 401 / 403): "
                   + "; ".join(f"{c}: {' / '.join(sorted(v))}" for c, v in sorted(checks.items())), ""]
        errs = [f"- {p['config']} c{p['concurrency']} round {p['round']}: {p['error'][:400]}"
                for p in f.get("points", []) if "error" in p]
        notes = [f"- {p['config']} c{p['concurrency']} round {p['round']}: {p['note']}"
                 for p in f.get("points", []) if p.get("note")]
        if errs or notes:
            md += ["Errors and notes:", ""] + errs + notes + [""]
    b = results.get("bridge")
    if b:
        table, errors = bridge_table(results)
        md += ["## Bridges (stdio → Streamable HTTP)", "",
               f"Same SDK-free echo stdio server behind every bridge; wrk -t1 on one session "
               f"(MCP-Protocol-Version {b['method']['protocol']}), tools/call echo with a unique id per request, "
               f"{b['method']['duration_s']} s per point, c=1 and c=8, {b['method']['rounds']} interleaved rounds "
               "(medians). Bad = 200 without a result or with isError. The floor drives the server over "
               "its own stdin/stdout from Python (window 1 / 8). CPU µs/req: CPU time of the bridge's process "
               "group (bridge and helpers, without the echo server) during the c=8 run ÷ requests — steadier than "
               "rps when the machine is shared.", "", table, ""]
        if errors:
            md += ["Errors:", ""] + errors + [""]
    mi = results.get("micro")
    if mi:
        md += ["## Native micro-benchmarks (`cargo run --release --example microbench`)", "",
               mi.get("table", "").strip(), ""]
        if mi.get("error"):
            md += ["```", mi["error"][-1200:], "```", ""]
    mw = results.get("micro_wasm")
    if mw:
        md += ["## The scorer inside wasm (`node bench/wasm_scorer.mjs dist/mcp-scan.wasm`)", ""]
        md += [f"- {case}: {us:.1f} µs per call" for case, us in mw.get("us_per_call", {}).items()]
        md += [f"- error: {mw['error'][-600:]}"] if mw.get("error") else []
        md += [""]
    with open(os.path.join(out, "report.md"), "w") as fh:
        fh.write("\n".join(md) + "\n")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--chart-only":
        with open(sys.argv[2]) as fh:
            draw_chart(json.load(fh), os.path.join(sys.argv[3], "chart.png"))
        sys.exit(0)
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "bench", "results.json")
    out = sys.argv[2] if len(sys.argv) > 2 else os.path.dirname(src)
    with open(src) as fh:
        write(json.load(fh), out)
    print(os.path.join(out, "report.md"))
