"""/metrics as Prometheus reads it: valid exposition text (parsed by the official Python
client's parser) for the operator, who sees the node-wide series, and for a tenant's reader,
who sees only its own tenant's series."""

import re

import requests

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_metrics_parse_and_stay_per_tenant(server):
    # Some traffic from two tenants, so the per-tenant series exist.
    other_reader = server.token("globex", "read")
    assert server.get("/api/services", other_reader).status_code == 200
    default_reader = server.token("default", "read")
    assert server.get("/api/services", default_reader).status_code == 200

    r = server.get("/metrics", server.admin_token)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    node = families(r.text)
    # Node-wide families for the operator tenant ("default").
    assert "sentrace_ingest_requests" in node, sorted(node)
    assert "sentrace_auth_failures" in node, sorted(node)
    # Typed families: latency histograms (the reads above were timed), build and process.
    assert node["sentrace_request_duration_seconds"].type == "histogram", sorted(node)
    assert node["sentrace_wal_fsync_duration_seconds"].type == "histogram", sorted(node)
    assert "sentrace_build_info" in node, sorted(node)
    assert node["process_resident_memory_bytes"].samples[0].value > 0
    for f in node.values():
        for s in f.samples:
            assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", s.name), s.name
            assert s.labels.get("tenant") in (None, "default"), (s.name, s.labels)

    r = server.get("/metrics", other_reader)
    assert r.status_code == 200, r.text
    own = families(r.text)
    assert own, r.text
    assert "sentrace_ingest_requests" not in own, "a tenant reader sees node-wide series"
    for f in own.values():
        for s in f.samples:
            assert s.labels.get("tenant") == "globex", (s.name, s.labels)


def test_metrics_are_strict_openmetrics_when_asked(server):
    """Prometheus asks for OpenMetrics first; the strict parser takes the whole text."""
    accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
    r = requests.get(
        f"https://localhost:{server.query_port}/metrics",
        headers={"Authorization": f"Bearer {server.admin_token}", "Accept": accept},
        verify=server.ca,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/openmetrics-text"), r.headers
    fams = {f.name: f for f in openmetrics_families(r.text)}
    assert fams["sentrace_ingest_requests"].type == "counter", sorted(fams)
    assert fams["sentrace_request_duration_seconds"].type == "histogram", sorted(fams)
