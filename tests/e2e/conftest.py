"""Shared fixtures: one demo stack (bridge + real npm servers + Envoy) per test session."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fixtures.upstream import McpUpstream  # noqa: E402
from harness import Bridge, Envoy, demo_servers  # noqa: E402


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e-logs")


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("sandbox")
    (d / "hello.txt").write_text("hello from the sandbox\n")
    (d / "notes").mkdir()
    (d / "notes" / "todo.md").write_text("- audit the gateway\n")
    return d


@pytest.fixture(scope="session")
def bridge(log_dir: Path, sandbox: Path) -> Iterator[Bridge]:
    b = Bridge(demo_servers(sandbox), log_dir)
    yield b
    b.stop()


@pytest.fixture(scope="session")
def envoy(log_dir: Path, bridge: Bridge) -> Iterator[Envoy]:
    """Envoy running the shipped envoy/envoy.yaml unchanged (except ports and paths)."""
    e = Envoy(log_dir, bridge.port)
    yield e
    e.stop()


@pytest.fixture(scope="module")
def upstream() -> Iterator[McpUpstream]:
    """A recording fake MCP upstream, one per test module."""
    u = McpUpstream()
    yield u
    u.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    """On failure, attach the tails of the process logs to the report."""
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        for name in ("envoy", "bridge"):
            fx = item.funcargs.get(name)
            proc = getattr(fx, "proc", None)
            if proc is not None:
                rep.sections.append((f"{name} log", proc.tail(60)))
