"""Authorization bypass attempts through real Envoy, the bridge and the real npm servers.

The principals are the demo ones (sk-demo-reader: read-only filesystem tools + everything/echo;
sk-demo-admin: everything, but `move_file` is a denied tool of the filesystem backend). The
Envoy here runs the shipped filter configuration with the per-backend rate limit removed, so
that many calls in a row are decided by policy alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from fixtures.common import (
    wait_log,
    ADMIN_KEY, FORBIDDEN, HEADER_MISMATCH, INVALID_PARAMS, READER_KEY, bearer, call, demo_api_keys, log_line,
    ok_result, result_text, rpc_error, tag,
)
from harness import MCP_HEADERS, NPM, Bridge, Envoy, RawSession, filter_config, parse_mcp_response, rpc

INSPECTOR = NPM / "@modelcontextprotocol/inspector-cli/build/index.js"


def _demo_without_rate_limits(cfg: dict[str, Any]) -> None:
    fc = filter_config(cfg)
    for b in fc.get("backends", []):
        b.pop("rate_limit", None)
    sec = fc.setdefault("security", {})
    sec.get("rate_limit", {}).pop("default_per_client", None)
    sec.get("rate_limit", {}).pop("buckets", None)
    # Authorization only: an injection verdict must not mask (or stand in for) a policy decision.
    sec["injection"] = {"enabled": False}
    auth = sec.setdefault("auth", {})
    if not auth.get("api_keys"):  # demo keys not (yet) in envoy.yaml: same principals, inline
        auth["enabled"] = True
        auth["api_keys"] = demo_api_keys()


@pytest.fixture(scope="module")
def envoy(log_dir: Path, bridge: Bridge) -> Iterator[Envoy]:
    e = Envoy(log_dir, bridge.port, mutate=_demo_without_rate_limits, name="envoy-bypass")
    yield e
    e.stop()


class Session(RawSession):
    """RawSession whose posts carry a `?t=<tag>` so the access-log line can be found."""

    def tagged(self, body: Any = None, *, raw: bytes | None = None, extra: dict[str, str] | None = None,
               content: Any = None) -> tuple[httpx.Response, str]:
        t = tag()
        h = dict(self.headers)
        if self.session_id:
            h["mcp-session-id"] = self.session_id
            h["mcp-protocol-version"] = "2025-06-18"
        h.update(extra or {})
        data = content if content is not None else (raw if raw is not None else json.dumps(body).encode())
        return self.client.post(f"{self.url}?t={t}", content=data, headers=h), t


def _session(envoy: Envoy, path: str, key: str) -> Session:
    s = Session(envoy.url, path, bearer(key))
    s.initialize()
    assert s.session_id, f"no session id from {path}"
    return s


@pytest.fixture(scope="module")
def reader(envoy: Envoy) -> Iterator[Session]:
    s = _session(envoy, "/filesystem/mcp", READER_KEY)
    yield s
    s.close()


@pytest.fixture(scope="module")
def admin(envoy: Envoy) -> Iterator[Session]:
    s = _session(envoy, "/filesystem/mcp", ADMIN_KEY)
    yield s
    s.close()


def _denied(envoy: Envoy, r: httpx.Response, t: str, id: Any, tool: str | None = None) -> dict[str, Any]:
    rpc_error(r, 403, FORBIDDEN, id)
    line = log_line(envoy, t)
    assert line["decision"] == "deny" and line["status"] == 403, line
    if tool is not None:
        assert line["tool"] == tool, line
    return line


def test_reader_write_file_denied(envoy: Envoy, reader: Session, sandbox: Path) -> None:
    target = sandbox / "pwned-1.txt"
    r, t = reader.tagged(call("write_file", {"path": str(target), "content": "x"}, id=101))
    line = _denied(envoy, r, t, 101, "write_file")
    assert (line["backend"], line["client_id"], line["jsonrpc_id"]) == ("filesystem", "demo-reader", "101")
    assert not target.exists()
    # The same reader may read.
    r, t = reader.tagged(call("read_text_file", {"path": str(sandbox / "hello.txt")}, id=102))
    assert "hello from the sandbox" in result_text(ok_result(r, 102))
    assert log_line(envoy, t)["decision"] == "allow"


def test_denied_tool_refused_for_admin_too(envoy: Envoy, admin: Session, sandbox: Path) -> None:
    src = sandbox / "keep.txt"
    src.write_text("keep")
    r, t = admin.tagged(call("move_file", {"source": str(src), "destination": str(sandbox / "moved.txt")},
                             id="mv"))
    line = _denied(envoy, r, t, "mv", "move_file")
    assert line["client_id"] == "demo-admin"
    assert src.exists() and not (sandbox / "moved.txt").exists()


async def _sdk_tools(url: str, key: str) -> list[str]:
    async with httpx.AsyncClient(headers=bearer(key), timeout=30) as http:
        async with streamable_http_client(url, http_client=http) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return [t.name for t in (await session.list_tools()).tools]


READ_ONLY = {"read_text_file", "read_file", "read_media_file", "read_multiple_files", "list_directory",
             "list_directory_with_sizes", "list_allowed_directories", "directory_tree", "search_files",
             "get_file_info"}


def _assert_reader_view(names: list[str]) -> None:
    assert "read_text_file" in names and "list_directory" in names, names
    assert not {"write_file", "edit_file", "create_directory", "move_file"} & set(names), names
    assert set(names) <= READ_ONLY, set(names) - READ_ONLY


def test_tools_list_filtered_python_sdk(envoy: Envoy) -> None:
    _assert_reader_view(asyncio.run(_sdk_tools(f"{envoy.url}/filesystem/mcp", READER_KEY)))
    lines = wait_log(envoy, lambda l: l.get("mcp_method") == "tools/list" and l.get("client_id") == "demo-reader"
                           and l.get("list_filtered") not in (None, "", "-", "0"))
    assert int(lines[-1]["list_filtered"]) >= 4
    admin_names = asyncio.run(_sdk_tools(f"{envoy.url}/filesystem/mcp", ADMIN_KEY))
    assert "write_file" in admin_names
    assert "move_file" not in admin_names, "a denied tool should not be advertised"


def test_tools_list_filtered_inspector_cli(envoy: Envoy) -> None:
    if not INSPECTOR.exists():
        pytest.fail(f"inspector-cli not installed at {INSPECTOR} (make deps)")
    # inspector-cli reads ../package.json relative to its cwd (bug): run it from build/, whose
    # parent is the package directory.
    cwd = INSPECTOR.parent
    p = subprocess.run(
        ["node", str(INSPECTOR), f"{envoy.url}/filesystem/mcp", "--transport", "http",
         "--method", "tools/list", "--header", f"Authorization: Bearer {READER_KEY}"],
        cwd=cwd, capture_output=True, text=True, timeout=60, env={**os.environ, "NO_COLOR": "1"},
    )
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    out = p.stdout[p.stdout.index("{"):]
    _assert_reader_view([t["name"] for t in json.loads(out)["tools"]])


@pytest.mark.parametrize("name", [
    "write_f\u0456le",                 # Cyrillic i
    "\uff57\uff52\uff49\uff54\uff45_\uff46\uff49\uff4c\uff45",  # fullwidth write_file
    "write_file\u200b",                # zero-width space
    "WRITE_FILE",
])
def test_lookalike_tool_names_not_executed(envoy: Envoy, reader: Session, sandbox: Path, name: str) -> None:
    target = sandbox / f"pwned-{abs(hash(name))}.txt"
    r, t = reader.tagged(call(name, {"path": str(target), "content": "x"}, id=110))
    _denied(envoy, r, t, 110)
    assert not target.exists()


@pytest.mark.parametrize("name", ["re\u0430d_text_file", "\uff52\uff45\uff41\uff44_text_file"])
def test_lookalike_read_names_do_not_match_read_patterns(envoy: Envoy, reader: Session, name: str) -> None:
    """`read_*` must not match a name that only looks like read_… (or the look-alike runs nothing)."""
    r, t = reader.tagged(call(name, {"path": "/etc/passwd"}, id=111))
    assert r.status_code != 200 or "error" in parse_mcp_response(r) or parse_mcp_response(r)["result"].get("isError"), r.text
    assert "root:" not in r.text


@pytest.mark.parametrize("path", ["/filesystem%2Fmcp", "//filesystem/mcp", "/filesystem/../everything/mcp",
                                  "/everything/../filesystem/mcp", "/everything/%2e%2e/filesystem/mcp",
                                  "/filesystem/./mcp"])
def test_path_tricks_cannot_reach_another_backend_unchecked(envoy: Envoy, path: str, sandbox: Path) -> None:
    with httpx.Client(timeout=30) as c:
        h = {**MCP_HEADERS, **bearer(READER_KEY)}
        t = tag()
        init = rpc("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                  "clientInfo": {"name": "e2e", "version": "1"}}, 1)
        r = c.post(f"{envoy.url}{path}?t={t}", json=init, headers=h)
        if r.status_code != 200:
            return  # refused or unroutable: nothing reached a backend through the trick
        sid = r.headers.get("mcp-session-id")
        h2 = {**h, "mcp-protocol-version": "2025-06-18", **({"mcp-session-id": sid} if sid else {})}
        t2 = tag()
        r = c.post(f"{envoy.url}{path}?t={t2}", json=rpc("tools/list", id=2), headers=h2)
        line = log_line(envoy, t2)
        if r.status_code == 200:
            names = {x["name"] for x in parse_mcp_response(r)["result"]["tools"]}
            served_by = "filesystem" if "read_text_file" in names or "list_directory" in names else "everything"
            assert line["backend"] == served_by, (path, line, names)
        # A write through the trick is never executed.
        target = sandbox / "pwned-path.txt"
        t3 = tag()
        r = c.post(f"{envoy.url}{path}?t={t3}",
                   json=call("write_file", {"path": str(target), "content": "x"}, id=3), headers=h2)
        assert r.status_code != 200 or "error" in r.text, r.text
        assert not target.exists()


def test_whitespace_and_key_reordering(envoy: Envoy, reader: Session, sandbox: Path) -> None:
    target = sandbox / "pwned-ws.txt"
    raw = (' \n\t{ "params" :\r\n { "arguments" : {"content":"x","path":' + json.dumps(str(target)) +
           '} ,\n\t"name"\t:\t"write_file" } ,"id" : 120 , "method" : "tools/call", "jsonrpc" : "2.0" }\n ')
    r, t = reader.tagged(raw=raw.encode())
    _denied(envoy, r, t, 120, "write_file")
    # Escaped characters in the name are the same name.
    r, t = reader.tagged(raw=b'{"jsonrpc":"2.0","id":121,"method":"tools/call","params":{"name":"write\\u005ffile",'
                             b'"arguments":{"path":' + json.dumps(str(target)).encode() + b',"content":"x"}}}')
    _denied(envoy, r, t, 121, "write_file")
    assert not target.exists()


def test_duplicate_name_keys_rejected_by_native_parser(envoy: Envoy, reader: Session, sandbox: Path) -> None:
    target = sandbox / "pwned-dup.txt"
    for first, second in (("read_text_file", "write_file"), ("write_file", "read_text_file")):
        raw = ('{"jsonrpc":"2.0","id":130,"method":"tools/call","params":{"name":"%s","name":"%s",'
               '"arguments":{"path":%s,"content":"x"}}}' % (first, second, json.dumps(str(target))))
        r, t = reader.tagged(raw=raw.encode())
        assert r.status_code == 400, r.text
        assert log_line(envoy, t)["status"] == 400
    assert not target.exists()


def test_chunked_body_still_decided(envoy: Envoy, reader: Session, sandbox: Path) -> None:
    target = sandbox / "pwned-chunk.txt"
    body = json.dumps(call("write_file", {"path": str(target), "content": "x" * 5000}, id=140)).encode()

    def gen(data: bytes) -> Iterator[bytes]:
        for i in range(0, len(data), 7):
            yield data[i:i + 7]

    r, t = reader.tagged(content=gen(body))
    _denied(envoy, r, t, 140, "write_file")
    assert not target.exists()
    ok = json.dumps(call("read_text_file", {"path": str(sandbox / "hello.txt")}, id=141)).encode()
    r, t = reader.tagged(content=gen(ok))
    assert "hello from the sandbox" in result_text(ok_result(r, 141))


def test_batch_hiding_denied_call_refused_whole(envoy: Envoy, reader: Session, sandbox: Path) -> None:
    target = sandbox / "pwned-batch.txt"
    batch = [call("read_text_file", {"path": str(sandbox / "hello.txt")}, id=150),
             call("write_file", {"path": str(target), "content": "x"}, id=151)]
    r, t = reader.tagged(batch)
    assert r.status_code in (400, 403), r.text
    if r.status_code == 403:
        errors = r.json()
        assert isinstance(errors, list) and sorted(e["id"] for e in errors) == [150, 151], errors
        assert all(e["error"]["code"] == FORBIDDEN and "result" not in e for e in errors)
        assert log_line(envoy, t)["decision"] == "deny"
    assert "hello from the sandbox" not in r.text
    assert not target.exists()


def test_notification_passes(envoy: Envoy, reader: Session) -> None:
    r, t = reader.tagged(rpc("notifications/initialized", id=None))
    assert r.status_code in (200, 202), r.text
    line = log_line(envoy, t)
    assert (line["decision"], line["mcp_kind"]) == ("allow", "notification"), line


def test_client_response_passes(envoy: Envoy, reader: Session) -> None:
    """A client's answer to a server request (sampling, elicitation, roots) must not be refused."""
    r, t = reader.tagged({"jsonrpc": "2.0", "id": "srv-1", "result": {}})
    assert r.status_code not in (401, 403, 429), r.text
    line = log_line(envoy, t)
    assert (line["decision"], line["mcp_kind"]) == ("allow", "response"), line


