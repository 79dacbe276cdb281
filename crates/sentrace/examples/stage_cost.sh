#!/usr/bin/env bash
# Ingest spans/s with one pipeline stage on vs off: two release servers identical but for
# `[SECTION] enabled` (detect, seal or minimize), `sentrace loadgen` against each,
# interleaved, ROUNDS rounds, then the median of the per-round off/on ratios.
#   cargo build --release -p sentrace
#   crates/sentrace/examples/stage_cost.sh [section] [path/to/sentrace] [rounds] [requests]
# SHAPE=server|trace (default trace) picks `loadgen --shape`.
set -euo pipefail
SECTION=${1:-detect}
BIN=${2:-target/release/sentrace}
ROUNDS=${3:-3}
REQUESTS=${4:-200}
case "$SECTION" in detect|seal|minimize) ;; *) echo "section must be detect, seal or minimize" >&2; exit 2;; esac
WORK=$(mktemp -d)
trap 'kill $(cat "$WORK"/*.pid 2>/dev/null) 2>/dev/null || true; wait; rm -rf "$WORK"' EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start() { # name enabled
  local d="$WORK/$1" g h q
  mkdir -p "$d"; g=$(port); h=$(port); q=$(port)
  printf '[listen]\notlp_grpc = "127.0.0.1:%s"\notlp_http = "127.0.0.1:%s"\nquery = "127.0.0.1:%s"\n[%s]\nenabled = %s\n' \
    "$g" "$h" "$q" "$SECTION" "$2" > "$d/sentrace.toml"
  "$BIN" serve --data-dir "$d/data" --config "$d/sentrace.toml" > "$d/out" 2> "$d/err" &
  echo $! > "$WORK/$1.pid"
  for _ in $(seq 1 100); do grep -q "sentrace: ready" "$d/out" && break; sleep 0.2; done
  echo "$h" > "$d/port"
  "$BIN" tokens create --data-dir "$d/data" --tenant bench --role ingest > "$d/token"
}

run() { # name
  local d="$WORK/$1"
  "$BIN" loadgen --data-dir "$d/data" --endpoint "https://localhost:$(cat "$d/port")/v1/traces" \
    --token "$(cat "$d/token")" --requests "$REQUESTS" --shape "${SHAPE:-trace}" --json
}

start on true
start off false
for r in $(seq 1 "$ROUNDS"); do
  on=$(run on); off=$(run off)
  echo "round $r on  $on"
  echo "round $r off $off"
  printf '%s\t%s\n' "$on" "$off" >> "$WORK/rounds"
done
python3 - "$WORK/rounds" "$SECTION" <<'PY'
import json, statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
costs = []
for on, off in rows:
    a = json.loads(on)["spans_per_second"]; b = json.loads(off)["spans_per_second"]
    costs.append(1 - a / b)
print(f"[{sys.argv[2]}] cost per round (1 - on/off): " + ", ".join(f"{c:+.1%}" for c in costs))
print(f"[{sys.argv[2]}] median cost: {statistics.median(costs):+.1%} over {len(costs)} rounds")
PY
