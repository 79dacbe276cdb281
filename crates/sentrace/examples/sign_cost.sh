#!/usr/bin/env bash
# Ingest spans/s for signed vs unsigned batches: one release server, a source key made
# with `sentrace keys source-new`, `sentrace loadgen` with and without --sign-key,
# interleaved, ROUNDS rounds. Client signing runs on the same machine, so the ratio is
# the whole-system cost (server verification + client signing).
#   cargo build --release -p sentrace
#   crates/sentrace/examples/sign_cost.sh [path/to/sentrace] [rounds] [requests]
set -euo pipefail
BIN=${1:-target/release/sentrace}
ROUNDS=${2:-3}
REQUESTS=${3:-200}
WORK=$(mktemp -d)
trap 'kill $(cat "$WORK"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$WORK"' EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

d="$WORK/srv"; mkdir -p "$d"
g=$(port); h=$(port); q=$(port)
printf '[listen]\notlp_grpc = "127.0.0.1:%s"\notlp_http = "127.0.0.1:%s"\nquery = "127.0.0.1:%s"\n' \
  "$g" "$h" "$q" > "$d/sentrace.toml"
"$BIN" serve --data-dir "$d/data" --config "$d/sentrace.toml" > "$d/out" 2> "$d/err" &
echo $! > "$WORK/srv.pid"
for _ in $(seq 1 300); do grep -q "sentrace: ready" "$d/out" && break; sleep 0.2; done
"$BIN" tokens create --data-dir "$d/data" --tenant bench --role ingest > "$d/token"
"$BIN" keys source-new --data-dir "$d/data" --tenant bench --source loadgen --out "$d/source.key" > /dev/null

run() { # extra loadgen args
  "$BIN" loadgen --data-dir "$d/data" --endpoint "https://localhost:$h/v1/traces" \
    --token "$(cat "$d/token")" --requests "$REQUESTS" --json "$@"
}

for r in $(seq 1 "$ROUNDS"); do
  echo "round $r unsigned $(run)"
  echo "round $r signed   $(run --sign-key "$d/source.key" --source loadgen)"
done
