"""Each TLS listener (OTLP/gRPC, OTLP/HTTP, query) as sslyze, an outside TLS scanner, sees
it: TLS 1.3 only (SSL 2.0 to TLS 1.2 refused), AEAD cipher suites only, and a certificate
chain that validates under strict verification (sslyze verifies with cryptography's RFC 5280
server verifier, which refuses, among others, certificates without key identifiers) with the
generated CA as the only trust store.

sslyze's TLS client (nassl, built on OpenSSL 1.1.1) knows no post-quantum group, so the
hybrid key exchange is checked with pyOpenSSL on the OpenSSL 3.5 that the `cryptography`
wheel carries: a client whose group list is X25519 first, X25519MLKEM768 second (set through
an OpenSSL configuration file, the only way pyOpenSSL has to set groups) must end up with
X25519MLKEM768, which the server asks for with a HelloRetryRequest."""

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sslyze import (
    CertificateInfoExtraArgument,
    ScanCommand,
    ScanCommandAttemptStatusEnum,
    ScanCommandsExtraArguments,
    Scanner,
    ServerNetworkConfiguration,
    ServerNetworkLocation,
    ServerScanRequest,
    ServerScanStatusEnum,
)

# sslyze loads its bundled public trust stores too; some of their old roots have
# non-positive serial numbers, which cryptography warns about. Not our certificates.
pytestmark = pytest.mark.filterwarnings("ignore:Parsed a serial number")

LISTENERS = ["otlp-grpc", "otlp-http", "query"]
REFUSED_VERSIONS = {
    "SSL 2.0": ScanCommand.SSL_2_0_CIPHER_SUITES,
    "SSL 3.0": ScanCommand.SSL_3_0_CIPHER_SUITES,
    "TLS 1.0": ScanCommand.TLS_1_0_CIPHER_SUITES,
    "TLS 1.1": ScanCommand.TLS_1_1_CIPHER_SUITES,
    "TLS 1.2": ScanCommand.TLS_1_2_CIPHER_SUITES,
}
# The TLS 1.3 suites are all AEAD (RFC 8446 section 9.1 / B.4); the CCM ones are allowed by
# the RFC but not offered by rustls, so they would mean another TLS stack answered.
AEAD_SUITES = {
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
}


def port_of(server, listener):
    return {
        "otlp-grpc": server.grpc_port,
        "otlp-http": server.http_port,
        "query": server.query_port,
    }[listener]


@pytest.fixture(scope="module")
def scans(server):
    """One sslyze scan of every listener (run together: one scanner, bounded concurrency)."""
    commands = set(REFUSED_VERSIONS.values()) | {
        ScanCommand.TLS_1_3_CIPHER_SUITES,
        ScanCommand.CERTIFICATE_INFO,
        ScanCommand.ELLIPTIC_CURVES,
    }
    requests = {}
    for listener in LISTENERS:
        requests[listener] = ServerScanRequest(
            server_location=ServerNetworkLocation(
                hostname="localhost", port=port_of(server, listener), ip_address="127.0.0.1"
            ),
            network_configuration=ServerNetworkConfiguration(
                tls_server_name_indication="localhost", network_timeout=10
            ),
            scan_commands=commands,
            scan_commands_extra_arguments=ScanCommandsExtraArguments(
                certificate_info=CertificateInfoExtraArgument(custom_ca_file=Path(server.ca))
            ),
        )
    scanner = Scanner(per_server_concurrent_connections_limit=4, concurrent_server_scans_limit=3)
    scanner.queue_scans(list(requests.values()))
    by_port = {}
    for result in scanner.get_results():
        by_port[result.server_location.port] = result
    return {listener: by_port[port_of(server, listener)] for listener in LISTENERS}


def completed(scan, attr):
    assert scan.scan_status == ServerScanStatusEnum.COMPLETED, scan.connectivity_error_trace
    attempt = getattr(scan.scan_result, attr)
    assert attempt.status == ScanCommandAttemptStatusEnum.COMPLETED, attempt.error_trace
    return attempt.result


@pytest.mark.parametrize("listener", LISTENERS)
def test_only_tls13(scans, listener):
    scan = scans[listener]
    for name, command in REFUSED_VERSIONS.items():
        result = completed(scan, command.value)
        assert result.accepted_cipher_suites == [], (
            f"{listener} accepts {name}: "
            + ", ".join(s.cipher_suite.name for s in result.accepted_cipher_suites)
        )
    tls13 = completed(scan, "tls_1_3_cipher_suites")
    assert tls13.is_tls_version_supported, f"{listener} does not speak TLS 1.3"
    assert scan.connectivity_result.highest_tls_version_supported.name == "TLS_1_3"


