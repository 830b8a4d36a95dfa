"""Rate limiting through real Envoy with 4 worker threads: token buckets in shared data must be
exact under concurrency, refill at the configured rate, stay per principal / per tool, and keep
Envoy's memory bounded when very many principals show up.

Principals are JWT subjects (HS256, so the test can mint thousands cheaply); the backend is the
recording upstream of fixtures/upstream.py (fast, and shows what was forwarded).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import httpx
import jwt as pyjwt
import pytest

from fixtures.common import json_config, flush_logs, wait_log, RATE_LIMITED, bearer, call, ok_result, rpc_error, tag
from fixtures.upstream import McpUpstream
from harness import MCP_HEADERS, Envoy, with_filter_config

SECRET = "e2e-ratelimit-hs256-secret-0123456789abcdef"
AUDIENCE = "https://mcp.e2e.test/mcp"
ISSUER = "https://idp.e2e.test"
BURST = 10
SLOTS = 1024
# Principals driven after the slot table is full (E2E_PRINCIPALS=20000 for the long run).
MORE_PRINCIPALS = int(os.environ.get("E2E_PRINCIPALS", "6000"))


def token(sub: str) -> str:
    now = int(time.time())
    return pyjwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 3600,
                         "permissions": ["*"]}, SECRET, algorithm="HS256")


@pytest.fixture(scope="module")
def envoy(log_dir: Path, upstream: McpUpstream) -> Iterator[Envoy]:
    cfg = {
        "backends": [{"name": "filesystem"}, {"name": "everything"}],
        "security": {
            "auth": {"enabled": True, "api_keys": [],
                     "jwt": {"issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["HS256"],
                             "hs256_secret": SECRET}},
            "rate_limit": {
                "enabled": True,
                "slots": SLOTS,
                "buckets": [
                    {"name": "burst", "per": ["client"], "tool": "burst_*", "requests_per_sec": 0.01,
                     "burst_size": BURST},
                    {"name": "refill", "per": ["client"], "tool": "refill_*", "requests_per_sec": 2,
                     "burst_size": 2},
                    {"name": "expensive", "per": ["client", "tool"], "tool": "expensive", "requests_per_sec": 0.01,
                     "burst_size": 2},
                    {"name": "mem", "per": ["client"], "tool": "mem_*", "requests_per_sec": 0.001,
                     "burst_size": 3},
                ],
            },
            "injection": {"enabled": False},
        },
    }

    e = Envoy(log_dir, upstream.port, concurrency=4, mutate=json_config(cfg), name="envoy-ratelimit")
    yield e
    e.stop()


def _fire(envoy: Envoy, sub: str, tool: str, id: Any, client: httpx.Client | None = None) -> httpx.Response:
    h = {**MCP_HEADERS, **bearer(token(sub))}
    body = json.dumps(call(tool, {"n": id}, id=id))
    if client is not None:
        return client.post(f"{envoy.url}/filesystem/mcp", content=body, headers=h)
    with httpx.Client(timeout=30) as c:  # a fresh connection: any worker thread
        return c.post(f"{envoy.url}/filesystem/mcp", content=body, headers=h)


def _assert_limited(r: httpx.Response, id: Any, limit: int) -> None:
    rpc_error(r, 429, RATE_LIMITED, id)
    for h in ("retry-after", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
        assert len(r.headers.get_list(h)) == 1, f"{h} sent {len(r.headers.get_list(h))} times: {r.headers}"
    assert int(r.headers["retry-after"]) >= 1, r.headers
    assert r.headers["x-ratelimit-limit"] == str(limit), r.headers
    assert r.headers["x-ratelimit-remaining"] == "0", r.headers
    assert int(r.headers["x-ratelimit-reset"]) >= 1, r.headers


def test_parallel_burst_gets_exactly_burst_size(envoy: Envoy, upstream: McpUpstream) -> None:
    sub = f"burst-{uuid.uuid4().hex[:8]}"
    ids = list(range(1000, 1040))
    upstream.clear()
    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(lambda i: _fire(envoy, sub, "burst_a", i), ids))
    ok = [r for r in responses if r.status_code == 200]
    limited = [(i, r) for i, r in zip(ids, responses) if r.status_code == 429]
    assert len(ok) == BURST, [r.status_code for r in responses]
    assert len(limited) == len(ids) - BURST
    for i, r in limited:
        _assert_limited(r, i, BURST)
        assert r.headers["retry-after"] in ("99", "100"), r.headers  # 1 token at 0.01/s
    for r in ok:
        assert r.headers["x-ratelimit-limit"] == str(BURST)
        assert 0 <= int(r.headers["x-ratelimit-remaining"]) < BURST
    remaining = sorted(int(r.headers["x-ratelimit-remaining"]) for r in ok)
    assert remaining == list(range(BURST)), remaining  # every token handed out exactly once
    forwarded = [json.loads(b) for b in upstream.bodies() if b]
    assert len([m for m in forwarded if m.get("params", {}).get("name") == "burst_a"]) == BURST
    # Access log: one ratelimited line per refused request, with bucket and id.
    lines = wait_log(envoy, lambda l: l.get("client_id") == sub and l.get("decision") == "ratelimited")
    deadline = time.monotonic() + 10
    while len(lines) < len(limited) and time.monotonic() < deadline:
        time.sleep(0.1)
        flush_logs(envoy)
        lines = [l for l in envoy.log_lines() if l.get("client_id") == sub and l.get("decision") == "ratelimited"]
    assert len(lines) == len(limited)
    assert {l["jsonrpc_id"] for l in lines} == {str(i) for i, _ in limited}
    assert all(l["status"] == 429 and l["ratelimit_bucket"] == "burst" and l["rule"] == "ratelimit:burst"
               for l in lines), lines[0]


def test_refill_after_configured_time(envoy: Envoy) -> None:
    sub = f"refill-{uuid.uuid4().hex[:8]}"
    with httpx.Client(timeout=30) as c:
        assert [_fire(envoy, sub, "refill_a", i, c).status_code for i in (1, 2)] == [200, 200]
        r = _fire(envoy, sub, "refill_a", 3, c)
        assert r.status_code == 429
        t0 = time.monotonic()
        # Half a token after 0.25 s: still refused.
        time.sleep(0.25)
        assert _fire(envoy, sub, "refill_a", 4, c).status_code == 429
        time.sleep(max(0.0, 1.05 - (time.monotonic() - t0)))
        # 2 tokens/s: after ~1 s the bucket is full again, and holds exactly 2.
        assert [_fire(envoy, sub, "refill_a", i, c).status_code for i in (5, 6, 7)] == [200, 200, 429]
    _assert_limited(r, 3, 2)
    assert r.headers["retry-after"] == "1"


def test_clients_do_not_share_buckets(envoy: Envoy) -> None:
    a, b = f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
    with httpx.Client(timeout=30) as c:
        codes_a = [_fire(envoy, a, "burst_x", i, c).status_code for i in range(BURST + 2)]
        assert codes_a == [200] * BURST + [429, 429]
        r = _fire(envoy, b, "burst_x", 99, c)
        ok_result(r, 99)
        assert r.headers["x-ratelimit-remaining"] == str(BURST - 1)


def test_per_tool_limit_does_not_charge_other_tools(envoy: Envoy) -> None:
    sub = f"tool-{uuid.uuid4().hex[:8]}"
    with httpx.Client(timeout=30) as c:
        assert [_fire(envoy, sub, "expensive", i, c).status_code for i in range(3)] == [200, 200, 429]
        for i in range(5):
            r = _fire(envoy, sub, "cheap", 10 + i, c)
            ok_result(r, 10 + i)
            assert "retry-after" not in r.headers
        # Another client's `expensive` is untouched.
        assert _fire(envoy, sub + "-2", "expensive", 20, c).status_code == 200
        # tools/list is not a charged method.
        h = {**MCP_HEADERS, **bearer(token(sub))}
        assert c.post(f"{envoy.url}/filesystem/mcp", json={"jsonrpc": "2.0", "id": 30, "method": "tools/list"},
                      headers=h).status_code == 200


def _rss_kib(envoy: Envoy) -> int:
    """Largest VmRSS in Envoy's process group (the harness may start a wrapper)."""
    out = subprocess.run(["ps", "-o", "rss=", "-g", str(os.getpgid(envoy.proc.popen.pid))],
                         capture_output=True, text=True, check=True).stdout
    return max(int(x) for x in out.split())


