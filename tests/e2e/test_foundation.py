"""Foundation: the official Python MCP SDK talks to real servers through Envoy + the filter."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from harness import DEMO_ADMIN_KEY, Envoy


async def _sdk_session(url: str, key: str, sandbox: Path) -> tuple[list[str], str]:
    async with httpx.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=30) as http:
        async with streamable_http_client(url, http_client=http) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = await session.list_tools()
                result = await session.call_tool("read_text_file", {"path": str(sandbox / "hello.txt")})
                text = "".join(getattr(c, "text", "") for c in result.content)
                return [t.name for t in tools.tools], text


def test_python_sdk_lists_and_calls_through_envoy(envoy: Envoy, sandbox: Path) -> None:
    names, text = asyncio.run(_sdk_session(f"{envoy.url}/filesystem/mcp", DEMO_ADMIN_KEY, sandbox))
    assert "read_text_file" in names and "list_directory" in names
    assert "hello from the sandbox" in text

    # The access log line of the call carries the MCP method, tool and backend from the filter.
    lines = envoy.wait_log(lambda l: l.get("mcp_method") == "tools/call" and l.get("tool") == "read_text_file")
    line = lines[-1]
    assert line["backend"] == "filesystem"
    assert line["decision"] == "allow"
    assert line["status"] == 200
    assert line["native_mcp_method"] == "tools/call"


def test_healthz_is_served(envoy: Envoy) -> None:
    assert httpx.get(f"{envoy.url}/healthz").status_code == 200
