#!/usr/bin/env python3
"""`make bench`: filter, bridge and native micro-benchmarks on loopback, bounded in time.

Writes target/bench/results.json, target/bench/report.md and target/bench/chart.png.

Filter: Envoy chains A-G (bench/envoycfg.py) at --concurrency 1 and 2, each measured in
`--rounds` interleaved rounds (round 2 runs the configurations in reverse order). Per point a
fresh Envoy is started, checked with one request, warmed up, then driven by wrk twice: with
16 connections (throughput, CPU per request) and with 1 connection (latency).
Bridge: bench/bridges.py. Micro: `cargo run --release --example microbench`.

Usage: bench/run.py [--quick] [--only filter,bridge,micro] [--configs A,B,C] [--rounds N]
BENCH_WASM=path/to/other.wasm measures another build of the filter in the D-G chains.
"""
import argparse
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import envoycfg  # noqa: E402

OUT = os.path.join(ROOT, "target", "bench")
WORK = os.path.join(OUT, "work")
LUA = os.path.join(HERE, "load.lua")
WASM = os.environ.get("BENCH_WASM") or os.path.join(ROOT, "dist", "mcp_gateway.wasm")
ALL_CONFIGS = ["A", "B", "C", "D0", "DN", "D", "E", "F", "G"]
CONFIG_TITLES = {
    "A": "buffer + router (floor)",
    "B": "A + body_size_limit + native mcp (reject, no duplicate keys)",
    "C": "B + native jwt_authn RS256 + rbac on mcp metadata + local_ratelimit",
    "D0": "B + mcp-gateway wasm with every feature off (glue floor: auth, RBAC, limits, scoring off)",
    "DN": "D without injection scoring (API key, RBAC, rate limit): D − DN is the scoring cost in the wasm",
    "D": "B + mcp-gateway wasm: API key, RBAC, rate limit, injection scoring",
    "E": "D with RS256 JWT (same token: cached)",
    "F": "E with a new token every request (uncached)",
    "G": "D + response scanning of a 10 KB tools/call result",
}
N_TOKENS = 1000


def log(msg):
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def envoy_binary():
    env = os.environ.get("ENVOY")
    if env and os.path.exists(env):
        return env
    for cand in (os.path.join(ROOT, ".venv", "bin", "envoy"), shutil.which("envoy")):
        if cand and os.path.exists(cand):
            return cand
    raise SystemExit("envoy not found: run `make deps` (or set ENVOY)")


# ---------------------------------------------------------------------------------------------
# process accounting


