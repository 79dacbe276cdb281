#!/usr/bin/env python3
"""A command master key (KEK) provider for Sentrace, built on the openssl CLI.

Usage in sentrace.toml (see docs/keys.md for the protocol):

    [keys]
    kek = { command = ["/usr/bin/python3", "/opt/sentrace/kek-openssl.py", "/etc/sentrace/kek.hex"] }

The key file holds 64 hex characters (make it with `openssl rand -hex 32 > kek.hex` and
`chmod 600 kek.hex`); this script refuses a file that group or others can read.

Construction (encrypt-then-MAC; `openssl enc` has no AEAD mode):
    enc_key = HMAC-SHA-256(kek, "sentrace-example enc"), mac_key = HMAC-SHA-256(kek, "... mac")
    iv      = 16 random bytes (openssl rand)
    ct      = AES-256-CTR(enc_key, iv, data)        (openssl enc)
    tag     = HMAC-SHA-256(mac_key, len(aad) (8 bytes BE) || aad || iv || ct)
    wrapped = iv || ct || tag
Unwrap checks the tag in constant time before decrypting; a mismatch exits 1. It stands in
for a real KMS CLI (cloud KMS, Vault transit, an HSM tool) with the same stdin/stdout shape.
"""

import base64
import hashlib
import hmac
import json
import os
import stat
import subprocess
import sys


def fail(msg, code=1):
    print(msg, file=sys.stderr)
    sys.exit(code)


def load_kek(path):
    st = os.stat(path)
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        fail(f"{path}: group or others may read it; chmod 600")
    text = open(path).read().strip()
    if len(text) != 64:
        fail(f"{path}: expected 64 hex characters")
    return bytes.fromhex(text)


def openssl(args, data=b""):
    r = subprocess.run(["openssl", *args], input=data, capture_output=True)
    if r.returncode != 0:
        fail("openssl " + args[0] + ": " + r.stderr.decode(errors="replace").strip())
    return r.stdout


def ctr(key, iv, data):
    return openssl(["enc", "-aes-256-ctr", "-nosalt", "-K", key.hex(), "-iv", iv.hex()], data)


def main():
    if len(sys.argv) != 2:
        fail("usage: kek-openssl.py KEY_FILE", 2)
    kek = load_kek(sys.argv[1])
    req = json.loads(sys.stdin.read(1 << 20))
    if req.get("version") != 1:
        fail("unsupported protocol version")
    aad = base64.b64decode(req["aad"])
    data = base64.b64decode(req["data"])
    enc_key = hmac.new(kek, b"sentrace-example enc", hashlib.sha256).digest()
    mac_key = hmac.new(kek, b"sentrace-example mac", hashlib.sha256).digest()

    def tag(iv, ct):
        m = hmac.new(mac_key, len(aad).to_bytes(8, "big") + aad + iv + ct, hashlib.sha256)
        return m.digest()

    if req["op"] == "wrap":
        iv = openssl(["rand", "16"])
        ct = ctr(enc_key, iv, data)
        out = iv + ct + tag(iv, ct)
    elif req["op"] == "unwrap":
        if len(data) < 48:
            fail("wrapped key too short")
        iv, ct, t = data[:16], data[16:-32], data[-32:]
        if not hmac.compare_digest(t, tag(iv, ct)):
            fail(f"authentication failed for {req.get('key_id')} of tenant {req.get('tenant')}")
        out = ctr(enc_key, iv, ct)
    else:
        fail("unknown op " + str(req["op"]))
    json.dump({"data": base64.b64encode(out).decode()}, sys.stdout)


main()
