"""Envoy bootstrap configurations A-G for the filter benchmark (generated as JSON).

Every chain ends with the buffer filter before the router, and the route answers with a
`direct_response`: the request body is read completely before the reply, HTTP/1.1 connections stay
open, and nothing upstream costs anything, so the difference between chains is the filters' cost.
"""
import json

MAX_BODY = 1048576
BENCH_TOOL = "search_invoices"
ISSUER = "https://idp.bench.invalid"
AUDIENCE = "https://mcp.bench.invalid/mcp"
CLIENT_ID = "bench-client"

SMALL_RESULT = json.dumps({
    "jsonrpc": "2.0", "id": "bench",
    "result": {"content": [{"type": "text", "text": "3 invoices found"}], "isError": False},
}, separators=(",", ":"))


def large_result(size=10240):
    """A ~`size`-byte JSON-RPC tools/call result made of benign report lines."""
    lines = []
    n = 0
    total = 0
    while total < size - 200:
        line = (f"Invoice INV-{10000 + n}: customer Northwind Traders {n % 37}, amount "
                f"{(n * 7919) % 100000 / 100:.2f} EUR, due 2026-12-{1 + n % 28:02d}, status open.")
        lines.append(line)
        total += len(line) + 1
        n += 1
    items = [{"type": "text", "text": "\n".join(lines[i:i + 20])} for i in range(0, len(lines), 20)]
    return json.dumps({"jsonrpc": "2.0", "id": "bench", "result": {"content": items, "isError": False}},
                      separators=(",", ":"))


def _typed(type_name, **fields):
    return {"@type": "type.googleapis.com/" + type_name, **fields}


def f_buffer():
    return {"name": "envoy.filters.http.buffer",
            "typed_config": _typed("envoy.extensions.filters.http.buffer.v3.Buffer", max_request_bytes=MAX_BODY)}


def f_router():
    return {"name": "envoy.filters.http.router",
            "typed_config": _typed("envoy.extensions.filters.http.router.v3.Router")}


def f_body_limit():
    return {"name": "envoy.filters.http.body_size_limit",
            "typed_config": _typed("envoy.extensions.filters.http.body_size_limit.v3.BodySizeLimit",
                                   max_request_bytes=MAX_BODY)}


def f_mcp():
    return {"name": "envoy.filters.http.mcp",
            "typed_config": _typed("envoy.extensions.filters.http.mcp.v3.Mcp",
                                   traffic_mode="REJECT_NO_MCP", reject_duplicate_keys=True,
                                   max_request_body_size=MAX_BODY)}


def f_jwt_authn(jwks_json):
    return {"name": "envoy.filters.http.jwt_authn",
            "typed_config": _typed(
                "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
                providers={"bench": {
                    "issuer": ISSUER,
                    "audiences": [AUDIENCE],
                    "local_jwks": {"inline_string": jwks_json},
                    "forward": False,
                    "payload_in_metadata": "jwt_payload",
                }},
                rules=[{"match": {"prefix": "/"}, "requires": {"provider_name": "bench"}}])}


def _mcp_meta(path, matcher):
    return {"sourced_metadata": {"metadata_matcher": {
        "filter": "envoy.filters.http.mcp", "path": [{"key": k} for k in path], "value": matcher}}}


def f_rbac():
    """Per-tool allow rule on the native mcp metadata, for the JWT subject."""
    exact = lambda s: {"string_match": {"exact": s}}  # noqa: E731
    principal = {"metadata": {"filter": "envoy.filters.http.jwt_authn",
                              "path": [{"key": "jwt_payload"}, {"key": "sub"}],
                              "value": exact(CLIENT_ID)}}
    return {"name": "envoy.filters.http.rbac",
            "typed_config": _typed("envoy.extensions.filters.http.rbac.v3.RBAC", rules={
                "action": "ALLOW",
                "policies": {
                    "session-methods": {
                        "permissions": [_mcp_meta(["method"], {"or_match": {"value_matchers": [
                            exact("initialize"), {"string_match": {"prefix": "notifications/"}},
                            exact("ping"), exact("tools/list")]}})],
                        "principals": [principal]},
                    "bench-tool": {
                        "permissions": [{"and_rules": {"rules": [
                            _mcp_meta(["method"], exact("tools/call")),
                            _mcp_meta(["params", "name"], exact(BENCH_TOOL))]}}],
                        "principals": [principal]},
                }})}


def f_local_ratelimit():
    big = 1_000_000_000
    pct = {"default_value": {"numerator": 100, "denominator": "HUNDRED"}}
    return {"name": "envoy.filters.http.local_ratelimit",
            "typed_config": _typed("envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
                                   stat_prefix="bench_rl",
                                   token_bucket={"max_tokens": big, "tokens_per_fill": big, "fill_interval": "1s"},
                                   filter_enabled={**pct, "runtime_key": "bench_rl_enabled"},
                                   filter_enforced={**pct, "runtime_key": "bench_rl_enforced"})}


def f_wasm(wasm_path, gateway_config):
    return {"name": "envoy.filters.http.wasm",
            "typed_config": _typed("envoy.extensions.filters.http.wasm.v3.Wasm", config={
                "name": "mcp_gateway",
                "root_id": "mcp_gateway",
                "failure_policy": "FAIL_RELOAD",
                "allow_on_headers_stop_iteration": True,
                "vm_config": {"vm_id": "mcp_gateway", "runtime": "envoy.wasm.runtime.v8",
                              "code": {"local": {"filename": wasm_path}}},
                "configuration": _typed("google.protobuf.StringValue",
                                        value=json.dumps(gateway_config, separators=(",", ":"))),
            })}


def chain(name, ctx):
    """The HTTP filter list of configuration `name` (A-G)."""
    if name == "A":
        return [f_buffer(), f_router()]
    base = [f_body_limit(), f_mcp()]
    if name == "B":
        return base + [f_buffer(), f_router()]
    if name == "C":
        return [f_body_limit(), f_jwt_authn(ctx["jwks_json"]), f_mcp(), f_rbac(), f_local_ratelimit(),
                f_buffer(), f_router()]
    if name in ("D0", "DN", "D", "E", "F", "G"):
        return base + [f_wasm(ctx["wasm"], ctx["gateway_configs"][name]), f_buffer(), f_router()]
    raise ValueError(name)


def bootstrap(name, ctx, port, admin_port):
    body = large_result() if name == "G" else SMALL_RESULT
    hcm = _typed(
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        stat_prefix="bench",
        codec_type="HTTP1",
        http_filters=chain(name, ctx),
        route_config={
            "name": "bench",
            "max_direct_response_body_size_bytes": 65536,
            "virtual_hosts": [{
                "name": "bench", "domains": ["*"],
                "routes": [{"name": "bench", "match": {"prefix": "/"},
                            "direct_response": {"status": 200, "body": {"inline_string": body}},
                            "response_headers_to_add": [{"header": {"key": "content-type",
                                                                    "value": "application/json"},
                                                         "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}]}],
            }],
        },
    )
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {"listeners": [{
            "name": "bench",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "per_connection_buffer_limit_bytes": MAX_BODY,
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                            "typed_config": hcm}]}],
        }]},
    }