def proc_cpu_ns(pid):
    """CPU time of all threads of `pid` in ns (schedstat; falls back to utime+stime ticks)."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        return total
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def proc_rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def taskset(cpus):
    if cpus is None or not shutil.which("taskset"):
        return []
    return ["taskset", "-c", cpus]


# ---------------------------------------------------------------------------------------------
# wrk


def run_wrk(url, conns, seconds, env, cpus=None):
    """Runs wrk with bench/load.lua; returns the parsed BENCH_JSON dict plus rps."""
    cmd = taskset(cpus) + ["wrk", "-t1", f"-c{conns}", f"-d{max(1, int(round(seconds)))}s", "--timeout", "5s", "-s", LUA, url]
    full_env = dict(os.environ, **env)
    p = subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=seconds + 30)
    for line in p.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            r = json.loads(line[len("BENCH_JSON "):])
            secs = r["duration_us"] / 1e6 if r["duration_us"] else seconds
            r["rps"] = r["requests"] / secs if secs else 0.0
            r["errors"] = sum(r[k] for k in ("err_connect", "err_read", "err_write", "err_status", "err_timeout"))
            return r
    raise RuntimeError(f"wrk failed (rc {p.returncode}): {p.stderr.strip()[:300]} {p.stdout.strip()[:300]}")


# ---------------------------------------------------------------------------------------------
# credentials


def make_credentials():
    """API key, RSA key + JWKS, one cached token and N distinct tokens (files for load.lua)."""
    import base64

    import jwt  # PyJWT
    from cryptography.hazmat.primitives.asymmetric import rsa

    os.makedirs(WORK, exist_ok=True)
    api_key = "sk-bench-" + secrets.token_hex(16)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub = key.public_key().public_numbers()

    def b64u_int(n):
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    jwk = {"kty": "RSA", "kid": "bench-1", "alg": "RS256", "use": "sig", "n": b64u_int(pub.n), "e": b64u_int(pub.e)}
    now = int(time.time())

    def mint(i):
        claims = {"iss": envoycfg.ISSUER, "aud": envoycfg.AUDIENCE, "sub": envoycfg.CLIENT_ID,
                  "iat": now, "nbf": now - 60, "exp": now + 7200, "jti": f"bench-{i}",
                  "scope": "mcp:tools", "roles": ["analyst"]}
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "bench-1"})

    files = {}

    def write(name, lines):
        path = os.path.join(WORK, name)
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        files[name] = path
        return path

    write("apikey.txt", [api_key])
    one = mint(0)
    write("jwt1.txt", ["Bearer " + one])
    t0 = time.time()
    write("jwtN.txt", ["Bearer " + mint(i) for i in range(1, N_TOKENS + 1)])
    log(f"minted {N_TOKENS} RS256 tokens in {time.time() - t0:.1f}s")
    return {
        "api_key": api_key,
        "api_key_sha256": hashlib.sha256(api_key.encode()).hexdigest(),
        "jwk": jwk,
        "jwks_json": json.dumps({"keys": [jwk]}),
        "token_len": len(one),
        "files": files,
    }


def gateway_configs(creds):
    """The mcp-gateway filter configuration of D-G (JSON under the wasm `configuration`)."""
    allow = ["*/" + envoycfg.BENCH_TOOL]  # backend glob `*`: a direct_response route has no cluster
    auth_key = {"enabled": True, "api_keys": [{
        "key_sha256": creds["api_key_sha256"], "client_id": envoycfg.CLIENT_ID, "roles": ["analyst"]}]}
    jwt_cfg = {"issuer": envoycfg.ISSUER, "audiences": [envoycfg.AUDIENCE], "algorithms": ["RS256"],
               "jwks": {"keys": [creds["jwk"]]}}
    authorization = {"roles": {"analyst": allow}}
    huge = {"requests_per_sec": 1_000_000, "burst_size": 1_000_000}
    rate_limit = {"enabled": True, "default_per_client": huge}
    injection = {"enabled": True, "block_threshold": 0.5, "warn_threshold": 0.3, "request_action": "block",
                 "response_action": "off"}
    d = {"security": {"auth": auth_key, "authorization": authorization, "rate_limit": rate_limit,
                      "injection": injection}}
    e = json.loads(json.dumps(d))
    e["security"]["auth"] = {"enabled": True, "jwt": dict(jwt_cfg)}
    f = json.loads(json.dumps(e))
    f["security"]["auth"]["jwt"]["cache_size"] = 1
    g = json.loads(json.dumps(d))
    g["security"]["injection"]["response_action"] = "block"
    d0 = {"security": {"auth": {"enabled": False}, "authorization": {"default": "allow"},
                       "rate_limit": {"enabled": False}, "injection": {"enabled": False}}}
    dn = json.loads(json.dumps(d))
    dn["security"]["injection"]["enabled"] = False
    return {"D0": d0, "DN": dn, "D": d, "E": e, "F": f, "G": g}


def load_env(name, creds):
    """load.lua environment of configuration `name`."""
    env = {"BENCH_MODE": "filter", "BENCH_PATH": "/mcp"}
    if name in ("D0", "DN", "D", "G"):
        env.update(BENCH_AUTH_HEADER="X-API-Key", BENCH_AUTH_FILE=creds["files"]["apikey.txt"])
    elif name in ("C", "E"):
        env.update(BENCH_AUTH_HEADER="Authorization", BENCH_AUTH_FILE=creds["files"]["jwt1.txt"])
    elif name == "F":
        env.update(BENCH_AUTH_HEADER="Authorization", BENCH_AUTH_FILE=creds["files"]["jwtN.txt"])
    return env


def first_line(path):
    with open(path) as f:
        return f.readline().strip()


# ---------------------------------------------------------------------------------------------
# Envoy


class Envoy:
    def __init__(self, name, concurrency, ctx, cpus):
        self.name = name
        self.concurrency = concurrency
        self.port = free_port()
        self.admin = free_port()
        tag = f"{name}-c{concurrency}-{self.port}"
        self.cfg_path = os.path.join(WORK, f"envoy-{tag}.json")
        self.log_path = os.path.join(WORK, f"envoy-{tag}.log")
        with open(self.cfg_path, "w") as f:
            json.dump(envoycfg.bootstrap(name, ctx, self.port, self.admin), f, indent=1)
        self.cpus = cpus
        self.proc = None

    def start(self, timeout=60):
        logf = open(self.log_path, "w")
        cmd = taskset(self.cpus) + [ENVOY, "-c", self.cfg_path, "--concurrency", str(self.concurrency),
                                    "--disable-hot-restart", "-l", "warning"]
        self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        logf.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"envoy {self.name} exited: {log_errors(self.log_path)}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"envoy {self.name} not ready after {timeout}s: {log_errors(self.log_path)}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def pid(self):
        return self.proc.pid


def log_errors(path, n=3):
    """The first error/critical lines of an Envoy log (the useful ones), else its tail."""
    try:
        with open(path, errors="replace") as f:
            lines = [ln.strip() for ln in f if ("][error][" in ln or "][critical][" in ln)]
    except OSError:
        return ""
    return " | ".join(ln.split("] ", 2)[-1][:400] for ln in lines[:n]) or tail(path, 600)


def tail(path, n=1500):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


def probe(port, env, tool=envoycfg.BENCH_TOOL, creds=True):
    """One request as load.lua would send it; returns (status, body)."""
    body = json.dumps({"jsonrpc": "2.0", "id": "probe-1", "method": "tools/call",
                       "params": {"name": tool, "arguments": {"field_01": "Quarterly revenue"}}})
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-06-18"}
    if creds and env.get("BENCH_AUTH_FILE"):
        headers[env["BENCH_AUTH_HEADER"]] = first_line(env["BENCH_AUTH_FILE"])
    req = urllib.request.Request(f"http://127.0.0.1:{port}/mcp", data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def enforcement_checks(name, port, env):
    """Proves the chain enforces what it claims: no credentials -> 401, unlisted tool -> 403."""
    checks = {}
    if name in ("C", "D", "E", "F", "G"):
        checks["no_credentials"] = probe(port, env, creds=False)[0]
        checks["unlisted_tool"] = probe(port, env, tool="drop_all_tables")[0]
    return checks


def envoy_stats(admin):
    want = ("http.bench.downstream_cx_total", "http.bench.downstream_rq_total", "http.bench.downstream_rq_2xx",
            "http.bench.downstream_rq_4xx", "http.bench.downstream_rq_5xx")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/stats?filter=^http.bench.downstream_(cx|rq)_",
                                    timeout=5) as r:
            text = r.read().decode()
    except (urllib.error.URLError, OSError):
        return {}
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(": ")
        if k in want:
            out[k.rsplit(".", 1)[1]] = int(v)
    return out


def measure_filter_point(name, conc, rnd, ctx, creds, opts):
    cpus = "0" if conc == 1 else None
    wrk_cpus = "1" if conc == 1 else None
    env = load_env(name, creds)
    point = {"config": name, "concurrency": conc, "round": rnd}
    ev = Envoy(name, conc, ctx, cpus)
    try:
        t0 = time.time()
        ev.start()
        point["startup_s"] = round(time.time() - t0, 2)
        status, body = probe(ev.port, env)
        if status != 200:
            raise RuntimeError(f"probe answered {status}: {body[:300]}")
        point["checks"] = enforcement_checks(name, ev.port, env)
        if name == "G" and len(body) < 8000:
            point["note"] = f"response body {len(body)} bytes (redacted?)"
        url = f"http://127.0.0.1:{ev.port}/mcp"
        run_wrk(url, opts.conns, opts.warmup, env, wrk_cpus)
        c0 = proc_cpu_ns(ev.pid)
        thr = run_wrk(url, opts.conns, opts.duration, env, wrk_cpus)
        c1 = proc_cpu_ns(ev.pid)
        lat = run_wrk(url, 1, opts.lat_duration, env, wrk_cpus)
        point["rss_kib"] = proc_rss_kib(ev.pid)
        point["envoy_stats"] = envoy_stats(ev.admin)
        point["throughput"] = thr
        point["latency"] = lat
        if c0 is not None and c1 is not None and thr["requests"]:
            point["cpu_us_per_req"] = (c1 - c0) / 1000 / thr["requests"]
            point["cpu_util"] = (c1 - c0) / 1e9 / (thr["duration_us"] / 1e6)
        if thr["errors"] or lat["errors"]:
            point["note"] = (point.get("note", "") + f" errors: {thr['errors']}+{lat['errors']}").strip()
        log(f"{name} c{conc} r{rnd}: {thr['rps']:.0f} rps, p50 {lat['p50_us']} us, p99 {lat['p99_us']} us, "
            f"cpu {point.get('cpu_us_per_req', 0):.1f} us/req, rss {point['rss_kib']} KiB")
    except Exception as e:  # noqa: BLE001 - one failing configuration must not stop the run
        point["error"] = str(e)[:800]
        log(f"{name} c{conc} r{rnd}: ERROR {point['error'][:300]}")
    finally:
        ev.stop()
    return point


def run_filter(opts, results):
    configs = [c for c in opts.configs if c in ALL_CONFIGS]
    needs_wasm = [c for c in configs if c.startswith("D") or c in ("E", "F", "G")]
    if needs_wasm and not os.path.exists(WASM):
        log(f"{WASM} missing: run `make build`; skipping {needs_wasm}")
        configs = [c for c in configs if c not in needs_wasm]
    creds = make_credentials()
    ctx = {"wasm": WASM, "jwks_json": creds["jwks_json"], "gateway_configs": gateway_configs(creds)}
    results["filter"] = {
        "method": {"connections": opts.conns, "duration_s": opts.duration, "latency_duration_s": opts.lat_duration,
                   "warmup_s": opts.warmup, "rounds": opts.rounds, "concurrency": opts.envoy_conc,
                   "upstream": "direct_response after the buffer filter", "token_bytes": creds["token_len"],
                   "body_bytes": request_body_bytes(), "argument_text_bytes": argument_text_bytes()},
        "titles": CONFIG_TITLES,
        "gateway_configs": redact_configs(ctx["gateway_configs"]),
        "wasm_bytes": os.path.getsize(WASM) if os.path.exists(WASM) else None,
        "envoy": envoy_version(),
        "points": [],
    }
    for rnd in range(1, opts.rounds + 1):
        order = configs if rnd % 2 else list(reversed(configs))
        for conc in opts.envoy_conc:
            for name in order:
                if over_budget(opts, opts.filter_budget):
                    log("time budget reached: skipping the remaining filter points")
                    return
                results["filter"]["points"].append(measure_filter_point(name, conc, rnd, ctx, creds, opts))


def redact_configs(cfgs):
    s = json.dumps(cfgs)
    return json.loads(s)


def load_texts():
    """The argument strings load.lua puts into each request."""
    texts = []
    with open(LUA) as f:
        src = f.read()
    start = src.index("local texts = {")
    end = src.index("}", start)
    for line in src[start:end].splitlines()[1:]:
        line = line.strip().rstrip(",")
        if line.startswith('"'):
            texts.append(json.loads(line))
    return texts


def argument_text_bytes():
    # What the scorer reads per request: the argument strings (UTF-8), not the JSON around them.
    return sum(len(t.encode()) for t in load_texts())


def request_body_bytes():
    # The body load.lua builds for the filter benchmark (id "1-100004").
    texts = load_texts()
    args = ",".join(f'"field_{i:02d}":"{t}"' for i, t in enumerate(texts, 1))
    body = ('{"jsonrpc":"2.0","id":"1-100004","method":"tools/call","params":{"name":"'
            + envoycfg.BENCH_TOOL + '","arguments":{' + args + '},"_meta":{"progressToken":null}}}')
    return len(body)


def envoy_version():
    try:
        out = subprocess.run([ENVOY, "--version"], capture_output=True, text=True, timeout=20).stdout
        return out.strip().split("version:")[-1].strip()[:120]
    except (OSError, subprocess.SubprocessError):
        return None


START = time.time()


def over_budget(opts, limit=None):
    return time.time() - START > (limit or opts.budget)


# ---------------------------------------------------------------------------------------------
# micro-benchmarks


def run_micro(opts, results):
    build = ["cargo", "build", "--quiet", "--release", "--example", "microbench"]
    log("micro: " + " ".join(build))
    t0 = time.time()
    try:
        p = subprocess.run(build, cwd=ROOT, capture_output=True, text=True, timeout=480)
    except subprocess.TimeoutExpired:
        results["micro"] = {"error": "cargo build timed out"}
        return
    if p.returncode != 0:
        results["micro"] = {"error": p.stderr.strip()[-1500:]}
        log("micro build failed: " + p.stderr.strip()[-500:])
        return
    results["micro_build_s"] = round(time.time() - t0, 1)
    exe = os.path.join(ROOT, "target", "release", "examples", "microbench")
    cmd = [exe, "--json"] + (["--quick"] if opts.quick else [])
    try:
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        results["micro"] = {"error": "microbench timed out after 120 s"}
        return
    rows = []
    for line in p.stdout.splitlines():
        if line.startswith("MICRO_JSON "):
            rows.append(json.loads(line[len("MICRO_JSON "):]))
    results["micro"] = {"rows": rows, "table": "\n".join(ln for ln in p.stdout.splitlines()
                                                          if not ln.startswith("MICRO_JSON "))}
    if p.returncode != 0:
        results["micro"]["error"] = p.stderr.strip()[-1500:]
        log("micro failed: " + p.stderr.strip()[-500:])


WASM_SCORER_LINE = re.compile(r"^(.+?): ([0-9.]+) µs per call")


def run_wasm_scorer(results, runs=3):
    """`mcp-scan --bench` built for wasm32-wasip1, in Node's V8 (bench/wasm_scorer.mjs): the
    scorer's cost inside a wasm VM. Median of `runs` runs per case."""
    exe = os.path.join(ROOT, "dist", "mcp-scan.wasm")
    node = shutil.which("node")
    if not (node and os.path.exists(exe)):
        results["micro_wasm"] = {"error": "needs node and dist/mcp-scan.wasm (make bench builds it)"}
        return
    per_case = {}
    for _ in range(runs):
        p = subprocess.run([node, "--no-warnings", os.path.join(HERE, "wasm_scorer.mjs"), exe],
                           capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            results["micro_wasm"] = {"error": p.stderr.strip()[-1500:]}
            return
        for line in p.stdout.splitlines():
            m = WASM_SCORER_LINE.match(line)
            if m:
                per_case.setdefault(m.group(1), []).append(float(m.group(2)))
    results["micro_wasm"] = {"us_per_call": {k: statistics.median(v) for k, v in per_case.items()},
                             "runs": runs, "node": subprocess.run([node, "--version"], capture_output=True,
                                                                  text=True).stdout.strip()}
    log(f"micro wasm: {results['micro_wasm']['us_per_call']}")


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short points, one round (development)")
    ap.add_argument("--only", default="filter,bridge,micro")
    ap.add_argument("--configs", default=",".join(ALL_CONFIGS))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--duration", type=float, default=3.0, help="seconds of the 16-connection run per point")
    ap.add_argument("--lat-duration", type=float, default=1.0, help="seconds of the 1-connection run per point")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--envoy-concurrency", default="1,2")
    ap.add_argument("--bridge-duration", type=float, default=3.0, help="seconds per bridge point")
    ap.add_argument("--bridge-targets", default="stdio,ours,supergateway,mcp-proxy-npm,mcp-proxy-pypi")
    ap.add_argument("--budget", type=float, default=540.0, help="seconds after which remaining points are skipped")
    ap.add_argument("--filter-budget", type=float, default=400.0,
                    help="seconds after which remaining filter points are skipped (time left for the bridges)")
    opts = ap.parse_args()
    opts.configs = [c.strip().upper() for c in opts.configs.split(",") if c.strip()]
    opts.envoy_conc = [int(c) for c in opts.envoy_concurrency.split(",")]
    opts.only = set(opts.only.split(","))
    opts.bridge_targets = [t.strip() for t in opts.bridge_targets.split(",") if t.strip()]
    if opts.quick:
        opts.rounds = 1
        opts.duration, opts.lat_duration, opts.warmup = 2.0, 1.0, 1.0
        opts.bridge_duration = 2.0

    global ENVOY
    ENVOY = envoy_binary()
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install -y wrk (bench/setup.sh does it)")
    os.makedirs(WORK, exist_ok=True)
    results = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "host": host_info(),
               "git": git_rev()}
    # Native micro-benchmarks first: they need the machine quiet, and cargo may compile.
    if "micro" in opts.only:
        run_micro(opts, results)
        run_wasm_scorer(results)
        save(results)
    if "filter" in opts.only:
        run_filter(opts, results)
        save(results)
    if "bridge" in opts.only:
        import bridges
        bridges.run(opts, results, log=log, run_wrk=run_wrk, over_budget=lambda: over_budget(opts), work=WORK)
        save(results)
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results["elapsed_s"] = round(time.time() - START, 1)
    save(results)
    import report
    results["targets"] = report.filter_targets(results) + report.bridge_targets(results)
    save(results)
    report.write(results, OUT)
    log(f"done in {results['elapsed_s']}s: {OUT}/report.md")


def save(results):
    os.makedirs(OUT, exist_ok=True)
    tmp = os.path.join(OUT, "results.json.tmp")
    with open(tmp, "w") as f:
        json.dump(results, f, indent=1)
    os.replace(tmp, os.path.join(OUT, "results.json"))


def host_info():
    info = {"cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/loadavg") as f:
            info["loadavg_at_start"] = f.read().split()[:3]
    except OSError:
        pass
    return info


def git_rev():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


ENVOY = None

if __name__ == "__main__":
    main()
