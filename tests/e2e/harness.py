"""End-to-end harness: real Envoy, the real built wasm, the real bridge and real MCP servers.

Everything binds 127.0.0.1 on free ports. Processes run in their own process groups and are
torn down (SIGTERM, then SIGKILL) even when a test fails. The shipped envoy/envoy.yaml is the
template: tests change only ports, file paths and, when they need to, the filter configuration.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import time
from contextlib import closing
from pathlib import Path
from typing import Any, Callable

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "dist"
WASM = DIST / "mcp_gateway.wasm"
BRIDGE = DIST / "mcp-stdio-bridge"
NPM = ROOT / ".deps" / "npm" / "node_modules"
ENVOY = os.environ.get("ENVOY") or str(ROOT / ".venv" / "bin" / "envoy")
ENVOY_YAML = ROOT / "envoy" / "envoy.yaml"

DEMO_ADMIN_KEY = "sk-demo-admin"
DEMO_READER_KEY = "sk-demo-reader"


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], bool], timeout: float, what: str, proc: "Proc | None" = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            raise RuntimeError(f"{what}: process exited early\n{proc.tail()}")
        try:
            if check():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}" + (f"\n{proc.tail()}" if proc else ""))


class Proc:
    """A child process in its own process group, with its output in a log file."""

    def __init__(self, name: str, args: list[str], log_dir: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(
            args, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
        )

    def tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return f"--- last lines of {self.name} ---\n" + "\n".join(lines[-n:])

    def stop(self, grace: float = 5.0) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(5)
        self._log.close()


class Bridge:
    """mcp-stdio-bridge serving named stdio servers at /<name>/mcp."""

    def __init__(self, servers: dict[str, dict[str, Any]], log_dir: Path, port: int | None = None):
        self.port = port or free_port()
        cfg = {"listen": f"127.0.0.1:{self.port}", "servers": servers}
        self.config_path = log_dir / "bridge.json"
        self.config_path.write_text(json.dumps(cfg, indent=2))
        self.proc = Proc("bridge", [str(BRIDGE), "--config", str(self.config_path)], log_dir)
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200,
                   20, "bridge /healthz", self.proc)

    def stop(self) -> None:
        self.proc.stop()


def demo_servers(sandbox: Path) -> dict[str, dict[str, Any]]:
    """The two demo backends of `make run`, as bridge server entries."""
    return {
        "filesystem": {
            "command": "node",
            "args": [str(NPM / "@modelcontextprotocol/server-filesystem/dist/index.js"), str(sandbox)],
        },
        "everything": {
            "command": "node",
            "args": [str(NPM / "@modelcontextprotocol/server-everything/dist/index.js"), "stdio"],
        },
    }


def load_envoy_template() -> dict[str, Any]:
    return yaml.safe_load(ENVOY_YAML.read_text())


def wasm_filter(cfg: dict[str, Any]) -> dict[str, Any]:
    """The gateway's wasm filter entry on the edge listener."""
    for listener in cfg["static_resources"]["listeners"]:
        if listener["name"] != "mcp_edge":
            continue
        hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
        for f in hcm["http_filters"]:
            if f["name"] == "envoy.filters.http.wasm":
                return f["typed_config"]["config"]
    raise KeyError("wasm filter not found in envoy.yaml")


def filter_config(cfg: dict[str, Any]) -> dict[str, Any]:
    return wasm_filter(cfg)["configuration"]["value"]


