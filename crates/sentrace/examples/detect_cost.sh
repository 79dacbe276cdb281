#!/usr/bin/env bash
# Ingest spans/s with detection on vs off: two release servers (identical but for
# [detect] enabled), `sentrace loadgen` against each, interleaved, ROUNDS rounds.
#   cargo build --release -p sentrace
#   crates/sentrace/examples/detect_cost.sh [path/to/sentrace] [rounds] [requests]
set -euo pipefail
BIN=${1:-target/release/sentrace}
ROUNDS=${2:-3}
REQUESTS=${3:-200}
WORK=$(mktemp -d)
trap 'kill $(cat "$WORK"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$WORK"' EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() { # name enabled
  local d="$WORK/$1" g h q
  mkdir -p "$d"; g=$(port); h=$(port); q=$(port)
  printf '[listen]\notlp_grpc = "127.0.0.1:%s"\notlp_http = "127.0.0.1:%s"\nquery = "127.0.0.1:%s"\n[detect]\nenabled = %s\n' \
    "$g" "$h" "$q" "$2" > "$d/sentrace.toml"
  "$BIN" serve --data-dir "$d/data" --config "$d/sentrace.toml" > "$d/out" 2> "$d/err" &
  echo $! > "$WORK/$1.pid"
  for _ in $(seq 1 100); do grep -q "sentrace: ready" "$d/out" && break; sleep 0.2; done
  echo "$h" > "$d/port"
  "$BIN" tokens create --data-dir "$d/data" --tenant bench --role ingest > "$d/token"
}

run() { # name
  local d="$WORK/$1"
  "$BIN" loadgen --data-dir "$d/data" --endpoint "https://localhost:$(cat "$d/port")/v1/traces" \
    --token "$(cat "$d/token")" --requests "$REQUESTS" --json
}

start on true
start off false
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r on  $(run on)"
  echo "round $r off $(run off)"
done