@pytest.mark.parametrize("hdrs,body_name", [
    ({"mcp-method": "tools/list"}, "read_text_file"),
    ({"mcp-method": "tools/call", "mcp-name": "read_text_file"}, "write_file"),
    ({"mcp-method": "tools/call", "mcp-name": "write_file"}, "read_text_file"),
])
def test_mcp_headers_must_match_body(envoy: Envoy, reader: Session, sandbox: Path, hdrs: dict[str, str],
                                     body_name: str) -> None:
    target = sandbox / "pwned-hdr.txt"
    r, t = reader.tagged(call(body_name, {"path": str(target), "content": "x"}, id=160), extra=hdrs)
    rpc_error(r, 400, HEADER_MISMATCH, 160)
    line = log_line(envoy, t)
    assert (line["decision"], line["rule"]) == ("invalid", "mcp_header_mismatch"), line
    assert not target.exists()


def test_body_over_limit_is_413(envoy: Envoy, reader: Session, sandbox: Path) -> None:
    target = sandbox / "pwned-big.txt"
    big = call("write_file", {"path": str(target), "content": "A" * (4 * 1024 * 1024 + 10)}, id=170)
    r, t = reader.tagged(big)
    assert r.status_code == 413, r.status_code
    line = log_line(envoy, t)
    assert line["status"] == 413 and line["upstream_ms"] in (None, "-", ""), line
    assert not target.exists()


