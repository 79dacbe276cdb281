"""Each listener's TLS as a strict OpenSSL client sees it (Python's ssl module, with
VERIFY_X509_STRICT, which refuses certificates without key identifiers): the generated
chain verifies, only TLS 1.3 is spoken, with AEAD suites only."""

import socket
import ssl

import pytest


def ports(server):
    return {
        "otlp-grpc": server.grpc_port,
        "otlp-http": server.http_port,
        "query": server.query_port,
    }


def strict_context(server):
    ctx = ssl.create_default_context(cafile=server.ca)
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    return ctx


@pytest.mark.parametrize("listener", ["otlp-grpc", "otlp-http", "query"])
def test_strict_verification_tls13_aead(server, listener):
    port = ports(server)[listener]
    ctx = strict_context(server)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.version() == "TLSv1.3", tls.version()
            name, _, bits = tls.cipher()
            assert name in (
                "TLS_AES_256_GCM_SHA384",
                "TLS_AES_128_GCM_SHA256",
                "TLS_CHACHA20_POLY1305_SHA256",
            ), name
            assert bits >= 128


@pytest.mark.parametrize("listener", ["otlp-grpc", "otlp-http", "query"])
def test_tls12_is_refused(server, listener):
    port = ports(server)[listener]
    ctx = strict_context(server)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with pytest.raises(ssl.SSLError):
            with ctx.wrap_socket(raw, server_hostname="localhost"):
                pass
