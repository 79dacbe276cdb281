#!/usr/bin/env python3
"""The bytes per span that a set of distinct spans needs in a good columnar layout.

    otlp-loadgen dump --out pool.json --requests 64
    python3 bench/span_floor.py pool.json [-v]

Reads OTLP/JSON lines (as `otlp-loadgen dump` writes them). Each span field and each
attribute key becomes its own column, the spans sorted by trace id then start (as blocks
are), integers written as varints, start times as deltas from the previous span's start,
end times as durations. Each column is compressed alone by the `zstd` program at levels 1
and 19 (when it is installed) and by LZMA2 at preset 9, extreme; the sums over the columns,
per span, are printed as one table. `-v` adds each column's LZMA bytes per span.

It is an estimate of a floor, not a proof: a coder built for one column could do a little
better, but no general encoding of these columns does much better than LZMA at its
strongest, and no layout can drop the random values the spans carry.
"""
import json
import lzma
import shutil
import struct
import subprocess
import sys
from collections import defaultdict


def varint(n):
    """`n` as a zigzag varint."""
    n = (n << 1) ^ (n >> 63) if n < 0 else n << 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def value_bytes(v):
    """One attribute value as its column stores it."""
    if "stringValue" in v:
        return v["stringValue"].encode() + b"\n"
    if "intValue" in v:
        return varint(int(v["intValue"]))
    if "doubleValue" in v:
        return struct.pack("<d", float(v["doubleValue"]))
    if "boolValue" in v:
        return b"\x01" if v["boolValue"] else b"\x00"
    return json.dumps(v, sort_keys=True).encode() + b"\n"


def lzma_size(data):
    """Bytes of `data` compressed raw with LZMA2 at preset 9, extreme (no container)."""
    filters = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]
    return len(lzma.compress(bytes(data), format=lzma.FORMAT_RAW, filters=filters))


def zstd_size(level):
    """Bytes of the data compressed by the `zstd` program at `level` (frame header included)."""
    def size(data):
        out = subprocess.run(["zstd", f"-{level}", "-q", "-c", "--no-check"], input=bytes(data),
                             capture_output=True, check=True).stdout
        return len(out)
    return size


CODECS = [("zstd 1", zstd_size(1)), ("zstd 19", zstd_size(19)), ("LZMA 9e", lzma_size)]


def main(path):
    """Prints the table for the spans in `path`."""
    spans = []
    resources = []
    for line in open(path):
        req = json.loads(line)
        for rs in req.get("resourceSpans", []):
            res = rs.get("resource", {})
            resources.append(json.dumps(res, sort_keys=True))
            svc = next((a["value"].get("stringValue", "") for a in res.get("attributes", [])
                        if a["key"] == "service.name"), "")
            for ss in rs.get("scopeSpans", []):
                scope = ss.get("scope", {}).get("name", "")
                for sp in ss.get("spans", []):
                    spans.append((svc, scope, sp))
    spans.sort(key=lambda t: (t[2]["traceId"], int(t[2]["startTimeUnixNano"])))
    cols = defaultdict(bytearray)
    prev_start = 0
    for i, (svc, scope, sp) in enumerate(spans):
        cols["trace_id"] += bytes.fromhex(sp["traceId"])
        cols["span_id"] += bytes.fromhex(sp["spanId"])
        cols["parent_span_id"] += bytes.fromhex(sp.get("parentSpanId", "")) or b"\x00"
        cols["service"] += svc.encode() + b"\n"
        cols["scope"] += scope.encode() + b"\n"
        cols["name"] += sp["name"].encode() + b"\n"
        cols["kind"] += bytes([sp.get("kind", 0)])
        start, end = int(sp["startTimeUnixNano"]), int(sp["endTimeUnixNano"])
        cols["start"] += varint(start - prev_start)
        cols["duration"] += varint(end - start)
        prev_start = start
        present = set()
        for a in sp.get("attributes", []):
            cols["attr:" + a["key"]] += value_bytes(a["value"])
            present.add(a["key"])
        cols["attr_keys"] += ("\t".join(sorted(present)) + "\n").encode()
        cols["events"] += json.dumps(sp.get("events", []), sort_keys=True).encode() + b"\n"
        cols["links"] += json.dumps(sp.get("links", []), sort_keys=True).encode() + b"\n"
        cols["status"] += json.dumps(sp.get("status", {}), sort_keys=True).encode() + b"\n"
    n = len(spans)
    cols["resources"] = bytearray("\n".join(resources).encode())
    codecs = CODECS if shutil.which("zstd") else CODECS[2:]
    sizes = {name: {k: pack(v) for k, v in cols.items()} for name, pack in codecs}
    def group(k):
        if k.startswith("attr"):
            return "attributes"
        if k in ("trace_id", "span_id", "parent_span_id", "start", "duration", "resources"):
            return k
        return "name, kind, service, scope, events, links, status"
    groups = defaultdict(lambda: defaultdict(int))
    for name, per_col in sizes.items():
        for k, s in per_col.items():
            groups[group(k)][name] += s
    names = [name for name, _ in codecs]
    last = names[-1]
    print(f"{n} distinct spans from {path}, one column per field and attribute key, each compressed alone")
    print("| columns | " + " | ".join(f"{c}, B/span" for c in names) + " |")
    print("|---|" + "---:|" * len(names))
    for g, per in sorted(groups.items(), key=lambda kv: -kv[1][last]):
        print(f"| {g} | " + " | ".join(f"{per[c] / n:.1f}" for c in names) + " |")
    print("| **total** | " + " | ".join(f"**{sum(sizes[c].values()) / n:.1f}**" for c in names) + " |")
    if "-v" in sys.argv:
        for k, s in sorted(sizes[last].items(), key=lambda kv: -kv[1]):
            print(f"  {k}: {s / n:.2f}", file=sys.stderr)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "-v"]
    if len(args) != 1:
        sys.exit("usage: span_floor.py REQUESTS.jsonl [-v]  (from `otlp-loadgen dump --out REQUESTS.jsonl`)")
    main(args[0])
