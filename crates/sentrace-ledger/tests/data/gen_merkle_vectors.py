#!/usr/bin/env python3
"""Independent RFC 9162 known-answer vectors for sentrace-ledger.

Written straight from the recursive definitions of RFC 9162 section 2.1.1 (MTH),
2.1.3.1 (PATH) and 2.1.4.1 (PROOF/SUBPROOF), with Python's hashlib only, so it
shares no code with the Rust implementation it checks.

Run: python3 gen_merkle_vectors.py > merkle_vectors.json
"""
import base64
import hashlib
import json

MAX_LEAVES = 20


def leaf_data(i):
    # Deterministic, varied lengths (including the empty string for leaf 0).
    return bytes((i * 7 + j) % 256 for j in range(i * 3))


def h(b):
    return hashlib.sha256(b).digest()


def mth(d):
    n = len(d)
    if n == 0:
        return h(b"")
    if n == 1:
        return h(b"\x00" + d[0])
    k = largest_pow2_below(n)
    return h(b"\x01" + mth(d[:k]) + mth(d[k:]))


def largest_pow2_below(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def path(m, d):
    n = len(d)
    if n == 1:
        return []
    k = largest_pow2_below(n)
    if m < k:
        return path(m, d[:k]) + [mth(d[k:])]
    return path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m, d, b):
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = largest_pow2_below(n)
    if m <= k:
        return subproof(m, d[:k], b) + [mth(d[k:])]
    return subproof(m - k, d[k:], False) + [mth(d[:k])]


def b64(x):
    return base64.b64encode(x).decode()


def main():
    data = [leaf_data(i) for i in range(MAX_LEAVES)]
    out = {
        "source": "RFC 9162 2.1 recursive definitions, Python hashlib (gen_merkle_vectors.py)",
        "leaves": [b64(x) for x in data],
        "roots": [b64(mth(data[:n])) for n in range(0, MAX_LEAVES + 1)],
        "inclusion": [],
        "consistency": [],
    }
    for n in range(1, MAX_LEAVES + 1):
        for m in range(n):
            out["inclusion"].append(
                {"index": m, "size": n, "path": [b64(x) for x in path(m, data[:n])]}
            )
    for n in range(1, MAX_LEAVES + 1):
        for m in range(1, n):
            out["consistency"].append(
                {"old": m, "new": n, "proof": [b64(x) for x in subproof(m, data[:n], True)]}
            )
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
