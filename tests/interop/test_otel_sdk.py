"""Interop: the official OpenTelemetry Python SDK exports to Sentrace over TLS with a token,
over gRPC and over HTTP, and the traces read back through the Jaeger API value for value."""

import time

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpExporter,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode


def make_exporter(server, protocol, token):
    headers = {"authorization": f"Bearer {token}"}
    if protocol == "grpc":
        with open(server.ca, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        return GrpcExporter(
            endpoint=f"localhost:{server.grpc_port}", credentials=creds, headers=headers
        )
    return HttpExporter(
        endpoint=f"https://localhost:{server.http_port}/v1/traces",
        certificate_file=server.ca,
        headers=headers,
    )


def emit(server, protocol, token, service):
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "deployment.environment": "test"})
    )
    exporter = make_exporter(server, protocol, token)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("interop.test", "1.2.3")

    with tracer.start_as_current_span("linked-job") as other:
        other_ctx = other.get_span_context()
    with tracer.start_as_current_span(
        "GET /checkout",
        kind=SpanKind.SERVER,
        links=[Link(other_ctx, {"link.reason": "batch"})],
        attributes={
            "http.request.method": "GET",
            "http.response.status_code": 500,
            "retry": True,
            "ratio": 0.25,
            "tags.str": ["a", "b"],
            "tags.int": [1, 2, 3],
            "tags.bool": [True, False],
            "tags.float": [1.5, 2.5],
            "payment.card": "4111-1111-1111-1111",
            "user.email": "jane.doe@example.com",
        },
    ) as root:
        root.add_event("cache.miss", {"cache.key": "user:42", "attempt": 2})
        with tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT) as child:
            child.set_attribute("db.system", "postgresql")
        root.set_status(Status(StatusCode.ERROR, "payment declined"))
        trace_id = root.get_span_context().trace_id
        root_id = root.get_span_context().span_id
        child_id = child.get_span_context().span_id
    provider.force_flush()
    provider.shutdown()
    return f"{trace_id:032x}", f"{root_id:016x}", f"{child_id:016x}", f"{other_ctx.span_id:016x}", f"{other_ctx.trace_id:032x}"


def fetch_trace(server, token, trace_id):
    for _ in range(50):
        r = server.get(f"/api/traces/{trace_id}", token)
        if r.status_code == 200:
            return r.json()
        time.sleep(0.1)
    raise AssertionError(f"trace {trace_id} never appeared: {r.status_code} {r.text}")


def tags(obj):
    return {t["key"]: (t["type"], t["value"]) for t in obj}


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_sdk_roundtrip(server, protocol):
    ingest = server.token("default", "ingest")
    reader = server.token("default", "read")
    service = f"shop-{protocol}"
    trace_id, root_id, child_id, other_id, other_trace = emit(server, protocol, ingest, service)

    body = fetch_trace(server, reader, trace_id)
    assert body["errors"] is None
    [trace] = body["data"]
    assert trace["traceID"] == trace_id
    spans = {s["spanID"]: s for s in trace["spans"]}
    assert set(spans) == {root_id, child_id}

    root = spans[root_id]
    assert root["operationName"] == "GET /checkout"
    assert trace["processes"][root["processID"]]["serviceName"] == service
    ptags = tags(trace["processes"][root["processID"]]["tags"])
    assert ptags["deployment.environment"] == ("string", "test")
    t = tags(root["tags"])
    assert t["http.request.method"] == ("string", "GET")
    assert t["http.response.status_code"] == ("int64", 500)
    assert t["retry"] == ("bool", True)
    assert t["ratio"] == ("float64", 0.25)
    assert t["tags.str"] == ("string", '["a","b"]')
    assert t["tags.int"] == ("string", "[1,2,3]")
    assert t["tags.bool"] == ("string", "[true,false]")
    assert t["tags.float"] == ("string", "[1.5,2.5]")
    assert t["span.kind"] == ("string", "server")
    assert t["otel.status_code"] == ("string", "ERROR")
    assert t["otel.status_description"] == ("string", "payment declined")
    assert t["error"] == ("bool", True)
    assert t["otel.scope.name"] == ("string", "interop.test")
    assert t["otel.scope.version"] == ("string", "1.2.3")

    # Minimized on the server: the card is masked, the email pseudonymized, and every span
    # carries the digest of the policy that minimized it.
    assert t["payment.card"] == ("string", "<card>")
    assert t["user.email"][1].startswith("pse:email:")
    assert "jane.doe" not in str(body) and "4111" not in str(body)
    assert len(t["sentrace.policy.digest"][1]) == 64

    [log] = root["logs"]
    fields = tags(log["fields"])
    assert fields["event"] == ("string", "cache.miss")
    assert fields["cache.key"] == ("string", "user:42")
    assert fields["attempt"] == ("int64", 2)

    refs = root["references"]
    assert {"refType": "FOLLOWS_FROM", "traceID": other_trace, "spanID": other_id} in refs

    child = spans[child_id]
    assert child["operationName"] == "SELECT orders"
    assert child["references"] == [
        {"refType": "CHILD_OF", "traceID": trace_id, "spanID": root_id}
    ]
    assert tags(child["tags"])["db.system"] == ("string", "postgresql")
    assert child["startTime"] >= root["startTime"]
    assert child["duration"] <= root["duration"]

    # The service and its operations are listed, and search finds the trace by tag.
    services = server.get("/api/services", reader).json()["data"]
    assert service in services
    ops = server.get(f"/api/services/{service}/operations", reader).json()["data"]
    assert "GET /checkout" in ops and "SELECT orders" in ops
    found = server.get(
        "/api/traces", reader, service=service, tags='{"http.response.status_code":"500"}'
    ).json()["data"]
    assert trace_id in [t["traceID"] for t in found]

    # Native API: OTLP/JSON.
    native = server.get(f"/v1/traces/{trace_id}", reader).json()
    names = sorted(
        s["name"]
        for rs in native["resourceSpans"]
        for ss in rs["scopeSpans"]
        for s in ss["spans"]
    )
    assert names == ["GET /checkout", "SELECT orders"]


def test_wrong_token_is_refused_over_grpc(server):
    from opentelemetry.sdk.trace.export import SpanExportResult

    provider = TracerProvider(resource=Resource.create({"service.name": "intruder"}))
    exporter = make_exporter(server, "grpc", "st_0123456789abcdef_nottherealsecret")
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("x") as span:
        pass
    assert exporter.export([span]) == SpanExportResult.FAILURE
    reader = server.token("default", "read")
    assert "intruder" not in server.get("/api/services", reader).json()["data"]