class _SseReader:
    def __init__(self, client: httpx.Client, url: str, headers: dict[str, str]):
        self.events: "queue.Queue[tuple[str, str]]" = queue.Queue()
        self.status: "queue.Queue[int]" = queue.Queue()
        self._ctx = client.stream("GET", url, headers=headers)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with self._ctx as r:
                self.status.put(r.status_code)
                ev, data = "message", []
                for line in r.iter_lines():
                    if line.startswith("event:"):
                        ev = line[6:].strip()
                    elif line.startswith("data:"):
                        data.append(line[5:].strip())
                    elif line == "" and data:
                        self.events.put((ev, "\n".join(data)))
                        ev, data = "message", []
        except Exception:  # noqa: BLE001 - stream closed at teardown
            pass

    def next(self, kind: str | None = None, timeout: float = 15) -> tuple[str, str]:
        deadline = time.monotonic() + timeout
        while True:
            ev = self.events.get(timeout=max(0.01, deadline - time.monotonic()))
            if kind is None or ev[0] == kind:
                return ev


def test_legacy_sse_transport_decided_the_same(envoy: Envoy, sandbox: Path) -> None:
    client = httpx.Client(timeout=httpx.Timeout(30, read=60))
    try:
        sse = _SseReader(client, f"{envoy.url}/filesystem/sse",
                         {"accept": "text/event-stream", **bearer(READER_KEY)})
        assert sse.status.get(timeout=15) == 200
        _, endpoint = sse.next("endpoint")
        assert endpoint.startswith("/filesystem/"), endpoint
        url = envoy.url + endpoint
        h = {**MCP_HEADERS, **bearer(READER_KEY)}
        r = client.post(url, json=rpc("initialize", {"protocolVersion": "2024-11-05", "capabilities": {},
                                                     "clientInfo": {"name": "e2e", "version": "1"}}, 1), headers=h)
        assert r.status_code in (200, 202), r.text
        sse.next("message")
        client.post(url, json=rpc("notifications/initialized", id=None), headers=h)
        target = sandbox / "pwned-sse.txt"
        r = client.post(url, json=call("write_file", {"path": str(target), "content": "x"}, id=180), headers=h)
        rpc_error(r, 403, FORBIDDEN, 180)
        r = client.post(url, json=call("read_text_file", {"path": str(sandbox / "hello.txt")}, id=181), headers=h)
        assert r.status_code in (200, 202), r.text
        while True:
            _, data = sse.next("message")
            msg = json.loads(data)
            if msg.get("id") == 181:
                assert "hello from the sandbox" in json.dumps(msg)
                break
            assert msg.get("id") != 180, "the denied call was answered by the backend"
        assert not target.exists()
        # Without credentials the legacy stream is refused.
        r = client.get(f"{envoy.url}/filesystem/sse", headers={"accept": "text/event-stream"})
        assert r.status_code == 401
    finally:
        client.close()


