#!/usr/bin/env python3
"""Floor of the bridge benchmark: tools/call straight over an MCP server's stdin/stdout.

Starts the server, initializes, then keeps `--window` calls in flight for `--seconds`
(window 1: strict request/response round trips). Prints one JSON line with rps and latency
percentiles in microseconds, the same fields load.lua reports.
"""
import argparse
import json
import os
import select
import subprocess
import time


def pct(sorted_vals, p):
    if not sorted_vals:
        return 0
    i = min(len(sorted_vals) - 1, int(round(p / 100 * (len(sorted_vals) - 1))))
    return sorted_vals[i]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--window", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--server", nargs=argparse.REMAINDER, required=True)
    a = ap.parse_args()
    p = subprocess.Popen(a.server, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    out_fd = p.stdout.fileno()
    buf = b""

    def send(msg):
        p.stdin.write(json.dumps(msg, separators=(",", ":")).encode() + b"\n")

    def read_line():
        nonlocal buf
        while b"\n" not in buf:
            select.select([out_fd], [], [])
            chunk = os.read(out_fd, 65536)
            if not chunk:
                raise SystemExit("server closed stdout")
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        return line

    send({"jsonrpc": "2.0", "id": 0, "method": "initialize",
          "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "floor", "version": "1"}}})
    read_line()
    send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    message = ("Quarterly revenue summary for the northern region. Please list the open invoices older than "
               "thirty days, sorted by amount, largest first, with the customer name.")
    sent_at = {}
    lat = []
    seq = 0
    bad = 0

    def call():
        nonlocal seq
        seq += 1
        sent_at[seq] = time.perf_counter()
        send({"jsonrpc": "2.0", "id": seq, "method": "tools/call",
              "params": {"name": "echo", "arguments": {"message": message}}})

    for _ in range(a.window):
        call()
    t0 = time.perf_counter()
    end = t0 + a.seconds
    done = 0
    while True:
        reply = json.loads(read_line())
        now = time.perf_counter()
        t = sent_at.pop(reply.get("id"), None)
        if t is not None:
            lat.append(now - t)
            done += 1
        if "result" not in reply:
            bad += 1
        if now < end:
            call()
        elif not sent_at:
            break
    elapsed = time.perf_counter() - t0
    p.stdin.close()
    p.wait(timeout=5)
    us = sorted(int(x * 1e6) for x in lat)
    print(json.dumps({"requests": done, "duration_us": int(elapsed * 1e6), "rps": done / elapsed, "bad": bad,
                      "errors": 0, "p50_us": pct(us, 50), "p90_us": pct(us, 90), "p99_us": pct(us, 99),
                      "p999_us": pct(us, 99.9), "mean_us": sum(us) / len(us) if us else 0,
                      "max_us": us[-1] if us else 0}))


if __name__ == "__main__":
    main()
