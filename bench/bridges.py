"""Bridge benchmark: tools/call on one session through stdio->HTTP bridges.

Every bridge fronts the same SDK-free echo server (bench/echo_server.py). Per target and round:
start the bridge, open one session (initialize + notifications/initialized), check one call,
warm up, then wrk with 1 and 8 connections on that session (unique JSON-RPC id per request,
200 responses without a result counted as bad). The floor is the echo server driven directly
over its stdin/stdout by bench/stdio_floor.py.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEPS = os.path.join(ROOT, ".deps", "bench")
NM = os.path.join(DEPS, "npm", "node_modules")
ECHO = os.path.join(HERE, "echo_server.py")
PROTO = "2025-06-18"

TITLES = {
    "stdio": "echo server over its own stdio (floor)",
    "ours": "mcp-stdio-bridge (this project)",
    "supergateway": "supergateway 4.0.0 --stateful (streamableHttp)",
    "mcp-proxy-npm": "npm mcp-proxy 6.7.19",
    "mcp-proxy-pypi": "PyPI mcp-proxy 0.13.0",
}


def python():
    return shutil.which("python3") or sys.executable


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def target_command(name, port, work):
    """(argv, url) of a bridge target, or (None, reason) when it is not installed."""
    echo = [python(), ECHO]
    if name == "ours":
        exe = os.environ.get("BENCH_BRIDGE_BIN") or os.path.join(ROOT, "dist", "mcp-stdio-bridge")
        if not os.path.exists(exe):
            return None, "dist/mcp-stdio-bridge missing (make build)"
        cfg = {"listen": f"127.0.0.1:{port}", "servers": {"echo": {"command": echo[0], "args": echo[1:]}}}
        path = os.path.join(work, f"bridge-{port}.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        return [exe, "--config", path, "--log-level", "warn"], f"http://127.0.0.1:{port}/echo/mcp"
    node = shutil.which("node")
    if name == "supergateway":
        js = os.path.join(NM, "supergateway", "dist", "index.js")
        if not (node and os.path.exists(js)):
            return None, "supergateway not installed (bench/setup.sh)"
        return ([node, js, "--stdio", " ".join(echo), "--outputTransport", "streamableHttp", "--stateful",
                 "--port", str(port), "--logLevel", "none"], f"http://127.0.0.1:{port}/mcp")
    if name == "mcp-proxy-npm":
        js = os.path.join(NM, "mcp-proxy", "dist", "bin", "mcp-proxy.mjs")
        if not (node and os.path.exists(js)):
            return None, "npm mcp-proxy not installed (bench/setup.sh)"
        return [node, js, "--host", "127.0.0.1", "--port", str(port), "--", *echo], f"http://127.0.0.1:{port}/mcp"
    if name == "mcp-proxy-pypi":
        exe = os.path.join(DEPS, "venv", "bin", "mcp-proxy")
        if not os.path.exists(exe):
            return None, "PyPI mcp-proxy not installed (bench/setup.sh)"
        return [exe, "--host", "127.0.0.1", "--port", str(port), "--", *echo], f"http://127.0.0.1:{port}/mcp"
    raise ValueError(name)


def group_cpu_ns(pgid, exclude="echo_server.py"):
    """CPU time (ns) of every process in process group `pgid` except the echo upstream."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            if len(argv) > 1 and argv[1].endswith(exclude.encode()):
                continue  # `python3 echo_server.py` (a bridge may name it in its own argv)
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total


def post(url, msg, session=None, timeout=10):
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": PROTO}
    if session:
        headers["Mcp-Session-Id"] = session
    req = urllib.request.Request(url, data=json.dumps(msg).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        body = r.read().decode(errors="replace")
        return r.status, r.headers.get("Mcp-Session-Id"), parse_body(body)


def parse_body(body):
    """A JSON body, or the first JSON-RPC message of an SSE body."""
    body = body.strip()
    if not body:
        return None
    if body.startswith("{") or body.startswith("["):
        return json.loads(body)
    for line in body.splitlines():
        if line.startswith("data:"):
            data = line[5:].strip()
            if data.startswith("{"):
                return json.loads(data)
    return None


def open_session(url, deadline, alive=lambda: True):
    init = {"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": PROTO, "capabilities": {},
                       "clientInfo": {"name": "bench", "version": "1.0"}}}
    last = None
    while time.time() < deadline:
        if not alive():
            raise RuntimeError(f"the bridge exited before answering ({last})")
        try:
            status, sid, reply = post(url, init)
            if status == 200 and reply and "result" in reply:
                post(url, {"jsonrpc": "2.0", "method": "notifications/initialized"}, sid)
                return sid, reply["result"].get("protocolVersion", PROTO)
            last = f"initialize answered {status}: {reply}"
        except (urllib.error.URLError, OSError, ValueError) as e:
            last = str(e)
        time.sleep(0.2)
    raise RuntimeError(f"no session: {last}")