# --- aggregated /mcp (Envoy mcp_router) --------------------------------------------------------

@pytest.fixture(scope="module")
def agg_reader(envoy: Envoy) -> Iterator[Session]:
    s = _session(envoy, "/mcp", READER_KEY)
    yield s
    s.close()


def test_aggregated_prefixed_names_decided(envoy: Envoy, agg_reader: Session, sandbox: Path) -> None:
    target = sandbox / "pwned-agg.txt"
    r, t = agg_reader.tagged(call("filesystem__write_file", {"path": str(target), "content": "x"}, id=190))
    line = _denied(envoy, r, t, 190, "write_file")
    assert line["backend"] == "filesystem"
    r, t = agg_reader.tagged(call("filesystem__read_text_file", {"path": str(sandbox / "hello.txt")}, id=191))
    assert "hello from the sandbox" in result_text(ok_result(r, 191))
    assert (log_line(envoy, t)["backend"], log_line(envoy, t)["tool"]) == ("filesystem", "read_text_file")
    r, t = agg_reader.tagged(call("read_text_file", {"path": str(sandbox / "hello.txt")}, id=192))
    rpc_error(r, 400, INVALID_PARAMS, 192)
    assert log_line(envoy, t)["rule"] == "unroutable_name"
    r, t = agg_reader.tagged(call("everything__echo", {"message": "hi"}, id=193))
    assert "hi" in result_text(ok_result(r, 193))
    assert not target.exists()


def test_aggregated_tools_list_filtered(envoy: Envoy, agg_reader: Session) -> None:
    r, t = agg_reader.tagged(rpc("tools/list", id=195))
    names = [x["name"] for x in ok_result(r, 195)["tools"]]
    assert "filesystem__read_text_file" in names and "everything__echo" in names, names
    assert not [n for n in names if n.startswith("filesystem__") and n[12:] not in READ_ONLY], names
    assert [n for n in names if n.startswith("everything__")] == ["everything__echo"], names
    assert int(log_line(envoy, t)["list_filtered"]) > 0
