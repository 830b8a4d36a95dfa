"""Fail-closed behaviour: every error path refuses, nothing reaches the backend unchecked.

The backend here is a recording HTTP server, so each test can assert exactly what was forwarded.

- error paths inside the filter (malformed JSON, duplicate keys, oversized bodies) are refused
  even with Envoy's own MCP parser and body-size filter removed from the chain;
- a VM that aborts (a TEST-ONLY filter in tests/fixtures/panicking-filter that panics on a
  header) is reloaded under FAIL_RELOAD, and requests while it is down are 5xx, never forwarded;
  FAIL_OPEN would have forwarded them (why envoy.yaml does not use it);
- an invalid configuration fails `envoy --mode validate` naming the key, and an invalid listener
  update pushed at runtime (file-based LDS) is rejected while the old filter keeps enforcing.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml

from harness import (DEMO_ADMIN_KEY, ENVOY, MCP_HEADERS, ROOT, WASM, Envoy, Proc, filter_config,
                     free_port, load_envoy_template, rpc, wait_until, wasm_filter, with_filter_config)

ADMIN = {**MCP_HEADERS, "authorization": f"Bearer {DEMO_ADMIN_KEY}"}
FIXTURE = ROOT / "tests" / "fixtures" / "panicking-filter"
NO_SCORING = with_filter_config({"security": {"injection": {"enabled": False}}})
PANIC_WASM = ROOT / "target" / "wasm" / "wasm32-wasip1" / "release" / "panicking_filter.wasm"


# --- a backend that records everything it receives ------------------------------------------------

class Recorder:
    """HTTP/1.1 backend answering every POST with an empty JSON-RPC result; keeps what it saw."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        lock = threading.Lock()
        rec = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _body(self) -> bytes:
                if "chunked" in self.headers.get("transfer-encoding", "").lower():
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("content-length") or 0))

            def _answer(self) -> None:
                body = self._body()
                with lock:
                    rec.seen.append({"method": self.command, "path": self.path,
                                     "headers": dict(self.headers), "body": body})
                try:
                    msg_id = json.loads(body).get("id", 1) if body else 1
                except (ValueError, AttributeError):
                    msg_id = 1
                out = json.dumps({"jsonrpc": "2.0", "id": msg_id, "result": {"content": []}}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_POST = do_GET = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self) -> int:
        return len(self.seen)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    r = Recorder()
    yield r
    r.stop()


def drop_filters(*names: str):
    """A `mutate` hook removing HTTP filters from the edge listener (to test the wasm alone).
    Injection scoring is off here: these tests are about refusals, not about the scorer."""

    def mutate(cfg: dict[str, Any]) -> None:
        NO_SCORING(cfg)
        for listener in cfg["static_resources"]["listeners"]:
            if listener["name"] == "mcp_edge":
                hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
                hcm["http_filters"] = [f for f in hcm["http_filters"] if f["name"] not in names]

    return mutate


