"""The OTLP/HTTP refusals as real HTTP clients see them: Python requests (HTTP/1.1) and curl
over HTTP/1.1 and HTTP/2 get the same status for a wrong token, an oversized body and a bad
content type, time after time on the same connection pool, never a broken connection."""

import os
import re
import shutil
import subprocess
import tempfile

import pytest
import requests

from conftest import Server

# A small request limit, so oversized bodies stay cheap to send 100 times.
LIMIT = 65536
BODY = b"\0" * (4 * LIMIT)
CASES = [
    # (name, use the real token, content type, expected status)
    ("wrong token", False, "application/x-protobuf", 401),
    ("oversized", True, "application/x-protobuf", 413),
    ("bad content type", True, "text/plain", 415),
]
ROUNDS = 100


@pytest.fixture(scope="module")
def small_server():
    binary = os.environ.get("SENTRACE_BIN")
    if not binary:
        pytest.fail("SENTRACE_BIN must point at the built sentrace binary")
    tmp = tempfile.mkdtemp(prefix="sentrace-matrix-")
    srv = Server(binary, os.path.join(tmp, "data"))
    with open(srv.config, "a") as f:
        f.write(f"[limits]\nmax_request_bytes = {LIMIT}\n")
    srv.start()
    srv.ingest = srv.token("default", "ingest")
    yield srv
    srv.stop()


def url(srv):
    return f"https://localhost:{srv.http_port}/v1/traces"


def test_python_requests(small_server):
    srv = small_server
    with requests.Session() as s:
        for name, real, ct, want in CASES:
            token = srv.ingest if real else "st_0000000000000000_wrong"
            for i in range(ROUNDS):
                r = s.post(
                    url(srv),
                    data=BODY,
                    headers={"Authorization": f"Bearer {token}", "Content-Type": ct},
                    verify=srv.ca,
                    timeout=30,
                )
                assert r.status_code == want, f"{name} #{i}: {r.status_code} {r.text}"


@pytest.mark.parametrize("version", ["--http1.1", "--http2"])
def test_curl(small_server, version, tmp_path):
    curl = shutil.which("curl")
    if curl is None:
        pytest.fail("curl is required (scripts/test.sh installs it)")
    srv = small_server
    body = tmp_path / "body"
    body.write_bytes(BODY)
    for name, real, ct, want in CASES:
        token = srv.ingest if real else "st_0000000000000000_wrong"
        # One curl process sends every round, reusing its connection where it may.
        out = subprocess.run(
            [curl, "-sS", version, "--cacert", srv.ca,
             "-H", f"Authorization: Bearer {token}", "-H", f"Content-Type: {ct}",
             "--data-binary", f"@{body}",
             "-w", "\nSTATUS %{http_code} %{http_version}\n"]
            + [url(srv)] * ROUNDS,
            capture_output=True, text=True, timeout=300,
        )
        assert out.returncode == 0, f"{name}: curl failed: {out.stderr}"
        got = re.findall(r"^STATUS (\d+) (\S+)$", out.stdout, re.M)
        assert len(got) == ROUNDS, f"{name}: {out.stdout[-500:]} {out.stderr}"
        want_version = "2" if version == "--http2" else "1.1"
        for i, (status, v) in enumerate(got):
            assert int(status) == want, f"{name} #{i}: {status}: {out.stderr}"
            assert v == want_version, f"{name} #{i}: HTTP/{v}"
