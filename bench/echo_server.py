#!/usr/bin/env python3
"""Minimal SDK-free MCP stdio server for benchmarks: newline-delimited JSON-RPC on stdin/stdout.

Answers initialize (echoing a known protocol version, else the newest), ping, tools/list and
tools/call of one tool `echo{message}`; ignores notifications; unknown methods get -32601;
a JSON array (2025-03-26 batch) is answered element-wise. Nothing else is written to stdout.
"""
import json
import sys

KNOWN = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
ECHO_TOOL = {
    "name": "echo",
    "description": "Returns the message it is given.",
    "inputSchema": {
        "type": "object",
        "properties": {"message": {"type": "string"}},
        "required": ["message"],
    },
}


def answer(msg):
    if not isinstance(msg, dict) or "method" not in msg:
        return None  # responses to our (never sent) requests, junk
    if "id" not in msg:
        return None  # notification
    mid = msg["id"]
    method = msg["method"]
    params = msg.get("params") or {}
    if method == "tools/call":
        if params.get("name") != "echo":
            return {"jsonrpc": "2.0", "id": mid, "error": {"code": -32602, "message": "unknown tool"}}
        text = str((params.get("arguments") or {}).get("message", ""))
        return {"jsonrpc": "2.0", "id": mid,
                "result": {"content": [{"type": "text", "text": text}], "isError": False}}
    if method == "ping":
        return {"jsonrpc": "2.0", "id": mid, "result": {}}
    if method == "initialize":
        asked = params.get("protocolVersion")
        version = asked if asked in KNOWN else KNOWN[0]
        return {"jsonrpc": "2.0", "id": mid, "result": {
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": {"name": "bench-echo", "version": "1.0.0"}}}
    if method == "tools/list":
        return {"jsonrpc": "2.0", "id": mid, "result": {"tools": [ECHO_TOOL]}}
    return {"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "Method not found"}}


def main():
    out = sys.stdout.buffer
    dumps = json.dumps
    for line in sys.stdin.buffer:
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            reply = {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}
        else:
            if isinstance(msg, list):
                replies = [r for r in map(answer, msg) if r is not None]
                reply = replies or None
            else:
                reply = answer(msg)
        if reply is not None:
            out.write(dumps(reply, separators=(",", ":")).encode() + b"\n")
            out.flush()


if __name__ == "__main__":
    try:
        main()
    except (BrokenPipeError, KeyboardInterrupt):
        pass
