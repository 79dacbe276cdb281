"""The web console in a real browser: the OpenTelemetry Python SDK sends a trace with an
email (minimized by the server), an SQL injection (a finding) and a 1,000-span trace; then
tests/console/console.mjs drives Debian's chromium with playwright-core through login,
search, the waterfall, findings, integrity and logout, failing on any console error, page
error or CSP violation. Screenshots land in target/console-artifacts/."""

import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from conftest import Server
from test_otel_sdk import make_exporter

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONSOLE_DIR = os.path.join(ROOT, "tests", "console")
ARTIFACTS = os.path.join(ROOT, "target", "console-artifacts")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
EMAIL = "jane.doe@example.com"
SERVICE = "console-shop"

RESPONSE_POLICY = """
format = 1
[[rule]]
id = "tag-and-quarantine-sqli"
families = ["sqli"]
actions = [
  { type = "tag_trace" },
  { type = "quarantine", subject = "client_address", ttl_secs = 3600 },
]
"""


@pytest.fixture(scope="module")
def console_server():
    binary = os.environ.get("SENTRACE_BIN")
    if not binary:
        pytest.fail("SENTRACE_BIN must point at the built sentrace binary")
    tmp = tempfile.mkdtemp(prefix="sentrace-console-")
    srv = Server(binary, os.path.join(tmp, "data"))
    policy = os.path.join(tmp, "response.toml")
    with open(policy, "w") as f:
        f.write(RESPONSE_POLICY)
    with open(srv.config, "a") as f:
        f.write(f'[detect.response]\npolicy = "{policy}"\n')
    srv.start()
    yield srv
    srv.stop()


def provider_for(server, token, batch=False, service=SERVICE):
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = make_exporter(server, "http", token)
    if batch:
        provider.add_span_processor(BatchSpanProcessor(exporter, max_export_batch_size=500))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def send_traces(server, token):
    provider = provider_for(server, token)
    tracer = provider.get_tracer("console.test")
    with tracer.start_as_current_span(
        "GET /checkout",
        kind=SpanKind.SERVER,
        attributes={"http.request.method": "GET", "user.email": EMAIL, "http.route": "/checkout"},
    ) as root:
        with tracer.start_as_current_span("SELECT carts", kind=SpanKind.CLIENT) as child:
            child.set_attribute("db.system", "postgresql")
            # A second service below it: an edge on the service map.
            db = provider_for(server, token, service=SERVICE + "-db")
            with db.get_tracer("console.test").start_as_current_span("query", kind=SpanKind.SERVER):
                pass
            db.force_flush()
            db.shutdown()
        plain = f"{root.get_span_context().trace_id:032x}"
    with tracer.start_as_current_span(
        "GET /products",
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": "GET",
            "url.path": "/products",
            "url.query": "id=1' OR 1=1 --",
            "http.route": "/products",
            "client.address": "203.0.113.9",
        },
    ) as attack:
        attack_id = f"{attack.get_span_context().trace_id:032x}"
    provider.force_flush()
    provider.shutdown()

    # 1,000 spans in one trace: a 4-ary tree with staggered times.
    provider = provider_for(server, token, batch=True)
    tracer = provider.get_tracer("console.test")
    base = time.time_ns() - 5_000_000_000
    spans = []
    for i in range(1000):
        parent = spans[(i - 1) // 4] if i else None
        ctx = otel_trace.set_span_in_context(parent) if parent is not None else None
        spans.append(
            tracer.start_span(f"step-{i}", context=ctx, start_time=base + i * 2_000_000)
        )
    for i, s in enumerate(spans):
        s.end(end_time=base + i * 2_000_000 + (1000 - i) * 3_000_000 + 1_000_000)
    big = f"{spans[0].get_span_context().trace_id:032x}"
    provider.force_flush()
    provider.shutdown()
    return plain, attack_id, big


def wait_for(what, fn, tries=100):
    for _ in range(tries):
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"{what} never appeared")


def test_console_in_a_real_browser(console_server):
    srv = console_server
    if not os.path.isdir(os.path.join(CONSOLE_DIR, "node_modules", "playwright-core")):
        pytest.fail("run `(cd tests/console && npm ci)` first (scripts/test.sh does)")
    if not shutil.which("node"):
        pytest.fail("node is missing (scripts/test.sh installs it)")
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test.sh does)")
    ingest = srv.token("default", "ingest")
    reader = srv.token("default", "admin")
    plain, attack, big = send_traces(srv, ingest)

    def spans_of(trace_id):
        r = srv.get(f"/api/traces/{trace_id}", reader)
        return len(r.json()["data"][0]["spans"]) if r.status_code == 200 else 0

    wait_for("the SDK trace", lambda: spans_of(plain) == 3)
    wait_for("the 1,000-span trace", lambda: spans_of(big) == 1000)
    wait_for(
        "the SQL injection finding",
        lambda: srv.get("/api/findings", reader, trace_id=attack).json().get("data"),
    )
    # A signed checkpoint for the integrity view (published every few seconds).
    wait_for(
        "a checkpoint",
        lambda: srv.get("/.well-known/sentrace/log/default/checkpoint", reader).status_code == 200,
        tries=300,
    )
    stored = srv.get(f"/api/traces/{plain}", reader).json()["data"][0]
    assert EMAIL not in json.dumps(stored), "the server stored the email unminimized"

    env = dict(
        os.environ,
        CONSOLE_URL=f"https://localhost:{srv.query_port}",
        CONSOLE_CA=srv.ca,
        CONSOLE_TOKEN=reader,
        CONSOLE_SERVICE=SERVICE,
        CONSOLE_TRACE_ID=plain,
        CONSOLE_EMAIL=EMAIL,
        CONSOLE_ATTACK_TRACE_ID=attack,
        CONSOLE_BIG_TRACE_ID=big,
        CONSOLE_ARTIFACTS=ARTIFACTS,
        CHROMIUM=CHROMIUM,
    )
    out = subprocess.run(
        ["node", os.path.join(CONSOLE_DIR, "console.mjs")],
        env=env, capture_output=True, text=True, timeout=300,
    )
    print(out.stdout)
    print(out.stderr)
    assert out.returncode == 0, f"browser test failed:\n{out.stdout}\n{out.stderr}"
    result = json.loads(out.stdout.strip().splitlines()[-1])
    # Printed for the record (a test asserts behaviour, not speed).
    print("console measurements:", json.dumps(result, indent=2))
    assert result["waterfall_1000_spans"]["render_ms"] is not None
    assert all(v > 0 for v in result["page_weight_bytes"].values())
    for name in ["01-login", "03-trace", "05-finding", "07-integrity", "10-logged-out"]:
        assert os.path.getsize(os.path.join(ARTIFACTS, f"{name}.png")) > 0
