#!/usr/bin/env bash
# Several nodes sharing one bucket: ingest with 1 node, then with N nodes on the same
# machine, against a real S3-compatible server (s3s-fs) on loopback; the delay from an
# acknowledgement on one node to the span being readable on another; bytes in the bucket
# per span.
#
#   cargo build --release --bin sentrace
#   cargo install s3s-fs@0.14.1 --locked --features binary --root .tools   # scripts/test.sh does it too
#   LOADGEN=path/to/otlp-loadgen bench/nodes.sh
#
# For every node count in COUNTS a fresh s3s-fs (its own root, access keys made at run
# time) and that many `sentrace serve` nodes (release, `[seal] node` a, b, c, ..., one
# `[store] url`, one master key made at run time) are started. One otlp-loadgen per node
# sends to its node at the same time (unlimited rate) for DURATION; the total is the sum of
# their accepted spans/s. Meanwhile (with two or more nodes) PROBES one-span traces are sent
# over OTLP/HTTP to node i, one every PROBE_EVERY seconds, and node i+1 is polled every
# 100 ms until it answers the trace: the visibility delay, from the acknowledgement on one
# node to the first answer on another, with the bound the node publishes
# (`sentrace_peer_visibility_bound_seconds`). After the load every node is waited on until
# it has flushed everything; the bucket's bytes and the S3 requests s3s-fs served (start,
# ingest, flushes, listings and probes) are divided by the spans sent.
#
# The nodes share SERVER_CPUS (pinned with taskset), so with N nodes each gets 1/N of the
# same cores: the ratio N nodes / 1 node says what being a cluster costs on the same
# hardware, not how a cluster of N machines scales. The load generators, the probe and
# s3s-fs run on LOADGEN_CPUS.
#
# Environment (defaults in brackets):
#   LOADGEN         an otlp-loadgen binary (required; see BENCHMARKS.md)
#   BIN             the sentrace binary [target/release/sentrace]
#   S3_SERVER       the s3s-fs binary [.tools/bin/s3s-fs]
#   COUNTS          node counts to run, in order [1 2 3]
#   DURATION        load per node count [25s]
#   CONNECTIONS     connections per load generator [2]; INFLIGHT per connection [2]
#   SPANS           spans per request [200]; ATTRS attributes per span [20]
#   FLUSH_INTERVAL  [store] flush_interval of every node [10s]
#   PEER_REFRESH    [store] peer_refresh_interval of every node [5s]
#   PROBES          visibility probes per node count of two or more [6]; PROBE_EVERY [3]
#   SERVER_CPUS [0]  LOADGEN_CPUS [1]
set -euo pipefail
: "${LOADGEN:?set LOADGEN to an otlp-loadgen binary (see BENCHMARKS.md)}"
BIN=${BIN:-target/release/sentrace}
S3_SERVER=${S3_SERVER:-.tools/bin/s3s-fs}
COUNTS=${COUNTS:-1 2 3}
DURATION=${DURATION:-25s}
CONNECTIONS=${CONNECTIONS:-2}
INFLIGHT=${INFLIGHT:-2}
SPANS=${SPANS:-200}
ATTRS=${ATTRS:-20}
FLUSH_INTERVAL=${FLUSH_INTERVAL:-10s}
PEER_REFRESH=${PEER_REFRESH:-5s}
PROBES=${PROBES:-6}
PROBE_EVERY=${PROBE_EVERY:-3}
SERVER_CPUS=${SERVER_CPUS:-0}
LOADGEN_CPUS=${LOADGEN_CPUS:-1}
[ -x "$BIN" ] || { echo "$BIN not found: cargo build --release --bin sentrace" >&2; exit 2; }
[ -x "$S3_SERVER" ] || { echo "$S3_SERVER not found: cargo install s3s-fs@0.14.1 --locked --features binary --root .tools" >&2; exit 2; }