class Proc:
    def __init__(self, argv, log_path):
        self.log_path = log_path
        logf = open(log_path, "w")
        self.p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  start_new_session=True, cwd=HERE)
        logf.close()

    def stop(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, signal.SIGTERM)
            except ProcessLookupError:
                return
            try:
                self.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait()


def measure_target(name, rnd, opts, log, run_wrk, work):
    point = {"target": name, "round": rnd}
    if name == "stdio":
        return measure_stdio(point, opts, log)
    port = free_port()
    argv, url = target_command(name, port, work)
    if argv is None:
        point["error"] = url
        return point
    proc = Proc(argv, os.path.join(work, f"bridge-{name}-{rnd}.log"))
    try:
        t0 = time.time()
        sid, proto = open_session(url, time.time() + 30, lambda: proc.p.poll() is None)
        point["startup_s"] = round(time.time() - t0, 2)
        status, _, reply = post(url, {"jsonrpc": "2.0", "id": "probe", "method": "tools/call",
                                      "params": {"name": "echo", "arguments": {"message": "probe"}}}, sid)
        if status != 200 or not reply or "result" not in reply:
            raise RuntimeError(f"tools/call probe answered {status}: {reply}")
        env = {"BENCH_MODE": "bridge", "BENCH_SESSION": sid or "", "BENCH_PROTO": proto, "BENCH_CHECK": "1"}
        run_wrk(url, 8, opts.warmup, env)
        for conns in (1, 8):
            c0 = group_cpu_ns(proc.p.pid)
            r = run_wrk(url, conns, opts.bridge_duration, env)
            c1 = group_cpu_ns(proc.p.pid)
            if r["requests"]:
                r["cpu_us_per_req"] = (c1 - c0) / 1000 / r["requests"]
            point[f"c{conns}"] = r
        log(f"bridge {name} r{rnd}: c1 {point['c1']['rps']:.0f} rps p50 {point['c1']['p50_us']} us "
            f"p99 {point['c1']['p99_us']} us | c8 {point['c8']['rps']:.0f} rps p50 {point['c8']['p50_us']} us "
            f"p99 {point['c8']['p99_us']} us | bad {point['c1']['bad'] + point['c8']['bad']}")
    except Exception as e:  # noqa: BLE001 - a failing peer must not stop the run
        point["error"] = f"{e}"[:600] + " | log: " + tail(proc.log_path)
        log(f"bridge {name} r{rnd}: ERROR {point['error'][:300]}")
    finally:
        proc.stop()
    return point


def measure_stdio(point, opts, log):
    out = {}
    for conns in (1, 8):
        p = subprocess.run([python(), os.path.join(HERE, "stdio_floor.py"), "--window", str(conns),
                            "--seconds", str(opts.bridge_duration), "--server", python(), ECHO],
                           capture_output=True, text=True, timeout=opts.bridge_duration + 30)
        line = [ln for ln in p.stdout.splitlines() if ln.startswith("{")]
        if p.returncode != 0 or not line:
            point["error"] = p.stderr.strip()[-400:]
            return point
        out[f"c{conns}"] = json.loads(line[-1])
    point.update(out)
    log(f"bridge stdio: c1 {out['c1']['rps']:.0f} rps p50 {out['c1']['p50_us']} us | "
        f"c8 {out['c8']['rps']:.0f} rps p99 {out['c8']['p99_us']} us")
    return point


def tail(path, n=600):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


def run(opts, results, log, run_wrk, over_budget, work):
    targets = [t for t in opts.bridge_targets if t in TITLES]
    results["bridge"] = {"titles": TITLES, "method": {"duration_s": opts.bridge_duration, "rounds": opts.rounds,
                                                      "protocol": PROTO, "connections": [1, 8]},
                         "points": []}
    for rnd in range(1, opts.rounds + 1):
        order = targets if rnd % 2 else list(reversed(targets))
        for name in order:
            if over_budget():
                log("time budget reached: skipping the remaining bridge points")
                return
            results["bridge"]["points"].append(measure_target(name, rnd, opts, log, run_wrk, work))