def _drive(envoy: Envoy, subs: list[str]) -> dict[int, int]:
    counts: dict[int, int] = {}
    tokens = [token(s) for s in subs]
    chunks = [tokens[i::8] for i in range(8)]

    def run(chunk: list[str]) -> dict[int, int]:
        local: dict[int, int] = {}
        with httpx.Client(timeout=30) as c:
            body = json.dumps(call("mem_a", {}, id=1))
            for tk in chunk:
                r = c.post(f"{envoy.url}/filesystem/mcp", content=body, headers={**MCP_HEADERS, **bearer(tk)})
                local[r.status_code] = local.get(r.status_code, 0) + 1
        return local

    with ThreadPoolExecutor(8) as pool:
        for local in pool.map(run, chunks):
            for k, v in local.items():
                counts[k] = counts.get(k, 0) + v
    return counts


def test_memory_bounded_with_many_principals(envoy: Envoy) -> None:
    run = uuid.uuid4().hex[:6]
    # Phase 1 fills the slot table (more principals than slots) and the per-VM token caches.
    first = _drive(envoy, [f"m{run}-{i}" for i in range(SLOTS + 1000)])
    assert set(first) <= {200, 429}, first
    assert first.get(200, 0) >= SLOTS // 2, first
    time.sleep(0.5)
    rss1 = _rss_kib(envoy)
    # Phase 2: many more distinct principals; nothing per principal may accumulate.
    second = _drive(envoy, [f"n{run}-{i}" for i in range(MORE_PRINCIPALS)])
    assert set(second) <= {200, 429}, second
    time.sleep(0.5)
    rss2 = _rss_kib(envoy)
    growth_mib = (rss2 - rss1) / 1024
    print(f"envoy RSS after table full: {rss1 / 1024:.1f} MiB, after {MORE_PRINCIPALS} more principals: "
          f"{rss2 / 1024:.1f} MiB (+{growth_mib:.1f} MiB); phase1 {first} phase2 {second}")
    assert growth_mib < 8, f"Envoy RSS grew {growth_mib:.1f} MiB over {MORE_PRINCIPALS} new principals"
    # The gateway still answers, and refuses rather than forgets: an old principal is still limited.
    assert _fire(envoy, f"m{run}-0", "mem_a", 5).status_code in (200, 429)