WORK=$(mktemp -d)
cleanup() {
  for p in "$WORK"/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rand_hex() { python3 -c "import secrets; print(secrets.token_hex($1))"; }
wait_port() { for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# The HTTP side: visibility probes, metrics, waiting for flushes (standard library only; the
# OTLP request is encoded by hand).
cat > "$WORK/probe.py" <<'PY'
import json, os, ssl, struct, sys, threading, time, urllib.request, urllib.error

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)

def field(num, wire, payload):
    key = varint(num << 3 | wire)
    if wire == 2:
        return key + varint(len(payload)) + payload
    return key + payload

def request(trace_id, span_id):
    now = time.time_ns()
    span = (field(1, 2, trace_id) + field(2, 2, span_id) + field(5, 2, b"visibility-probe")
            + field(6, 0, varint(2)) + field(7, 1, struct.pack("<Q", now - 1_000_000))
            + field(8, 1, struct.pack("<Q", now)))
    attr = field(1, 2, b"service.name") + field(2, 2, field(1, 2, b"bench-probe"))
    resource = field(1, 2, attr)
    rs = field(1, 2, resource) + field(2, 2, field(2, 2, span))
    return field(1, 2, rs)

def ctx(node):
    return ssl.create_default_context(cafile=node["ca"])

def get(node, path):
    req = urllib.request.Request(f"https://127.0.0.1:{node['query']}{path}",
                                 headers={"authorization": f"Bearer {node['token']}"})
    try:
        with urllib.request.urlopen(req, context=ctx(node), timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()

def metrics(node):
    status, body = get(node, "/metrics")
    out = {}
    for line in body.decode().splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, value = line.rsplit(" ", 1)
        try:
            out[name] = float(value)
        except ValueError:
            pass
    return out

def probe(nodes, k, results):
    a, b = nodes[k % len(nodes)], nodes[(k + 1) % len(nodes)]
    trace_id, span_id = os.urandom(16), os.urandom(8)
    req = urllib.request.Request(f"https://127.0.0.1:{a['http']}/v1/traces", data=request(trace_id, span_id),
                                 headers={"authorization": f"Bearer {a['token']}",
                                          "content-type": "application/x-protobuf"})
    try:
        with urllib.request.urlopen(req, context=ctx(a), timeout=60) as r:
            assert r.status == 200, r.status
    except Exception as e:  # a refused or timed-out probe is reported, not retried
        results.append({"from": a["name"], "to": b["name"], "delay_s": None, "error": str(e)})
        return
    acked = time.monotonic()
    deadline = acked + 180
    while time.monotonic() < deadline:
        try:
            status, body = get(b, f"/api/traces/{trace_id.hex()}")
        except Exception:  # a slow answer under load: ask again
            continue
        if status == 200 and json.loads(body)["data"][0]["spans"]:
            results.append({"from": a["name"], "to": b["name"], "delay_s": time.monotonic() - acked})
            return
        time.sleep(0.1)
    results.append({"from": a["name"], "to": b["name"], "delay_s": None})

def main():
    cmd, nodes = sys.argv[1], json.load(open(sys.argv[2]))
    if cmd == "visibility":
        count, every = int(sys.argv[3]), float(sys.argv[4])
        results, threads = [], []
        for k in range(count):
            t = threading.Thread(target=probe, args=(nodes, k, results))
            t.start()
            threads.append(t)
            time.sleep(every)
        for t in threads:
            t.join()
        bound = metrics(nodes[0]).get("sentrace_peer_visibility_bound_seconds")
        print(json.dumps({"probes": results, "bound_s": bound}))
    elif cmd == "wait-flushed":
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if all(metrics(n).get("sentrace_buffered_spans", 1) == 0 for n in nodes):
                return
            time.sleep(0.5)
        sys.exit("nodes did not flush within 300 s")

main()
PY

start_s3() { # run
  local d="$WORK/$1"
  mkdir -p "$d/s3/traces"
  S3_PORT=$(port); S3_KEY=$(rand_hex 10); S3_SECRET=$(rand_hex 20)
  # s3s logs every request's operation at debug: the request count per span.
  RUST_LOG=s3s::ops=debug taskset -c "$LOADGEN_CPUS" "$S3_SERVER" --host 127.0.0.1 --port "$S3_PORT" \
    --access-key "$S3_KEY" --secret-key "$S3_SECRET" "$d/s3" > "$d/s3.log" 2>&1 &
  echo $! > "$WORK/$1-s3.pid"
  wait_port "$S3_PORT" || { echo "s3s-fs did not listen" >&2; cat "$d/s3.log" >&2; exit 1; }
}

start_node() { # run name
  local d="$WORK/$1/$2" g h q
  mkdir -p "$d"; g=$(port); h=$(port); q=$(port)
  cat > "$d/sentrace.toml" <<EOF
[listen]
otlp_grpc = "127.0.0.1:$g"
otlp_http = "127.0.0.1:$h"
query = "127.0.0.1:$q"
[seal]
node = "$2"
[store]
url = "s3://traces/bench"
flush_interval = "$FLUSH_INTERVAL"
peer_refresh_interval = "$PEER_REFRESH"
EOF
  AWS_ENDPOINT_URL="http://127.0.0.1:$S3_PORT" AWS_ACCESS_KEY_ID="$S3_KEY" \
    AWS_SECRET_ACCESS_KEY="$S3_SECRET" AWS_REGION=us-east-1 AWS_ALLOW_HTTP=true \
    SENTRACE_MASTER_KEY="$MASTER" \
    taskset -c "$SERVER_CPUS" "$BIN" serve --data-dir "$d/data" --config "$d/sentrace.toml" \
    > "$d/out" 2> "$d/err" &
  echo $! > "$WORK/$1-$2.pid"
  for _ in $(seq 1 300); do grep -q "sentrace: ready" "$d/out" && break; sleep 0.2; done
  grep -q "sentrace: ready" "$d/out" || { echo "node $2 did not start:" >&2; cat "$d/err" >&2; exit 1; }
  SENTRACE_MASTER_KEY="$MASTER" "$BIN" tokens create --data-dir "$d/data" --tenant bench --role ingest > "$d/token" 2>> "$d/err"
  # The admin token (tenant `default`, the operator tenant) reads metrics and traces.
  printf '{"name": "%s", "grpc": %s, "http": %s, "query": %s, "ca": "%s", "token": "%s"}' \
    "$2" "$g" "$h" "$q" "$d/data/tls/ca.pem" "$(cat "$d/data/admin-token")" > "$d/node.json"
}

stop_run() { # run
  for p in "$WORK/$1"-*.pid; do kill "$(cat "$p")" 2>/dev/null || true; rm -f "$p"; done
  wait 2>/dev/null || true
}

names=(a b c d e f g h)
for n in $COUNTS; do
  run="n$n"; MASTER=$(rand_hex 32)
  start_s3 "$run"
  nodes=("${names[@]:0:$n}")
  for name in "${nodes[@]}"; do start_node "$run" "$name"; done
  python3 - "$WORK/$run" "${nodes[@]}" > "$WORK/$run/nodes.json" <<'PY'
import json, os, sys
print(json.dumps([json.load(open(os.path.join(sys.argv[1], n, "node.json"))) for n in sys.argv[2:]]))
PY
  seed=1; pids=()
  for name in "${nodes[@]}"; do
    d="$WORK/$run/$name"
    taskset -c "$LOADGEN_CPUS" "$LOADGEN" grpc --endpoint "https://127.0.0.1:$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["grpc"])' "$d/node.json")" \
      --ca "$d/data/tls/ca.pem" --token "$(cat "$d/token")" --connections "$CONNECTIONS" \
      --inflight "$INFLIGHT" --duration "$DURATION" --spans-per-request "$SPANS" --attrs "$ATTRS" \
      --seed "$seed" --json > "$d/load.json" &
    pids+=($!); seed=$((seed + 1))
  done
  if [ "$n" -ge 2 ]; then
    taskset -c "$LOADGEN_CPUS" python3 "$WORK/probe.py" visibility "$WORK/$run/nodes.json" "$PROBES" "$PROBE_EVERY" \
      > "$WORK/$run/visibility.json" &
    pids+=($!)
  fi
  for p in "${pids[@]}"; do wait "$p"; done
  python3 "$WORK/probe.py" wait-flushed "$WORK/$run/nodes.json"
  stop_run "$run"
  echo "ran $n node(s)" >&2
done

python3 - "$WORK" "$COUNTS" "$SERVER_CPUS" "$DURATION" "$FLUSH_INTERVAL" "$PEER_REFRESH" <<'PY'
import json, os, statistics, sys
work, counts, cpus, duration, flush, refresh = sys.argv[1], sys.argv[2].split(), *sys.argv[3:]
rows, detail, base = [], [], None
for n in counts:
    run = os.path.join(work, f"n{n}")
    nodes = json.load(open(os.path.join(run, "nodes.json")))
    loads = [json.load(open(os.path.join(run, x["name"], "load.json"))) for x in nodes]
    rate = sum(float(l.get("spans_accepted_per_s", 0)) for l in loads)
    spans = sum(int(l.get("spans_accepted", 0)) for l in loads)
    failed = sum(int(l.get("requests_failed", 0)) for l in loads)
    p99 = max(float(l["latency_ms"]["p99"]) for l in loads)
    total = objects = blocks = 0
    for root, _, files in os.walk(os.path.join(run, "s3", "traces")):
        for f in files:
            size = os.path.getsize(os.path.join(root, f))
            total += size; objects += 1
            if f.endswith(".parquet"):
                blocks += size
    ops = {}
    with open(os.path.join(run, "s3.log"), errors="replace") as f:
        for line in f:
            if "resolved route, op: " in line:
                op = line.split("resolved route, op: ", 1)[1].split(",", 1)[0].strip()
                ops[op] = ops.get(op, 0) + 1
    requests = sum(ops.values())
    vis = "-"
    path = os.path.join(run, "visibility.json")
    if os.path.exists(path):
        v = json.load(open(path))
        d = sorted(p["delay_s"] for p in v["probes"] if p["delay_s"] is not None)
        lost = sum(1 for p in v["probes"] if p["delay_s"] is None)
        if d:
            vis = f"{statistics.median(d):.1f} / {d[-1]:.1f} s (bound {v['bound_s']:.0f} s, {len(d)} probes"
            vis += f", {lost} not acknowledged or never seen)" if lost else ")"
    if base is None:
        base = rate
    rows.append((n, rate, rate / base if base else 0, p99, failed, spans, total / spans if spans else 0,
                 blocks / spans if spans else 0, objects, requests * 1e6 / spans if spans else 0, vis))
    detail.append(f"{n} node(s), S3 requests: " + ", ".join(f"{k} {v}" for k, v in sorted(ops.items())))
print(f"OTLP/gRPC, {duration} of unlimited load per node count, nodes pinned together to CPU(s) {cpus},")
print(f"flush_interval {flush}, peer_refresh_interval {refresh}")
print("| nodes | spans/s (total) | vs 1 node | p99 ms | failed | spans | bucket bytes/span | of which blocks | objects | S3 requests per 1M spans | visibility delay median / max |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for n, rate, ratio, p99, failed, spans, bps, blk, objects, rps, vis in rows:
    print(f"| {n} | {rate:,.0f} | {ratio:.2f} | {p99:.0f} | {failed} | {spans:,} | {bps:.1f} | {blk:.1f} | {objects} | {rps:,.0f} | {vis} |")
for line in detail:
    print(line)
PY
