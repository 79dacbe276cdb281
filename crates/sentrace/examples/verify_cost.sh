#!/usr/bin/env bash
# Wall time of `sentrace verify` over a live server (--server, read token, TLS) vs offline
# (--data-dir on the stopped server's directory), for REQUESTS batches of SPANS spans
# (20 attributes each, the "typical span").
#   cargo build --release -p sentrace
#   crates/sentrace/examples/verify_cost.sh [path/to/sentrace] [requests] [spans]
set -euo pipefail
BIN=${1:-target/release/sentrace}
REQUESTS=${2:-200}
SPANS=${3:-500}
WORK=$(mktemp -d)
trap 'kill $(cat "$WORK"/pid 2>/dev/null) 2>/dev/null || true; rm -rf "$WORK"' EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

g=$(port); h=$(port); q=$(port)
printf '[listen]\notlp_grpc = "127.0.0.1:%s"\notlp_http = "127.0.0.1:%s"\nquery = "127.0.0.1:%s"\n[store]\nflush_interval = "2s"\n[seal.checkpoint]\nevery_secs = 1\n' \
  "$g" "$h" "$q" > "$WORK/sentrace.toml"
"$BIN" serve --data-dir "$WORK/data" --config "$WORK/sentrace.toml" > "$WORK/out" 2> "$WORK/err" &
echo $! > "$WORK/pid"
for _ in $(seq 1 100); do grep -q "sentrace: ready" "$WORK/out" && break; sleep 0.2; done
ingest=$("$BIN" tokens create --data-dir "$WORK/data" --tenant default --role ingest)
read=$("$BIN" tokens create --data-dir "$WORK/data" --tenant default --role read)
"$BIN" loadgen --data-dir "$WORK/data" --endpoint "https://localhost:$h/v1/traces" \
  --token "$ingest" --requests "$REQUESTS" --spans-per-request "$SPANS" --json
sleep 5 # the last checkpoint and block
t0=$(date +%s.%N)
"$BIN" verify --server "https://localhost:$q" --token "$read" --ca "$WORK/data/tls/ca.pem" \
  --json > "$WORK/remote.json" 2> /dev/null || true
t1=$(date +%s.%N)
kill "$(cat "$WORK/pid")"; wait "$(cat "$WORK/pid")" 2>/dev/null || true
t2=$(date +%s.%N)
"$BIN" verify --data-dir "$WORK/data" --json > "$WORK/offline.json" || true
t3=$(date +%s.%N)
summary() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); r=v["logs"][0]["report"]; print("ok=%s entries=%s batches=%s spans=%s bytes_hashed=%s" % (v["ok"], r["entries_checked"], r["batches_checked"], r["spans_checked"], r["bytes_hashed"]))' "$1"; }
echo "remote:  $(summary "$WORK/remote.json") seconds=$(echo "$t1 - $t0" | bc)"
echo "offline: $(summary "$WORK/offline.json") seconds=$(echo "$t3 - $t2" | bc)"
