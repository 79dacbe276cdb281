"""docs/openapi.yaml against the live server, with schemathesis: every operation of the query
listener is called with generated valid and invalid parameters (a read token), and OTLP/HTTP
`POST /v1/traces` with generated bodies (an ingest token). No answer may be a 5xx, use a
status code the document does not list for the operation, or break the response schema the
document gives.

The run is bounded (examples per operation and a time budget), so the whole file stays
within a few minutes on two cores. A failing run prints schemathesis' report, with the curl
command that reproduces each failure."""

import base64
import json
import os
import re
import subprocess
import sys
import time

import pytest
import requests

from conftest import Server

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = os.path.join(ROOT, "docs", "openapi.yaml")
CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"
# Operations that are not on the listener under test: OTLP/HTTP ingest (its own listener,
# tested below) and the witness's add-checkpoint (`sentrace witness`, another process).
QUERY_EXCLUDE = ["--exclude-operation-id", "otlpExport", "--exclude-operation-id", "witnessAddCheckpoint"]


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    """A server of its own: the generated requests open sessions, grants and audit records
    that other tests should not see."""
    binary = os.environ.get("SENTRACE_BIN")
    if not binary:
        pytest.fail("SENTRACE_BIN must point at the built sentrace binary")
    srv = Server(binary, str(tmp_path_factory.mktemp("openapi") / "data")).start()
    yield srv
    srv.stop()


def export_spans(srv, token, n=5):
    """A few real traces, so that searches and trace reads answer with data."""
    now = time.time_ns()
    spans = []
    for i in range(n):
        spans.append({
            "traceId": f"{i + 1:032x}",
            "spanId": f"{i + 1:016x}",
            "name": f"GET /items/{i}",
            "kind": 2,
            "startTimeUnixNano": str(now - 2_000_000_000 + i),
            "endTimeUnixNano": str(now - 1_000_000_000 + i),
            "attributes": [
                {"key": "http.request.method", "value": {"stringValue": "GET"}},
                {"key": "http.response.status_code", "value": {"intValue": "200"}},
            ],
            "events": [{"timeUnixNano": str(now - 1_500_000_000), "name": "cache miss"}],
            "status": {"code": 1},
        })
    body = {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
        "scopeSpans": [{"scope": {"name": "interop"}, "spans": spans}],
    }]}
    r = requests.post(
        f"https://localhost:{srv.http_port}/v1/traces",
        data=json.dumps(body),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        verify=srv.ca,
        timeout=30,
    )
    assert r.status_code == 200, r.text


def schemathesis(srv, token, url, extra, report, max_examples, max_time):
    cmd = [
        os.path.join(os.path.dirname(sys.executable), "schemathesis"), "run", SPEC,
        "--url", url,
        "--header", f"Authorization: Bearer {token}",
        "--tls-verify", srv.ca,
        "--checks", CHECKS,
        "--mode", "all",
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(max_examples),
        "--max-time", str(max_time),
        "--workers", "2",
        "--seed", "13",
        "--request-timeout", "30",
        "--suppress-health-check", "all",
        "--report", "ndjson",
        "--report-ndjson-path", report,
        "--no-color",
        *extra,
    ]
    env = dict(os.environ, SCHEMATHESIS_HOOKS="", NO_COLOR="1")
    # Run in the report's directory: schemathesis keeps a cache folder in its working directory.
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=max_time + 120, env=env,
        cwd=os.path.dirname(report),
    )


def failures_in_report(report, limit=20):
    """One line per failed check: operation, check, message, and the request (shortened)."""
    lines = []
    with open(report) as f:
        for line in f:
            event = json.loads(line).get("ScenarioFinished")
            if not event or event.get("status") != "failure":
                continue
            rec = event["recorder"]
            for case_id, checks in rec.get("checks", {}).items():
                for c in checks:
                    if c.get("status") == "success":
                        continue
                    failure = (c.get("failure_info") or {}).get("failure") or {}
                    uri = (rec.get("interactions", {}).get(case_id) or {}).get("request", {}).get("uri", "")
                    lines.append(
                        f"{rec['label']}: {c['name']}: {failure.get('message', '')!r} "
                        f"<- {uri[:300]}"
                    )
    return "\n".join(sorted(set(lines))[:limit])


def operations_in_report(report):
    """The operation labels that schemathesis sent at least one request to."""
    seen = set()
    with open(report) as f:
        for line in f:
            for label in re.findall(r'"label":\s*"((?:GET|POST|DELETE|PUT) [^"]+)"', line):
                seen.add(label)
    return seen


def documented_operations():
    ops = set()
    path = None
    with open(SPEC) as f:
        for line in f:
            m = re.match(r"^  (/\S*):\s*$", line)
            if m:
                path = m.group(1)
                continue
            m = re.match(r"^    (get|post|delete|put):\s*$", line)
            if m and path:
                ops.add(f"{m.group(1).upper()} {path}")
    return ops


def test_query_listener_matches_openapi(fuzz_server, tmp_path):
    srv = fuzz_server
    export_spans(srv, srv.token("default", "ingest"))
    reader = srv.token("default", "read")
    report = str(tmp_path / "query.ndjson")
    out = schemathesis(
        srv, reader, f"https://localhost:{srv.query_port}", QUERY_EXCLUDE, report,
        max_examples=12, max_time=100,
    )
    assert out.returncode == 0, failures_in_report(report) + "\n" + out.stdout[-3000:] + out.stderr[-2000:]
    # Every documented operation of this listener was exercised (nothing skipped because
    # the document could not be read).
    expected = documented_operations() - {"POST /v1/traces", "POST /add-checkpoint"}
    tested = operations_in_report(report)
    missing = expected - tested
    assert not missing, f"operations never tested: {sorted(missing)}\n{out.stdout[-4000:]}"
    # The server is still healthy after the run.
    assert srv.get("/readyz", reader).status_code == 200


def test_otlp_http_matches_openapi(fuzz_server, tmp_path):
    srv = fuzz_server
    ingest = srv.token("default", "ingest")
    report = str(tmp_path / "otlp.ndjson")
    out = schemathesis(
        srv, ingest, f"https://localhost:{srv.http_port}",
        ["--include-operation-id", "otlpExport"], report,
        max_examples=40, max_time=40,
    )
    assert out.returncode == 0, failures_in_report(report) + "\n" + out.stdout[-3000:] + out.stderr[-2000:]
    assert "POST /v1/traces" in operations_in_report(report), out.stdout[-4000:]
