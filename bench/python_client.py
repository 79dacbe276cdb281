"""Whole-system figure: spans/s that one OpenTelemetry Python SDK client pushes through
Sentrace (BatchSpanProcessor, then OTLP/gRPC or OTLP/HTTP over TLS with a token).

usage: python bench/python_client.py --ca DATA/tls/ca.pem --token TOKEN
           [--proto grpc|http] [--port PORT] [--spans 20000] [--json]

--port is the OTLP/gRPC port (default 4317) or, with --proto http, the OTLP/HTTP port
(default 4318). With --json it prints one JSON object in the shape of `otlp-loadgen --json`
(`spans_accepted`, `spans_accepted_per_s`, `requests_failed`, `latency_ms.p50/p99` of the
export calls), which `bench/ingest.sh` reads with CLIENT=python. `spans_accepted` counts the
spans of every export the SDK reports as a success: the SDK does not expose OTLP partial
success, so spans a server set aside in an accepted request are counted too.
"""

import argparse
import json
import statistics
import time

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult


class Timed(SpanExporter):
    """Times each export call of the wrapped exporter and counts its spans."""

    def __init__(self, inner):
        self.inner = inner
        self.latencies_ms = []
        self.ok = 0
        self.failed_requests = 0

    def export(self, spans):
        t = time.perf_counter()
        result = self.inner.export(spans)
        self.latencies_ms.append((time.perf_counter() - t) * 1000)
        if result == SpanExportResult.SUCCESS:
            self.ok += len(spans)
        else:
            self.failed_requests += 1
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return True


def exporter(a):
    headers = {"authorization": f"Bearer {a.token}"}
    if a.proto == "http":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(
            endpoint=f"https://localhost:{a.port or 4318}/v1/traces",
            certificate_file=a.ca,
            headers=headers,
        )
    import grpc
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    with open(a.ca, "rb") as f:
        creds = grpc.ssl_channel_credentials(root_certificates=f.read())
    return OTLPSpanExporter(
        endpoint=f"localhost:{a.port or 4317}", credentials=creds, headers=headers
    )


def percentile(xs, q):
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ca", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--proto", choices=["grpc", "http"], default="grpc")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--spans", type=int, default=20000)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.spans < 1:
        ap.error("--spans must be at least 1")
    timed = Timed(exporter(a))
    provider = TracerProvider(resource=Resource.create({"service.name": "bench-python"}))
    provider.add_span_processor(
        BatchSpanProcessor(timed, max_queue_size=a.spans, max_export_batch_size=512)
    )
    tracer = provider.get_tracer("bench")
    t0 = time.perf_counter()
    for i in range(a.spans):
        with tracer.start_as_current_span("GET /api/items") as s:
            for k in range(20):
                s.set_attribute(f"attr.{k}", f"value-{i}-{k}")
    t_create = time.perf_counter() - t0
    provider.force_flush()
    t_total = time.perf_counter() - t0
    provider.shutdown()
    if a.json:
        print(
            json.dumps(
                {
                    "spans_accepted": timed.ok,
                    "spans_accepted_per_s": timed.ok / t_total,
                    "requests_failed": timed.failed_requests,
                    "latency_ms": {
                        "p50": statistics.median(timed.latencies_ms or [0]),
                        "p99": percentile(timed.latencies_ms, 0.99),
                    },
                    "create_s": t_create,
                    "total_s": t_total,
                }
            )
        )
    else:
        print(
            f"spans={timed.ok} failed_requests={timed.failed_requests} create_s={t_create:.2f} "
            f"total_s={t_total:.2f} spans_per_s={timed.ok / t_total:.0f}"
        )


if __name__ == "__main__":
    main()
