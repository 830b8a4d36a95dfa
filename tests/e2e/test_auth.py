"""Authentication through real Envoy: API keys, RFC 9728 metadata, JWT/JWKS, session binding and
no token passthrough.

Envoy's `filesystem` cluster points at a recording MCP upstream (fixtures/upstream.py) so the
suite proves exactly what reaches a backend; JWKS comes from a local IdP reached through an
Envoy cluster (the filter fetches with dispatch_http_call).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from fixtures.common import (
    wait_log,
    ADMIN_KEY, FORBIDDEN, READER_KEY, UNAUTHORIZED, bearer, call, demo_api_keys, log_line, ok_result, post,
    result_text, rpc_error,
)
from fixtures.upstream import JwksServer, McpUpstream, add_upstream, chain
from harness import Envoy, RawSession, rpc, wait_until, with_filter_config

ISSUER = "https://idp.e2e.test/realms/mcp"
AUDIENCE = "https://mcp.e2e.test/mcp"
PRM = "/.well-known/oauth-protected-resource"


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class Keys:
    def __init__(self) -> None:
        self.rsa1 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rsa2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec1 = ec.generate_private_key(ec.SECP256R1())

    @staticmethod
    def jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
        algo = pyjwt.algorithms.RSAAlgorithm if alg.startswith("RS") else pyjwt.algorithms.ECAlgorithm
        d = algo.to_jwk(key.public_key(), as_dict=True)
        d.update({"kid": kid, "alg": alg, "use": "sig"})
        return d


def claims(sub: str = "jwt-user", **over: Any) -> dict[str, Any]:
    now = int(time.time())
    c = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 600, "permissions": ["*"]}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


def sign(key: Any, kid: str, alg: str = "RS256", **over: Any) -> str:
    return pyjwt.encode(claims(**over), key, algorithm=alg, headers={"kid": kid})


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="module")
def idp(keys: Keys) -> Iterator[JwksServer]:
    s = JwksServer([Keys.jwk(keys.rsa1, "rsa-1", "RS256"), Keys.jwk(keys.ec1, "ec-1", "ES256")])
    yield s
    s.stop()


def _auth_config(jwt: dict[str, Any]) -> dict[str, Any]:
    return {
        "backends": [{"name": "filesystem"}, {"name": "everything"}],
        "security": {
            "auth": {
                "enabled": True,
                "api_keys": demo_api_keys(),
                "resource_metadata": {"authorization_servers": [ISSUER], "scopes_supported": ["mcp:tools"]},
                "jwt": {"issuer": ISSUER, "audiences": [AUDIENCE], "leeway_secs": 5, **jwt},
            },
            "session_binding": {"enabled": True},
            # Authentication only: no injection verdicts or rate limits from the demo config.
            "injection": {"enabled": False},
            "rate_limit": {"enabled": False},
        },
    }


@pytest.fixture(scope="module")
def envoy(log_dir: Path, upstream: McpUpstream, keys: Keys) -> Iterator[Envoy]:
    """API keys + JWT with an inline key set (no IdP involved)."""
    inline = {"jwks": {"keys": [Keys.jwk(keys.rsa1, "rsa-1", "RS256"), Keys.jwk(keys.ec1, "ec-1", "ES256")]}}
    e = Envoy(log_dir, upstream.port, name="envoy-auth", mutate=with_filter_config(_auth_config(inline)))
    yield e
    e.stop()


@pytest.fixture(scope="module")
def jwks_envoy(log_dir: Path, upstream: McpUpstream, idp: JwksServer) -> Iterator[Envoy]:
    """JWT keys fetched from the IdP through an Envoy cluster (dispatch_http_call)."""
    remote = {"remote_jwks": {"cluster": "idp", "path": "/certs", "authority": "idp.e2e.test",
                              "refresh_secs": 2, "min_refetch_secs": 1, "timeout_ms": 1000}}
    e = Envoy(log_dir, upstream.port, name="envoy-auth-jwks",
              mutate=chain(add_upstream("idp", idp.port), with_filter_config(_auth_config(remote))))
    yield e
    e.stop()


def _challenge(r: httpx.Response) -> str:
    return r.headers.get("www-authenticate", "")


# --- API keys and the challenge --------------------------------------------------------------

def test_no_credentials_is_401_with_resource_metadata_challenge(envoy: Envoy, upstream: McpUpstream) -> None:
    upstream.clear()
    r, t = post(envoy, "/filesystem/mcp", call("read_text_file", {"path": "/x"}, id=11))
    rpc_error(r, 401, UNAUTHORIZED, None)
    ch = _challenge(r)
    assert ch.startswith("Bearer "), ch
    expected = f'resource_metadata="http://127.0.0.1:{envoy.port}{PRM}/filesystem/mcp"'
    assert expected in ch, ch
    assert "error=" not in ch, "no error code when no credentials were sent (RFC 6750 3.1)"
    line = log_line(envoy, t)
    assert (line["decision"], line["rule"], line["status"]) == ("auth_fail", "missing_credentials", 401)
    assert not [q for q in upstream.requests if q["method"] == "POST"], "a refused request reached the upstream"


def test_bad_api_key_is_401_invalid_token(envoy: Envoy) -> None:
    for headers in ({"x-api-key": "sk-not-a-key"}, bearer("sk-not-a-key")):
        r, t = post(envoy, "/filesystem/mcp", call("read_text_file", id=12), headers)
        rpc_error(r, 401, UNAUTHORIZED, None)
        ch = _challenge(r)
        assert 'error="invalid_token"' in ch and f"{PRM}/filesystem/mcp" in ch, ch
        line = log_line(envoy, t)
        assert (line["decision"], line["rule"]) == ("auth_fail", "unknown_api_key"), line


def test_x_api_key_and_bearer_api_key_work(envoy: Envoy) -> None:
    r, t = post(envoy, "/filesystem/mcp", call("read_text_file", {"path": "/a"}, id=13), {"x-api-key": READER_KEY})
    ok_result(r, 13)
    line = log_line(envoy, t)
    assert (line["decision"], line["client_id"], line["auth_method"]) == ("allow", "demo-reader", "api_key")
    r, t = post(envoy, "/filesystem/mcp", call("write_file", {"path": "/a"}, id=14), bearer(ADMIN_KEY))
    ok_result(r, 14)
    assert log_line(envoy, t)["client_id"] == "demo-admin"


def test_reader_key_is_authenticated_but_not_authorized_for_write(envoy: Envoy) -> None:
    r, t = post(envoy, "/filesystem/mcp", call("write_file", {"path": "/a"}, id="w-1"), {"x-api-key": READER_KEY})
    rpc_error(r, 403, FORBIDDEN, "w-1")
    line = log_line(envoy, t)
    assert (line["decision"], line["client_id"], line["tool"]) == ("deny", "demo-reader", "write_file")


def test_protected_resource_metadata_documents(envoy: Envoy) -> None:
    base = f"http://127.0.0.1:{envoy.port}"
    for path, resource in ((PRM, base), (f"{PRM}/filesystem/mcp", f"{base}/filesystem/mcp")):
        r = httpx.get(envoy.url + path)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("application/json")
        doc = r.json()
        assert doc["resource"] == resource, doc
        assert doc["authorization_servers"] == [ISSUER]
        assert doc["scopes_supported"] == ["mcp:tools"]
        assert doc["bearer_methods_supported"] == ["header"]
    # The metadata path is public, but a POST there is not a way around authentication.
    r, _ = post(envoy, f"{PRM}/x", call("read_text_file", id=15))
    assert r.status_code in (401, 404), r.status_code


# --- JWT ---------------------------------------------------------------------------------------

def _jwt_call(envoy: Envoy, token: str, id: Any = 21) -> tuple[httpx.Response, str]:
    return post(envoy, "/filesystem/mcp", call("read_text_file", {"path": "/j"}, id=id), bearer(token))


def test_rs256_and_es256_tokens_accepted(envoy: Envoy, keys: Keys) -> None:
    r, t = _jwt_call(envoy, sign(keys.rsa1, "rsa-1", "RS256", sub="alice"), id=21)
    ok_result(r, 21)
    line = log_line(envoy, t)
    assert (line["client_id"], line["auth_method"], line["decision"]) == ("alice", "jwt", "allow")
    r, t = _jwt_call(envoy, sign(keys.ec1, "ec-1", "ES256", sub="bob"), id=22)
    ok_result(r, 22)
    assert log_line(envoy, t)["client_id"] == "bob"


@pytest.mark.parametrize("case,rule", [
    ("expired", "expired"),
    ("audience", "wrong_audience"),
    ("issuer", "wrong_issuer"),
    ("alg_none", "algorithm_not_allowed"),
    ("hs256_public_key", None),
    ("tampered", "bad_signature"),
])
def test_bad_tokens_rejected(envoy: Envoy, keys: Keys, case: str, rule: str | None) -> None:
    now = int(time.time())
    if case == "expired":
        token = sign(keys.rsa1, "rsa-1", exp=now - 3600, iat=now - 7200)
    elif case == "audience":
        token = sign(keys.rsa1, "rsa-1", aud="https://other.example.com/mcp")
    elif case == "issuer":
        token = sign(keys.rsa1, "rsa-1", iss="https://evil.example.com")
    elif case == "alg_none":
        h = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "rsa-1"}).encode())
        token = f"{h}.{_b64(json.dumps(claims()).encode())}."
    elif case == "hs256_public_key":
        pem = keys.rsa1.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)
        h = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
        p = _b64(json.dumps(claims()).encode())
        sig = _b64(hmac.new(pem, f"{h}.{p}".encode(), hashlib.sha256).digest())
        token = f"{h}.{p}.{sig}"
    else:
        good = sign(keys.rsa1, "rsa-1", sub="mallory")
        h, _, s = good.split(".")
        token = f"{h}.{_b64(json.dumps(claims(sub='demo-admin')).encode())}.{s}"
    r, t = _jwt_call(envoy, token, id=30)
    rpc_error(r, 401, UNAUTHORIZED, None)
    assert 'error="invalid_token"' in _challenge(r)
    line = log_line(envoy, t)
    assert line["decision"] == "auth_fail" and line["client_id"] in ("", "-", None), line
    if rule:
        assert line["rule"] == rule, line
    else:
        assert line["rule"] in ("algorithm_not_allowed", "bad_signature"), line


def _consistently(envoy: Envoy, make_token: Any, status: int, n: int = 6, timeout: float = 15) -> None:
    """Polls until `n` consecutive fresh tokens (fresh connections: any worker) get `status`."""
    streak = [0]

    def check() -> bool:
        r, _ = _jwt_call(envoy, make_token(), id=40)
        streak[0] = streak[0] + 1 if r.status_code == status else 0
        return streak[0] >= n

    wait_until(check, timeout, f"{n} consecutive {status}s")


def test_remote_jwks_first_use(jwks_envoy: Envoy, keys: Keys) -> None:
    """The first token triggers a JWKS fetch through the Envoy cluster; then RS256 and ES256 work."""
    envoy = jwks_envoy
    _consistently(envoy, lambda: sign(keys.rsa1, "rsa-1", sub=f"f{time.monotonic_ns()}"), 200, n=3)
    r, t = _jwt_call(envoy, sign(keys.ec1, "ec-1", "ES256", sub="first-use"), id=39)
    ok_result(r, 39)
    assert (log_line(envoy, t)["client_id"], log_line(envoy, t)["auth_method"]) == ("first-use", "jwt")


def test_unknown_kid_fetch_never_fails_open(jwks_envoy: Envoy, keys: Keys, upstream: McpUpstream) -> None:
    """A token whose kid is unknown makes the filter pause the request and fetch the JWKS. Whatever
    the fetch returns, the request must then be decided (401 here): never forwarded undecided."""
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for i in range(3):
        time.sleep(1.2)  # > min_refetch_secs: this unknown kid triggers a fetch
        upstream.clear()
        r, t = _jwt_call(jwks_envoy, sign(stranger, f"never-published-{i}", sub=f"intruder-{i}"), id=45 + i)
        assert not [q for q in upstream.requests if q["method"] == "POST"], \
            f"request with an unknown kid was forwarded upstream (status {r.status_code})"
        rpc_error(r, 401, UNAUTHORIZED, None)
        line = log_line(jwks_envoy, t)
        assert (line["decision"], line["status"]) == ("auth_fail", 401), line


def test_jwks_rotation_while_running(jwks_envoy: Envoy, keys: Keys, idp: JwksServer) -> None:
    envoy = jwks_envoy
    old = lambda: sign(keys.rsa1, "rsa-1", sub=f"old-{time.monotonic_ns()}")  # noqa: E731
    new = lambda: sign(keys.rsa2, "rsa-2", sub=f"new-{time.monotonic_ns()}")  # noqa: E731
    base = [Keys.jwk(keys.ec1, "ec-1", "ES256")]
    # Before the IdP publishes rsa-2, its tokens are refused.
    r, t = _jwt_call(envoy, new(), id=41)
    rpc_error(r, 401, UNAUTHORIZED, None)
    assert log_line(envoy, t)["rule"] in ("unknown_kid", "unknown_key"), log_line(envoy, t)
    # The IdP publishes both keys: the unknown kid triggers a refetch, both keys work.
    idp.serve([Keys.jwk(keys.rsa1, "rsa-1", "RS256"), Keys.jwk(keys.rsa2, "rsa-2", "RS256")] + base)
    _consistently(envoy, new, 200)
    _consistently(envoy, old, 200)
    # The IdP retires rsa-1: once the refresh picks that up, rsa-1 tokens stop working, even one
    # that was accepted (and cached) before.
    cached = old()
    ok_result(_jwt_call(envoy, cached, id=42)[0], 42)
    idp.serve([Keys.jwk(keys.rsa2, "rsa-2", "RS256")] + base)
    _consistently(envoy, old, 401)
    _consistently(envoy, lambda: cached, 401, n=4)
    _consistently(envoy, new, 200)


def test_idp_down_known_keys_keep_working(jwks_envoy: Envoy, keys: Keys, idp: JwksServer) -> None:
    envoy = jwks_envoy
    idp.serve([Keys.jwk(keys.rsa2, "rsa-2", "RS256"), Keys.jwk(keys.ec1, "ec-1", "ES256")])
    _consistently(envoy, lambda: sign(keys.rsa2, "rsa-2", sub=f"u{time.monotonic_ns()}"), 200, n=2)
    before = idp.fetches
    idp.set_up(False)
    try:
        # Let every worker's refresh fail at least once.
        wait_until(lambda: idp.fetches >= before + 3, 15, "failed JWKS refreshes")
        for i in range(6):
            r, _ = _jwt_call(envoy, sign(keys.ec1, "ec-1", "ES256", sub=f"down-{i}"), id=50 + i)
            ok_result(r, 50 + i)
        # A token for a key the gateway never saw cannot be verified while the IdP is down.
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        r, _ = _jwt_call(envoy, sign(stranger, "rsa-9"), id=59)
        rpc_error(r, 401, UNAUTHORIZED, None)
    finally:
        idp.set_up(True)


async def _sdk(url: str, token: str) -> tuple[list[str], str]:
    async with httpx.AsyncClient(headers=bearer(token), timeout=30) as http:
        async with streamable_http_client(url, http_client=http) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = await session.list_tools()
                res = await session.call_tool("echo_headers", {})
                return [t.name for t in tools.tools], "".join(getattr(c, "text", "") for c in res.content)


def test_python_sdk_with_bearer_jwt(envoy: Envoy, keys: Keys) -> None:
    token = sign(keys.ec1, "ec-1", "ES256", sub="sdk-user")
    names, text = asyncio.run(_sdk(f"{envoy.url}/filesystem/mcp", token))
    assert "echo_headers" in names
    seen = json.loads(text)["headers"]
    assert seen.get("x-mcp-client-id") == "sdk-user"
    assert "authorization" not in seen
    line = wait_log(envoy, lambda l: l.get("client_id") == "sdk-user" and l.get("mcp_method") == "tools/call")[-1]
    assert (line["auth_method"], line["decision"], line["tool"]) == ("jwt", "allow", "echo_headers")


# --- sessions and passthrough ----------------------------------------------------------------

def test_session_hijack_refused(envoy: Envoy) -> None:
    admin = RawSession(envoy.url, "/filesystem/mcp", bearer(ADMIN_KEY))
    try:
        admin.initialize()
        sid = admin.session_id
        assert sid, "upstream issued no session id"
        status, msg = admin.call("tools/list", id=60)
        assert status == 200 and "result" in msg
        thief = RawSession(envoy.url, "/filesystem/mcp?t=hijack", {"x-api-key": READER_KEY})
        thief.session_id = sid
        r = thief.post(rpc("tools/list", id=61))
        rpc_error(r, 403, FORBIDDEN, None)
        line = wait_log(envoy, lambda l: l.get("path") == "/filesystem/mcp?t=hijack")[-1]
        assert (line["decision"], line["rule"], line["client_id"]) == ("deny", "session_principal_mismatch",
                                                                       "demo-reader")
        assert line["session"] and sid not in json.dumps(line), "raw session id logged"
        # The owner keeps using it.
        status, msg = admin.call("tools/list", id=62)
        assert status == 200 and msg["id"] == 62
        thief.close()
    finally:
        admin.close()


def test_no_token_passthrough_and_identity_header(envoy: Envoy, upstream: McpUpstream) -> None:
    upstream.clear()
    for creds in (bearer(ADMIN_KEY), {"x-api-key": ADMIN_KEY}):
        r, _ = post(envoy, "/filesystem/mcp", call("echo_headers", id=70),
                    {**creds, "x-mcp-client-id": "demo-reader", "X-MCP-Client-Id": "root"})
        seen = json.loads(result_text(ok_result(r, 70)))["headers"]
        assert "authorization" not in seen and "x-api-key" not in seen, seen
        assert seen.get("x-mcp-client-id") == "demo-admin", seen
    for q in upstream.requests:
        assert "authorization" not in q["headers"] and "x-api-key" not in q["headers"]
        blob = json.dumps(q["headers"])
        assert ADMIN_KEY not in blob and "demo-reader" not in blob
