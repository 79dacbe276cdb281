"""The OTLP/HTTP refusals as real HTTP clients see them: Python requests (HTTP/1.1) and curl
over HTTP/1.1 and HTTP/2 get the same status for a wrong token, an oversized body, a bad
content type and a source the server will not take more from (429 with Retry-After), time
after time on the same connection pool, never a broken connection."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import Server

# A small request limit, so oversized bodies stay cheap to send 100 times.
LIMIT = 65536
OVERSIZED = b"\0" * (4 * LIMIT)


def otlp_json(query, spans=2):
    """An OTLP/JSON request of `spans` server spans whose URL query is `query`."""
    now = time.time_ns()
    return json.dumps({"resourceSpans": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "shop"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": f"{now:016x}{i:016x}", "spanId": f"{i + 1:016x}",
            "name": "GET /products", "kind": 2,
            "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 1000),
            "attributes": [
                {"key": "http.request.method", "value": {"stringValue": "GET"}},
                {"key": "url.path", "value": {"stringValue": "/products"}},
                {"key": "url.query", "value": {"stringValue": query}},
                {"key": "client.address", "value": {"stringValue": "203.0.113.9"}},
            ]} for i in range(spans)]}]}]}).encode()


BENIGN = otlp_json("q=shoes")
# (name, which token, content type, body, expected status)
CASES = [
    ("wrong token", None, "application/x-protobuf", OVERSIZED, 401),
    ("oversized", "ingest", "application/x-protobuf", OVERSIZED, 413),
    ("bad content type", "ingest", "text/plain", OVERSIZED, 415),
    # The response policy throttled this credential to 1 span/s after its injection;
    # every 2-span request is over the budget.
    ("throttled source", "throttled", "application/json", BENIGN, 429),
]
ROUNDS = 100

# Injections from a credential throttle it (the 429 case).
RESPONSE_POLICY = """format = 1
[[rule]]
id = "throttle-sqli"
families = ["sqli"]
actions = [{ type = "throttle", subject = "principal", rate_per_sec = 1, ttl_secs = 3600 }]
"""


@pytest.fixture(scope="module")
def small_server():
    binary = os.environ.get("SENTRACE_BIN")
    if not binary:
        pytest.fail("SENTRACE_BIN must point at the built sentrace binary")
    tmp = tempfile.mkdtemp(prefix="sentrace-matrix-")
    srv = Server(binary, os.path.join(tmp, "data"))
    policy = os.path.join(tmp, "response.toml")
    with open(policy, "w") as f:
        f.write(RESPONSE_POLICY)
    with open(srv.config, "a") as f:
        f.write(f"[limits]\nmax_request_bytes = {LIMIT}\n")
        f.write(f'[detect.response]\npolicy = "{policy}"\n')
    srv.start()
    srv.tokens = {
        None: "st_0000000000000000_wrong",
        "ingest": srv.token("default", "ingest"),
        "throttled": srv.token("default", "ingest"),
    }
    throttle(srv)
    yield srv
    srv.stop()


def throttle(srv):
    """Sends an injection with the `throttled` credential and waits for its throttle."""
    headers = {"Authorization": f"Bearer {srv.tokens['throttled']}",
               "Content-Type": "application/json"}
    r = requests.post(url(srv), data=otlp_json("id=1' OR '1'='1' --", spans=1),
                      headers=headers, verify=srv.ca, timeout=30)
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = requests.post(url(srv), data=BENIGN, headers=headers, verify=srv.ca, timeout=30)
        if r.status_code == 429:
            assert int(r.headers["Retry-After"]) >= 1
            assert "throttled" in r.json()["message"], r.text
            return
        time.sleep(0.2)
    pytest.fail(f"the injection did not throttle its credential: {r.status_code} {r.text}")


def url(srv):
    return f"https://localhost:{srv.http_port}/v1/traces"


def test_python_requests(small_server):
    srv = small_server
    with requests.Session() as s:
        for name, who, ct, body, want in CASES:
            token = srv.tokens[who]
            for i in range(ROUNDS):
                r = s.post(
                    url(srv),
                    data=body,
                    headers={"Authorization": f"Bearer {token}", "Content-Type": ct},
                    verify=srv.ca,
                    timeout=30,
                )
                assert r.status_code == want, f"{name} #{i}: {r.status_code} {r.text}"
                if want == 429:
                    assert int(r.headers["Retry-After"]) >= 1, f"{name} #{i}"


@pytest.mark.parametrize("version", ["--http1.1", "--http2"])
def test_curl(small_server, version, tmp_path):
    curl = shutil.which("curl")
    if curl is None:
        pytest.fail("curl is required (scripts/test.sh installs it)")
    srv = small_server
    for n, (name, who, ct, data, want) in enumerate(CASES):
        token = srv.tokens[who]
        body = tmp_path / f"body{n}"
        body.write_bytes(data)
        # One curl process sends every round, reusing its connection where it may.
        out = subprocess.run(
            [curl, "-sS", version, "--cacert", srv.ca,
             "-H", f"Authorization: Bearer {token}", "-H", f"Content-Type: {ct}",
             "--data-binary", f"@{body}",
             "-w", "\nSTATUS %{http_code} %{http_version} retry=%header{retry-after}\n"]
            + [url(srv)] * ROUNDS,
            capture_output=True, text=True, timeout=300,
        )
        assert out.returncode == 0, f"{name}: curl failed: {out.stderr}"
        got = re.findall(r"^STATUS (\d+) (\S+) retry=(\S*)$", out.stdout, re.M)
        assert len(got) == ROUNDS, f"{name}: {out.stdout[-500:]} {out.stderr}"
        want_version = "2" if version == "--http2" else "1.1"
        for i, (status, v, retry) in enumerate(got):
            assert int(status) == want, f"{name} #{i}: {status}: {out.stderr}"
            if want == 429:
                assert int(retry) >= 1, f"{name} #{i}: Retry-After {retry!r}"
            assert v == want_version, f"{name} #{i}: HTTP/{v}"