class Envoy:
    """Envoy started from a (modified) copy of envoy/envoy.yaml."""

    def __init__(self, log_dir: Path, backend_port: int, *, concurrency: int = 2,
                 mutate: Callable[[dict[str, Any]], None] | None = None, name: str = "envoy"):
        self.port = free_port()
        self.admin_port = free_port()
        self.access_log = log_dir / f"{name}-access.log"
        self.access_log.write_text("")
        cfg = load_envoy_template()
        cfg["admin"]["address"]["socket_address"]["port_value"] = self.admin_port
        for listener in cfg["static_resources"]["listeners"]:
            if listener["name"] == "mcp_edge":
                listener["address"]["socket_address"]["port_value"] = self.port
                hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
                for log in hcm.get("access_log", []):
                    log["typed_config"]["path"] = str(self.access_log)
        for cluster in cfg["static_resources"]["clusters"]:
            for ep in cluster["load_assignment"]["endpoints"]:
                for lb in ep["lb_endpoints"]:
                    sa = lb["endpoint"]["address"].get("socket_address")
                    if sa and sa["port_value"] == 9101:
                        sa["port_value"] = backend_port
        wasm_filter(cfg)["vm_config"]["code"]["local"]["filename"] = str(WASM)
        if mutate:
            mutate(cfg)
        self.config = cfg
        self.config_path = log_dir / f"{name}.yaml"
        self.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        self.proc = Proc(name, [ENVOY, "-c", str(self.config_path), "--concurrency", str(concurrency),
                                "--log-level", "warn", "--disable-hot-restart", "--file-flush-interval-msec", "100",
                                "--base-id", str(free_port())], log_dir, cwd=ROOT)
        wait_until(self._ready, 30, "envoy ready", self.proc)

    def _ready(self) -> bool:
        r = httpx.get(f"http://127.0.0.1:{self.admin_port}/ready", timeout=1)
        return r.status_code == 200 and r.text.strip() == "LIVE"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stats(self, filter_re: str = "") -> dict[str, int]:
        r = httpx.get(f"http://127.0.0.1:{self.admin_port}/stats", params={"filter": filter_re}, timeout=5)
        out: dict[str, int] = {}
        for line in r.text.splitlines():
            name, _, value = line.partition(": ")
            if value.strip().lstrip("-").isdigit():
                out[name] = int(value)
        return out

    def log_lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.access_log.read_text(errors="replace").splitlines():
            line = line.strip()
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def wait_log(self, pred: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> list[dict[str, Any]]:
        """Polls the access log (file logs are flushed lazily) until a line satisfies `pred`."""
        found: list[dict[str, Any]] = []

        def check() -> bool:
            found[:] = [line for line in self.log_lines() if pred(line)]
            return bool(found)

        wait_until(check, timeout, "access log line")
        return found

    def stop(self) -> None:
        self.proc.stop()


def with_filter_config(update: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    """A `mutate` hook that deep-merges `update` into the gateway's filter configuration."""

    def merge(dst: dict[str, Any], src: dict[str, Any]) -> None:
        for k, v in src.items():
            if isinstance(v, dict) and isinstance(dst.get(k), dict):
                merge(dst[k], v)
            else:
                dst[k] = copy.deepcopy(v)

    def mutate(cfg: dict[str, Any]) -> None:
        merge(filter_config(cfg), update)

    return mutate


MCP_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def rpc(method: str, params: dict[str, Any] | None = None, id: int | str | None = 1) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if id is not None:
        msg["id"] = id
    if params is not None:
        msg["params"] = params
    return msg


def parse_mcp_response(r: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC message of a JSON or single-event SSE response."""
    if r.headers.get("content-type", "").startswith("text/event-stream"):
        for line in r.text.splitlines():
            if line.startswith("data:") and line[5:].strip():
                msg = json.loads(line[5:].strip())
                if "result" in msg or "error" in msg:
                    return msg
        raise ValueError(f"no JSON-RPC response in SSE body: {r.text[:300]}")
    return r.json()


class RawSession:
    """A minimal Streamable HTTP client for tests that need exact control of requests."""

    def __init__(self, base: str, path: str, headers: dict[str, str] | None = None):
        self.url = base + path
        self.headers = {**MCP_HEADERS, **(headers or {})}
        self.session_id: str | None = None
        self.client = httpx.Client(timeout=30)

    def post(self, body: Any, extra: dict[str, str] | None = None, raw: bytes | None = None) -> httpx.Response:
        h = dict(self.headers)
        if self.session_id:
            h["mcp-session-id"] = self.session_id
            h["mcp-protocol-version"] = "2025-06-18"
        h.update(extra or {})
        content = raw if raw is not None else json.dumps(body).encode()
        return self.client.post(self.url, content=content, headers=h)

    def initialize(self) -> dict[str, Any]:
        r = self.post(rpc("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                         "clientInfo": {"name": "e2e", "version": "1"}}))
        r.raise_for_status()
        self.session_id = r.headers.get("mcp-session-id")
        msg = parse_mcp_response(r)
        self.post(rpc("notifications/initialized", id=None))
        return msg

    def call(self, method: str, params: dict[str, Any] | None = None, id: int | str = 2) -> tuple[int, dict[str, Any]]:
        r = self.post(rpc(method, params, id))
        try:
            return r.status_code, parse_mcp_response(r)
        except (ValueError, json.JSONDecodeError):
            return r.status_code, {"raw": r.text}

    def close(self) -> None:
        self.client.close()
