#!/usr/bin/env bash
# Memory: server RSS under overload, then a soak at 80% of the measured maximum.
#
# Starts one release `sentrace serve` (default configuration, every feature on) on loopback
# with a fresh data directory, pinned to core 0 when taskset is available (the load
# generator on core 1), and drives it over OTLP/gRPC with TLS with the otlp-loadgen binary
# named by $LOADGEN (200 spans per request, 20 attributes per span), in rounds of 10 s:
#   1. max:      MAX_SECS of unlimited load, 8 requests in flight: the sustainable rate;
#   2. overload: OVERLOAD_SECS of unlimited load with 64 requests in flight (more than the
#                server takes): RSS must stay bounded, the excess refused with
#                RESOURCE_EXHAUSTED rather than queued;
#   3. soak:     SOAK_SECS at 80% of the max rate.
# After every round it samples the server's RSS (VmRSS), peak RSS (VmHWM) and open file
# descriptors, with the round's accepted spans/s, p99 latency and failures by gRPC code.
# Prints one table, then a summary: RSS spread after the first minute of the soak.
#
#   LOADGEN=path/to/otlp-loadgen bench/memory.sh
# Environment: MAX_SECS (20), OVERLOAD_SECS (60), SOAK_SECS (600), SENTRACE (path of the
# binary; default target/release/sentrace, built first unless NO_BUILD=1), KEEP=1 keeps the
# temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_SECS=${MAX_SECS:-20}
OVERLOAD_SECS=${OVERLOAD_SECS:-60}
SOAK_SECS=${SOAK_SECS:-600}
BIN=${SENTRACE:-target/release/sentrace}
: "${LOADGEN:?set LOADGEN to an otlp-loadgen binary}"
[ -x "$LOADGEN" ] || { echo "LOADGEN=$LOADGEN is not executable" >&2; exit 2; }
command -v python3 > /dev/null || { echo "python3 is required" >&2; exit 2; }
if [ "${NO_BUILD:-0}" != 1 ]; then cargo build --release -p sentrace >&2; fi
PIN_SERVER=(); PIN_LOAD=()
if command -v taskset > /dev/null && [ "$(nproc)" -ge 2 ]; then
  PIN_SERVER=(taskset -c 0); PIN_LOAD=(taskset -c 1)
fi

WORK=$(mktemp -d)
cleanup() {
  if [ -f "$WORK/pid" ]; then kill "$(cat "$WORK/pid")" 2> /dev/null || true; wait 2> /dev/null || true; fi
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
G=$(port); H=$(port); while [ "$H" = "$G" ]; do H=$(port); done
Q=$(port); while [ "$Q" = "$G" ] || [ "$Q" = "$H" ]; do Q=$(port); done
D="$WORK/data"
printf '[listen]\notlp_grpc = "127.0.0.1:%s"\notlp_http = "127.0.0.1:%s"\nquery = "127.0.0.1:%s"\n' \
  "$G" "$H" "$Q" > "$WORK/sentrace.toml"
"${PIN_SERVER[@]}" "$BIN" serve --data-dir "$D" --config "$WORK/sentrace.toml" > "$WORK/out" 2> "$WORK/err" &
echo $! > "$WORK/pid"
PID=$(cat "$WORK/pid")
for _ in $(seq 1 300); do grep -q "sentrace: ready" "$WORK/out" && break; sleep 0.2; done
grep -q "sentrace: ready" "$WORK/out" || { echo "server did not start:" >&2; cat "$WORK/err" >&2; exit 1; }
INGEST=$("$BIN" tokens create --data-dir "$D" --tenant bench --role ingest 2> /dev/null)
CA="$D/tls/ca.pem"

kib() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$PID/status"; }
fds() { ls "/proc/$PID/fd" | wc -l; }

# One round: phase, seconds, rate, in flight -> one table row (and the JSON in $WORK/last).
round() {
  "${PIN_LOAD[@]}" "$LOADGEN" grpc --endpoint "https://127.0.0.1:$G" --ca "$CA" --token "$INGEST" \
    --connections 2 --inflight "$4" --rate "$3" --duration "${2}s" --json > "$WORK/last"
  python3 - "$1" "$WORK/last" "$(kib VmRSS)" "$(kib VmHWM)" "$(fds)" "$(( $(date +%s) - T0 ))" <<'EOF'
import json, sys
phase, path, rss, hwm, fds, t = sys.argv[1:]
r = json.load(open(path))
failed = ",".join(f"{k}:{v}" for k, v in sorted(r["failed_by_code"].items())) or "-"
print(f"{phase:<9} {int(t):>6} {r['spans_accepted_per_s']:>10.0f} {r['latency_ms']['p99']:>9.1f} "
      f"{int(rss) // 1024:>8} {int(hwm) // 1024:>8} {fds:>5}  {failed}")
EOF
}

T0=$(date +%s)
printf '%-9s %6s %10s %9s %8s %8s %5s  %s\n' phase t_s spans/s p99_ms rss_MiB peak_MiB fds failed | tee "$WORK/table"
for _ in $(seq 1 $(( (MAX_SECS + 9) / 10 ))); do round max 10 unlimited 4 | tee -a "$WORK/table"; done
MAX=$(awk '$1 == "max" { if ($3 > m) m = $3 } END { printf "%d", m }' "$WORK/table")
for _ in $(seq 1 $(( (OVERLOAD_SECS + 9) / 10 ))); do round overload 10 unlimited 32 | tee -a "$WORK/table"; done
SOAK_RATE=$(( MAX * 8 / 10 ))
[ "$SOAK_RATE" -gt 0 ] || { echo "the max phase accepted nothing" >&2; exit 1; }
for _ in $(seq 1 $(( (SOAK_SECS + 9) / 10 ))); do round soak 10 "$SOAK_RATE" 4 | tee -a "$WORK/table"; done

python3 - "$WORK/table" "$MAX" "$SOAK_RATE" <<'EOF'
import sys
rows = [l.split() for l in open(sys.argv[1]).read().splitlines()[1:]]
def col(phase, i): return [float(r[i]) for r in rows if r[0] == phase]
over, soak = col("overload", 4), col("soak", 4)
print(f"\nmax {sys.argv[2]} spans/s; soak at {sys.argv[3]} spans/s (80%)")
if over:
    print(f"overload: RSS {min(over):.0f}..{max(over):.0f} MiB")
after = soak[6:]  # after the first minute
if after:
    half = len(after) // 2
    first, second = after[:half] or after, after[half:] or after
    print(f"soak after the first minute: RSS {min(after):.0f}..{max(after):.0f} MiB; "
          f"mean of the first half {sum(first) / len(first):.0f} MiB, "
          f"of the second half {sum(second) / len(second):.0f} MiB")
    p99 = col("soak", 3)[6:]
    print(f"soak p99: median {sorted(p99)[len(p99) // 2]:.1f} ms, max {max(p99):.1f} ms")
    fd = col("soak", 6)
    print(f"soak file descriptors: {min(fd):.0f}..{max(fd):.0f}")
EOF
