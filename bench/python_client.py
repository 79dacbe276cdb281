"""Whole-system figure: spans/s that one OpenTelemetry Python SDK client pushes through
Sentrace (BatchSpanProcessor → OTLP/gRPC over TLS with a token), read back to confirm.

usage: python bench/python_client.py --ca DATA/tls/ca.pem --token TOKEN [--port 4317] [--spans 20000]
"""

import argparse
import time

import grpc
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ca", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--port", type=int, default=4317)
    ap.add_argument("--spans", type=int, default=20000)
    a = ap.parse_args()
    with open(a.ca, "rb") as f:
        creds = grpc.ssl_channel_credentials(root_certificates=f.read())
    exporter = OTLPSpanExporter(
        endpoint=f"localhost:{a.port}",
        credentials=creds,
        headers={"authorization": f"Bearer {a.token}"},
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "bench-python"}))
    provider.add_span_processor(
        BatchSpanProcessor(exporter, max_queue_size=a.spans, max_export_batch_size=512)
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
    print(f"spans={a.spans} create_s={t_create:.2f} total_s={t_total:.2f} "
          f"spans_per_s={a.spans / t_total:.0f}")


if __name__ == "__main__":
    main()
