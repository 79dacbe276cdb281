"""Interop: `sentrace export` writes a tenant's spans, decrypted, as plain Parquet that
DuckDB queries directly: spans sent by the OpenTelemetry Python SDK come back by service,
name and attribute, minimized as stored (the original email never appears), and the
export is in the tenant's audit log."""

import json
import os
import subprocess
import tempfile

import duckdb
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind

from conftest import Server


def emit(server, token, service, n):
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(
        SimpleSpanProcessor(
            OTLPSpanExporter(
                endpoint=f"https://localhost:{server.http_port}/v1/traces",
                certificate_file=server.ca,
                headers={"authorization": f"Bearer {token}"},
            )
        )
    )
    tracer = provider.get_tracer("export.test")
    for i in range(n):
        with tracer.start_as_current_span(
            "GET /orders/{id}",
            kind=SpanKind.SERVER,
            attributes={
                "http.route": "/orders/{id}",
                "http.response.status_code": 500 if i % 5 == 0 else 200,
                "user.email": "jane.doe@example.com",
            },
        ):
            with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT):
                pass
    provider.shutdown()


def test_export_is_plain_parquet_that_duckdb_queries():
    binary = os.environ["SENTRACE_BIN"]
    tmp = tempfile.mkdtemp(prefix="sentrace-export-")
    srv = Server(binary, os.path.join(tmp, "data")).start()
    try:
        token = srv.token("default", "ingest")
        emit(srv, token, "orders", 10)
    finally:
        srv.stop()

    out = os.path.join(tmp, "export")
    run = subprocess.run(
        [binary, "export", "--tenant", "default", "--since", "1h", "--to", out,
         "--data-dir", srv.data_dir],
        capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "exported 20 spans of tenant default" in run.stderr, run.stderr

    files = os.path.join(out, "*.parquet")
    db = duckdb.connect()
    rows = db.execute(
        f"SELECT service_name, name, kind, count(*) AS n FROM read_parquet('{files}') "
        "GROUP BY ALL ORDER BY name"
    ).fetchall()
    assert rows == [
        ("orders", "GET /orders/{id}", "server", 10),
        ("orders", "SELECT orders", "client", 10),
    ], rows

    # Attributes are a MAP of text values; the parent link and the durations are there.
    errors = db.execute(
        f"SELECT count(*) FROM read_parquet('{files}') "
        "WHERE attributes['http.response.status_code'] = '500'"
    ).fetchone()[0]
    assert errors == 2
    joined = db.execute(
        f"SELECT count(*) FROM read_parquet('{files}') c JOIN read_parquet('{files}') p "
        "ON c.parent_span_id = p.span_id AND c.trace_id = p.trace_id "
        "WHERE c.name = 'SELECT orders' AND p.duration_ns >= c.duration_ns"
    ).fetchone()[0]
    assert joined == 10

    # Exported as stored: minimized at ingest, never the original value.
    emails = {
        r[0]
        for r in db.execute(
            f"SELECT attributes['user.email'] FROM read_parquet('{files}') "
            "WHERE attributes['user.email'] IS NOT NULL"
        ).fetchall()
    }
    assert emails and "jane.doe@example.com" not in emails, emails
    # The stored form is exported opened: never the sensitive-value key's envelope
    # ("\\0STS", hex 00535453).
    assert not any(e.startswith("00535453") for e in emails), emails
    for name in os.listdir(out):
        with open(os.path.join(out, name), "rb") as f:
            assert b"jane.doe@example.com" not in f.read()

    audit = subprocess.run(
        [binary, "audit", "--tenant", "default", "--json", "--data-dir", srv.data_dir],
        capture_output=True, text=True, check=True,
    )
    exports = [
        json.loads(line)["record"]
        for line in audit.stdout.splitlines()
        if json.loads(line)["record"]["action"] == "export"
    ]
    assert len(exports) == 1 and exports[0]["spans_returned"] == 20, exports
