#!/usr/bin/env bash
# A CPU profile of the ingest path: one `sentrace serve` pinned to one core under unlimited
# OTLP/gRPC load from the load generator on the other core, `perf record --call-graph
# dwarf` on the server meanwhile, then the functions with the largest inclusive share.
#
#   cargo build --release -p sentrace
#   LOADGEN=path/to/otlp-loadgen bench/profile.sh [outdir]
#
# Environment (defaults in brackets):
#   LOADGEN      an otlp-loadgen binary (required; see BENCHMARKS.md)
#   BIN          the sentrace binary [target/release/sentrace]
#   OFF          space-separated sections to turn off, e.g. "detect minimize seal" []
#   SECONDS_ON   seconds recorded [12]; FREQ samples per second [499]
#   TOP          rows printed [40]
#   SERVER_CPU [0]  LOADGEN_CPU [1]
# The folded stacks are kept in outdir/folded.txt (one `frame;frame;... count` per line)
# for further questions, e.g. what runs under one function:
#   python3 bench/profile_query.py outdir/folded.txt 'Walk::attrs' 2
set -euo pipefail
: "${LOADGEN:?set LOADGEN to an otlp-loadgen binary (see BENCHMARKS.md)}"
BIN=${BIN:-target/release/sentrace}
OFF=${OFF:-}
SECS=${SECONDS_ON:-12}
FREQ=${FREQ:-499}
TOP=${TOP:-40}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
OUT=${1:-$(mktemp -d)}
HERE=$(cd "$(dirname "$0")" && pwd)
command -v perf > /dev/null || { echo "perf not found (linux-perf / linux-tools)" >&2; exit 2; }
[ -x "$BIN" ] || { echo "$BIN not found: cargo build --release -p sentrace" >&2; exit 2; }
mkdir -p "$OUT"
d="$OUT/server"; rm -rf "$d"; mkdir -p "$d"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
g=$(port); h=$(port); q=$(port)
printf '[listen]\notlp_grpc = "127.0.0.1:%s"\notlp_http = "127.0.0.1:%s"\nquery = "127.0.0.1:%s"\n' \
  "$g" "$h" "$q" > "$d/sentrace.toml"
for s in $OFF; do printf '[%s]\nenabled = false\n' "$s" >> "$d/sentrace.toml"; done
taskset -c "$SERVER_CPU" "$BIN" serve --data-dir "$d/data" --config "$d/sentrace.toml" > "$d/out" 2> "$d/err" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 1 150); do grep -q "sentrace: ready" "$d/out" && break; sleep 0.2; done
grep -q "sentrace: ready" "$d/out" || { echo "server did not start:" >&2; cat "$d/err" >&2; exit 1; }
"$BIN" tokens create --data-dir "$d/data" --tenant bench --role ingest > "$d/token"
load() {
  taskset -c "$LOADGEN_CPU" "$LOADGEN" grpc --endpoint "https://127.0.0.1:$g" --ca "$d/data/tls/ca.pem" \
    --token "$(cat "$d/token")" --connections 4 --inflight 2 --duration "$1" \
    --spans-per-request 200 --attrs 20 --json
}
load 4s > "$OUT/warmup.json"
load "$((SECS + 4))s" > "$OUT/load.json" &
lg=$!
sleep 2
perf record -F "$FREQ" --call-graph dwarf,16384 -p "$pid" -o "$OUT/perf.data" -- sleep "$SECS" \
  > /dev/null 2> "$OUT/perf.err"
wait $lg
# --no-inline: resolving inlined frames through addr2line takes minutes per profile.
perf script -i "$OUT/perf.data" --no-inline -F comm,tid,ip,sym 2> /dev/null \
  | python3 "$HERE/profile_query.py" --fold > "$OUT/folded.txt"
echo "spans/s under perf (perf slows the server; use bench/ingest.sh for rates): $(python3 -c \
  'import json,sys; print(round(json.load(open(sys.argv[1]))["spans_accepted_per_s"]))' "$OUT/load.json")"
python3 "$HERE/profile_query.py" "$OUT/folded.txt" '' 0 "$TOP"