@pytest.mark.parametrize("listener", LISTENERS)
def test_aead_suites_only(scans, listener):
    tls13 = completed(scans[listener], "tls_1_3_cipher_suites")
    accepted = {s.cipher_suite.name for s in tls13.accepted_cipher_suites}
    assert accepted, f"{listener}: no TLS 1.3 suite accepted"
    assert accepted <= AEAD_SUITES, f"{listener}: non-AEAD or unexpected suites {accepted - AEAD_SUITES}"
    # Every suite is GCM or ChaCha20-Poly1305, whatever the naming.
    for suite in tls13.accepted_cipher_suites:
        assert "GCM" in suite.cipher_suite.name or "POLY1305" in suite.cipher_suite.name, suite


@pytest.mark.parametrize("listener", LISTENERS)
def test_chain_valid_under_strict_verification(scans, server, listener):
    info = completed(scans[listener], "certificate_info")
    assert info.certificate_deployments, f"{listener}: no certificate seen"
    for deployment in info.certificate_deployments:
        custom = [
            r for r in deployment.path_validation_results
            if r.trust_store.path.resolve() == Path(server.ca).resolve()
        ]
        assert len(custom) == 1, [r.trust_store.name for r in deployment.path_validation_results]
        result = custom[0]
        assert result.was_validation_successful, f"{listener}: {result.validation_error}"
        assert deployment.received_chain_has_valid_order, listener
        # The leaf names its issuer's key and its own (what strict verifiers need).
        leaf = deployment.received_certificate_chain[0]
        exts = {e.oid.dotted_string for e in leaf.extensions}
        assert "2.5.29.35" in exts, f"{listener}: leaf has no Authority Key Identifier"
        assert "2.5.29.14" in exts, f"{listener}: leaf has no Subject Key Identifier"
        # Nothing validates it against the public web's roots: only our CA vouches for it.
        assert not any(
            r.was_validation_successful for r in deployment.path_validation_results if r is not result
        ), listener


@pytest.mark.parametrize("listener", LISTENERS)
def test_classical_groups_seen_by_sslyze(scans, listener):
    """The groups sslyze can offer (no hybrid among them): X25519 is accepted, and nothing
    weaker than P-256."""
    curves = completed(scans[listener], "elliptic_curves")
    assert curves.supports_ecdh_key_exchange, listener
    names = {c.name for c in curves.supported_curves}
    assert "X25519" in names, names
    weak = {n for n in names if n.startswith(("sect", "secp1", "secp224", "brainpool", "prime192"))}
    assert not weak, f"{listener}: weak groups {weak}"


HYBRID_PROBE = textwrap.dedent("""
    import socket, sys
    from OpenSSL import SSL
    port, ca = int(sys.argv[1]), sys.argv[2]
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    ctx.load_verify_locations(ca)
    ctx.set_verify(SSL.VERIFY_PEER, lambda *a: a[-1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.setblocking(True)
        conn = SSL.Connection(ctx, raw)
        conn.set_tlsext_host_name(b"localhost")
        conn.set_connect_state()
        conn.do_handshake()
        # pyOpenSSL 25 has no get_group_name; the binding it runs on has the call.
        from OpenSSL._util import ffi, lib
        name = lib.SSL_get0_group_name(conn._ssl)
        print(ffi.string(name).decode() if name != ffi.NULL else "")
        conn.shutdown()
""")


def negotiated_group(server, listener, groups, tmp_path):
    conf = tmp_path / f"openssl-{listener}-{groups.replace(':', '-')}.cnf"
    conf.write_text(textwrap.dedent(f"""\
        openssl_conf = openssl_init
        [openssl_init]
        ssl_conf = ssl_sect
        [ssl_sect]
        system_default = system_default_sect
        [system_default_sect]
        Groups = {groups}
        """))
    out = subprocess.run(
        [sys.executable, "-c", HYBRID_PROBE, str(port_of(server, listener)), server.ca],
        env=dict(os.environ, OPENSSL_CONF=str(conf)),
        capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.parametrize("listener", LISTENERS)
def test_hybrid_group_for_a_client_listing_x25519_first(server, listener, tmp_path):
    # The configuration file is honoured: X25519 alone gives X25519 ...
    assert negotiated_group(server, listener, "X25519", tmp_path).lower() == "x25519"
    # ... and with X25519 listed first (its key share sent first), the server still picks
    # the hybrid group.
    group = negotiated_group(server, listener, "X25519:X25519MLKEM768", tmp_path)
    assert group == "X25519MLKEM768", f"{listener} negotiated {group}"
