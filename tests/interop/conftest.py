"""Fixtures: a real `sentrace serve` on free loopback ports with TLS and a fresh data dir."""

import os
import socket
import subprocess
import tempfile
import time

import pytest
import requests


_GIVEN = set()


def free_port():
    """A free port not handed out before in this process: the kernel may give a port that
    was just released to the next bind, and two listeners on one port is a config error."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


class Server:
    def __init__(self, binary, data_dir):
        self.binary = binary
        self.data_dir = data_dir
        self.grpc_port = free_port()
        self.http_port = free_port()
        self.query_port = free_port()
        self.config = data_dir + ".toml"
        with open(self.config, "w") as f:
            f.write(
                "[listen]\n"
                f'otlp_grpc = "127.0.0.1:{self.grpc_port}"\n'
                f'otlp_http = "127.0.0.1:{self.http_port}"\n'
                f'query = "127.0.0.1:{self.query_port}"\n'
            )
        self.proc = None
        self.admin_token = None

    def start(self):
        self.log = open(self.data_dir + ".log", "ab")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--data-dir", self.data_dir, "--config", self.config],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        deadline = time.time() + 60
        lines = []
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("server exited early: " + "".join(lines))
            lines.append(line)
            # stdout is a pipe: a first start writes the admin token to a 0600 file and
            # prints its path.
            token_file = os.path.join(self.data_dir, "admin-token")
            if line.strip() == token_file:
                with open(token_file) as f:
                    self.admin_token = f.read().strip()
            if line.startswith("sentrace: ready"):
                return self
        raise RuntimeError("server did not become ready: " + "".join(lines))

    @property
    def ca(self):
        return os.path.join(self.data_dir, "tls", "ca.pem")

    def token(self, tenant, role):
        out = subprocess.run(
            [self.binary, "tokens", "create", "--data-dir", self.data_dir,
             "--tenant", tenant, "--role", role],
            check=True, capture_output=True, text=True,
        )
        return out.stdout.strip()

    def get(self, path, token, **params):
        return requests.get(
            f"https://localhost:{self.query_port}{path}",
            params=params,
            headers={"Authorization": f"Bearer {token}"},
            verify=self.ca,
            timeout=30,
        )

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def server():
    binary = os.environ.get("SENTRACE_BIN")
    if not binary:
        pytest.fail("SENTRACE_BIN must point at the built sentrace binary")
    tmp = tempfile.mkdtemp(prefix="sentrace-interop-")
    srv = Server(binary, os.path.join(tmp, "data")).start()
    yield srv
    srv.stop()