def post(url: str, content: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(url, content=content, headers=headers or ADMIN, timeout=30)


def call(tool: str, id: int = 1) -> bytes:
    return json.dumps(rpc("tools/call", {"name": tool, "arguments": {"path": "/tmp/x"}}, id)).encode()


# --- 1. error paths inside the filter refuse ----------------------------------------------------

MALFORMED = {
    "not json": (b"{nope", -32700),
    "duplicate key": (b'{"jsonrpc":"2.0","id":1,"method":"tools/call",'
                      b'"params":{"name":"read_file","name":"move_file"}}', -32700),
    "trailing data": (b'{"jsonrpc":"2.0","id":1,"method":"tools/list"} {}', -32700),
    "not utf-8": (b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\xff\xfe"}}', -32700),
    "deep nesting": (b"[" * 100_000, -32700),
    "empty batch": (b"[]", -32600),
    "wrong version": (b'{"jsonrpc":"1.0","id":1,"method":"tools/list"}', -32600),
    "params not object": (b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"move_file"}', -32600),
}


def test_filter_alone_refuses_malformed_bodies(log_dir: Path, recorder: Recorder) -> None:
    """With Envoy's MCP parser and body limit removed, the wasm filter itself refuses."""
    e = Envoy(log_dir, recorder.port, name="envoy-wasm-only",
              mutate=drop_filters("envoy.filters.http.mcp", "envoy.filters.http.body_size_limit"))
    try:
        url = f"{e.url}/filesystem/mcp"
        for what, (body, code) in MALFORMED.items():
            r = post(url, body)
            assert r.status_code == 400, (what, r.status_code, r.text[:200])
            assert r.json()["error"]["code"] == code, (what, r.text[:200])
        assert recorder.count() == 0, [s["body"][:80] for s in recorder.seen]
        # A denied tool is refused before the backend; a well-formed allowed call does pass.
        assert post(url, call("move_file")).status_code == 403
        assert recorder.count() == 0
        r = post(url, call("read_file"))
        assert r.status_code == 200, r.text
        assert recorder.count() == 1 and b"read_file" in recorder.seen[0]["body"]
        # The client's identity headers never reach the backend as sent.
        post(url, call("read_file", 2), {**ADMIN, "x-mcp-client-id": "spoofed", "x-mcp-tool": "x"})
        fwd = {k.lower(): v for k, v in recorder.seen[-1]["headers"].items()}
        assert fwd.get("x-mcp-client-id") != "spoofed" and fwd.get("x-mcp-tool") == "read_file"
        assert "authorization" not in fwd
    finally:
        e.stop()


@pytest.mark.parametrize("chain", ["shipped", "wasm-only"])
def test_oversized_body_is_413_and_not_forwarded(log_dir: Path, recorder: Recorder, chain: str) -> None:
    mutate = NO_SCORING if chain == "shipped" else drop_filters("envoy.filters.http.mcp",
                                                          "envoy.filters.http.body_size_limit")
    e = Envoy(log_dir, recorder.port, name=f"envoy-413-{chain}", mutate=mutate)
    try:
        pad = "A" * (5 * 1024 * 1024)
        body = json.dumps(rpc("tools/call", {"name": "read_file", "arguments": {"path": pad}})).encode()
        r = post(f"{e.url}/filesystem/mcp", body)
        assert r.status_code == 413, (r.status_code, r.text[:200])
        # chunked upload (no content-length) too
        r = httpx.post(f"{e.url}/filesystem/mcp", content=iter([body[i:i + 65536] for i in range(0, len(body), 65536)]),
                       headers=ADMIN, timeout=30)
        assert r.status_code == 413, (r.status_code, r.text[:200])
        assert recorder.count() == 0
    finally:
        e.stop()


# --- 2. a VM that aborts -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def panic_wasm() -> Path:
    """Builds the TEST-ONLY panicking filter with the Makefile's wasm toolchain recipe."""
    # Same choice as the Makefile: rustup's wasm32-wasip1 when installed, else Debian's rustc-web
    # with -Zbuild-std. The shared target dir reuses the std the gateway's build compiled.
    target_dir = str(ROOT / "target" / "wasm")
    cmd = ["cargo", "build", "--release", "--target", "wasm32-wasip1", "--target-dir", target_dir]
    installed = subprocess.run(["rustup", "target", "list", "--installed"], capture_output=True, text=True)
    if "wasm32-wasip1" in installed.stdout.split():
        env = dict(os.environ)
    else:
        env = {**os.environ, "PATH": "/usr/bin:" + os.environ["PATH"], "RUSTC_BOOTSTRAP": "1",
               "RUSTFLAGS": "-L native=/usr/lib/wasm32-wasi -C link-self-contained=no"}
        cmd.append("-Zbuild-std=std,panic_abort")
    r = subprocess.run(cmd, cwd=FIXTURE, env=env, capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0 and PANIC_WASM.exists(), r.stderr[-3000:]
    return PANIC_WASM


def panic_envoy_config(wasm: Path, policy: str, port: int, admin_port: int, backend_port: int) -> dict[str, Any]:
    """Minimal Envoy: one listener, the test filter with envoy.yaml's wasm settings, a router."""
    shipped = wasm_filter(load_envoy_template())
    wasm_cfg = {
        "name": "panicking", "root_id": "panicking", "failure_policy": policy,
        "allow_on_headers_stop_iteration": shipped["allow_on_headers_stop_iteration"],
        "vm_config": {"vm_id": "panicking", "runtime": shipped["vm_config"]["runtime"],
                      "code": {"local": {"filename": str(wasm)}}},
    }
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [{
                "name": "edge", "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "edge",
                        "http_filters": [
                            {"name": "envoy.filters.http.wasm", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                                "config": wasm_cfg}},
                            {"name": "envoy.filters.http.router", "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
                        ],
                        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
                            {"match": {"prefix": "/"}, "route": {"cluster": "backend"}}]}]},
                    }}]}],
            }],
            "clusters": [{
                "name": "backend", "connect_timeout": "2s", "type": "STATIC",
                "load_assignment": {"cluster_name": "backend", "endpoints": [{"lb_endpoints": [{"endpoint": {
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": backend_port}}}}]}]},
            }],
        },
    }


def start_envoy(cfg: dict[str, Any], admin_port: int, log_dir: Path, name: str) -> Proc:
    path = log_dir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = Proc(name, [ENVOY, "-c", str(path), "--concurrency", "1", "--log-level", "warn",
                       "--disable-hot-restart", "--base-id", str(free_port())], log_dir, cwd=ROOT)

    def ready() -> bool:
        r = httpx.get(f"http://127.0.0.1:{admin_port}/ready", timeout=1)
        return r.status_code == 200 and r.text.strip() == "LIVE"

    wait_until(ready, 30, f"{name} ready", proc)
    return proc


def test_vm_panic_fail_reload_refuses_until_reloaded(log_dir: Path, recorder: Recorder, panic_wasm: Path) -> None:
    port, admin = free_port(), free_port()
    proc = start_envoy(panic_envoy_config(panic_wasm, "FAIL_RELOAD", port, admin, recorder.port),
                       admin, log_dir, "envoy-fail-reload")
    url = f"http://127.0.0.1:{port}/"
    try:
        with httpx.Client(timeout=10) as c:
            assert c.get(url).status_code == 200
            assert c.get(url, headers={"x-deny": "1"}).status_code == 403
            assert recorder.count() == 1 and recorder.seen[0]["headers"].get("x-filter-ran") == "1"

            r = c.get(url, headers={"x-panic": "1"})
            assert 500 <= r.status_code < 600, r.status_code
            statuses = []
            # During the reload backoff every request is refused, including ones the filter
            # would have denied; none is forwarded.
            first = c.get(url, headers={"x-deny": "1"})
            assert first.status_code >= 500, "request right after the abort was not refused"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                r = c.get(url)
                statuses.append(r.status_code)
                if r.status_code == 200:
                    break
                time.sleep(0.1)
            assert statuses and statuses[-1] == 200, f"VM never reloaded: {statuses}"
            assert all(s >= 500 for s in statuses[:-1]), statuses
            # Only the two successful requests reached the backend, both through a live filter.
            assert recorder.count() == 2, [s["headers"] for s in recorder.seen]
            assert all(s["headers"].get("x-filter-ran") == "1" for s in recorder.seen)
            # The reloaded VM enforces again.
            assert c.get(url, headers={"x-deny": "1"}).status_code == 403
            assert recorder.count() == 2
        stats = httpx.get(f"http://127.0.0.1:{admin}/stats", params={"filter": "reload"}, timeout=5).text
        print(f"FAIL_RELOAD: {len(statuses) - 1} refused request(s) during backoff; stats:\n{stats}")
    finally:
        proc.stop()


def test_fail_open_would_forward_unchecked(log_dir: Path, recorder: Recorder, panic_wasm: Path) -> None:
    """Documents why envoy.yaml uses FAIL_RELOAD: after an abort FAIL_OPEN skips the filter."""
    port, admin = free_port(), free_port()
    proc = start_envoy(panic_envoy_config(panic_wasm, "FAIL_OPEN", port, admin, recorder.port),
                       admin, log_dir, "envoy-fail-open")
    url = f"http://127.0.0.1:{port}/"
    try:
        with httpx.Client(timeout=10) as c:
            assert c.get(url, headers={"x-deny": "1"}).status_code == 403
            c.get(url, headers={"x-panic": "1"})
            r = c.get(url, headers={"x-deny": "1"})
        assert r.status_code == 200, "FAIL_OPEN no longer bypasses the filter; revisit SECURITY.md"
        assert recorder.count() >= 1 and "x-filter-ran" not in recorder.seen[-1]["headers"]
    finally:
        proc.stop()


# --- 3. invalid configuration --------------------------------------------------------------------

def write_envoy_yaml(log_dir: Path, name: str, update: dict[str, Any]) -> Path:
    cfg = load_envoy_template()
    wasm_filter(cfg)["vm_config"]["code"]["local"]["filename"] = str(WASM)
    fc = filter_config(cfg)
    for key, value in update.items():
        node = fc
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    path = log_dir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.mark.parametrize("update,named", [
    ({"security.injection.blok_threshold": 0.5}, "blok_threshold"),
    ({"backends": [{"name": "a"}, {"name": "a"}]}, "backends[1].name"),
    ({"backends": [{"name": "fs", "rate_limit": {"requests_per_sec": -1, "burst_size": 1}}]}, "requests_per_sec"),
])
def test_invalid_config_fails_validation_naming_the_key(log_dir: Path, update: dict[str, Any], named: str) -> None:
    path = write_envoy_yaml(log_dir, f"invalid-{named.replace('[', '_').replace(']', '_')}", update)
    r = subprocess.run([ENVOY, "--mode", "validate", "-c", str(path), "--log-level", "warn"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out[-2000:]
    assert named in out, out[-2000:]


def test_runtime_listener_update_with_bad_config_keeps_old_filter(log_dir: Path, recorder: Recorder) -> None:
    """File-based LDS: an invalid filter config pushed at runtime is rejected; the old filter,
    which denies `move_file`, keeps enforcing, and nothing is forwarded unchecked."""
    tmpl = load_envoy_template()
    listener = copy.deepcopy(next(x for x in tmpl["static_resources"]["listeners"] if x["name"] == "mcp_edge"))
    port, admin = free_port(), free_port()
    listener["address"]["socket_address"]["port_value"] = port
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["access_log"] = []
    hcm["route_config"]["virtual_hosts"][0]["routes"] = [
        r for r in hcm["route_config"]["virtual_hosts"][0]["routes"] if r["name"] != "aggregate"]
    wasm = next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.wasm")
    wasm["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"] = str(WASM)
    wasm["typed_config"]["config"]["configuration"]["value"]["security"]["injection"]["enabled"] = False

    lds_dir = log_dir / "lds"
    lds_dir.mkdir(exist_ok=True)
    lds_file = lds_dir / "lds.yaml"

    def push(l: dict[str, Any], version: str) -> None:
        doc = {"version_info": version,
               "resources": [{"@type": "type.googleapis.com/envoy.config.listener.v3.Listener", **l}]}
        tmp = lds_dir / f".lds-{version}.yaml"
        tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
        os.rename(tmp, lds_file)  # atomic move: what the watched directory expects

    push(listener, "v1")
    clusters = [c for c in tmpl["static_resources"]["clusters"] if c["name"] in ("filesystem", "everything")]
    for c in clusters:
        c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"][
            "port_value"] = recorder.port
    bootstrap = {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "node": {"id": "failclosed", "cluster": "test"},
        "dynamic_resources": {"lds_config": {"resource_api_version": "V3", "path_config_source": {
            "path": str(lds_file), "watched_directory": {"path": str(lds_dir)}}}},
        "static_resources": {"clusters": clusters},
    }
    path = log_dir / "envoy-lds.yaml"
    path.write_text(yaml.safe_dump(bootstrap, sort_keys=False))
    proc = Proc("envoy-lds", [ENVOY, "-c", str(path), "--concurrency", "2", "--log-level", "warn",
                              "--disable-hot-restart", "--base-id", str(free_port())], log_dir, cwd=ROOT)
    stats_url = f"http://127.0.0.1:{admin}/stats"

    def stat(name: str) -> int:
        for line in httpx.get(stats_url, params={"filter": name}, timeout=5).text.splitlines():
            k, _, v = line.partition(": ")
            if k == name:
                return int(v)
        return 0

    url = f"http://127.0.0.1:{port}/filesystem/mcp"
    try:
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200,
                   30, "LDS listener", proc)
        assert post(url, call("move_file")).status_code == 403
        assert post(url, call("read_file")).status_code == 200
        assert recorder.count() == 1

        # The update would drop the deny AND carries a misspelt key: it must not be applied.
        bad = copy.deepcopy(listener)
        bad_cfg = next(f for f in bad["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
                       if f["name"] == "envoy.filters.http.wasm")["typed_config"]["config"]["configuration"]["value"]
        bad_cfg["backends"] = [{"name": "filesystem"}, {"name": "everything"}]
        bad_cfg["security"]["injection"]["blok_threshold"] = 0.9
        rejected_before = stat("listener_manager.lds.update_rejected")
        push(bad, "v2-invalid")
        wait_until(lambda: stat("listener_manager.lds.update_rejected") > rejected_before, 30,
                   "LDS update rejected", proc)

        for i in range(5):
            r = post(url, call("move_file", 10 + i))
            assert r.status_code == 403, (r.status_code, r.text)
        assert recorder.count() == 1, "a denied call reached the backend after the bad update"
        assert post(url, call("read_file", 20)).status_code == 200
        assert recorder.count() == 2
        assert stat("listener_manager.lds.update_success") >= 1
    finally:
        proc.stop()
