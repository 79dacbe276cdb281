#!/usr/bin/env bash
# Ingest throughput on one core: every feature on vs every security stage off vs each stage
# off alone, same binary, same run, against the prost-decode floor measured in that run.
#
#   cargo build --release -p sentrace
#   LOADGEN=path/to/otlp-loadgen bench/ingest.sh [rounds]
#
# Each configuration is its own `sentrace serve` (release, embedded defaults plus one
# `[section] enabled = false` per stage turned off), pinned with `taskset -c $SERVER_CPU`;
# the load generator runs on `$LOADGEN_CPU`. Rounds interleave the configurations, so a
# noisy neighbour hits all of them alike; even rounds run them in reverse order, so no
# configuration always goes first or always follows another one's flush (all servers share
# the pinned core), and each run starts after a settle pause. The table gives the median of
# the rounds.
#
# Environment (defaults in brackets):
#   LOADGEN      an otlp-loadgen binary (required; see BENCHMARKS.md for where it comes from)
#   BIN          the sentrace binary [target/release/sentrace]
#   BIN_B        a second sentrace binary to compare with BIN (say, the build before a
#                change): a configuration named with `@b` (CONFIGS="on on@b") runs on it,
#                and the table ends with each `@b` row's ratio to its BIN row, as the
#                median of the per-round ratios
#   PROTO        grpc or http [grpc]
#   CLIENT       loadgen or python [loadgen]: python sends with the OpenTelemetry Python
#                SDK instead (bench/python_client.py, BatchSpanProcessor, 20 attributes a
#                span, PY_SPANS spans a measurement [40000: CPU is read in clock ticks of
#                10 ms, so fewer spans make the reading coarse], run by $PYTHON [.venv/bin/python
#                if present, else python3]; `scripts/test.sh` makes that venv). One Python
#                client is far slower than the server, so with it compare the server's CPU
#                per span (the table's last column), not spans/s
#   DURATION     load per measurement [15s]
#   CONNECTIONS  connections [4]; INFLIGHT requests in flight per connection [2]
#   SPANS        spans per request [200]; ATTRS attributes per span [20]
#   CONFIGS      space-separated subset of: on off no-detect no-minimize no-seal on-kek
#                no-sensitive-key (minimized values under the data key only)
#                no-context (every feature on, the tenant's learned field context off:
#                `[context] learn = false` in its detection rules override)
#   KEK          a master key provider spec (docs/keys.md) for the on-kek configuration:
#                every feature on, with `[keys] kek = "$KEK"`, for example
#                KEK="command:/usr/bin/python3 $PWD/examples/kek-openssl.py $PWD/kek.hex"
#                (the key file: `openssl rand -hex 32 > kek.hex; chmod 600 kek.hex`);
#                CONFIGS="on on-kek" then gives its cost against the default file key
#   SERVER_CPU [0]  LOADGEN_CPU [1]
#   SETTLE       seconds of pause before each measurement [3]
set -euo pipefail
ROUNDS=${1:-3}
: "${LOADGEN:?set LOADGEN to an otlp-loadgen binary (see BENCHMARKS.md)}"
BIN=${BIN:-target/release/sentrace}
BIN_B=${BIN_B:-}
PROTO=${PROTO:-grpc}
CLIENT=${CLIENT:-loadgen}
PY_SPANS=${PY_SPANS:-40000}
HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-$([ -x "$HERE/../.venv/bin/python" ] && echo "$HERE/../.venv/bin/python" || echo python3)}
CLK_TCK=$(getconf CLK_TCK)
DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-4}
INFLIGHT=${INFLIGHT:-2}
SPANS=${SPANS:-200}
ATTRS=${ATTRS:-20}
CONFIGS=${CONFIGS:-on off no-detect no-minimize no-seal}
SERVER_CPU=${SERVER_CPU:-0}
LOADGEN_CPU=${LOADGEN_CPU:-1}
SETTLE=${SETTLE:-3}
case "$PROTO" in grpc|http) ;; *) echo "PROTO must be grpc or http" >&2; exit 2;; esac
case "$CLIENT" in loadgen|python) ;; *) echo "CLIENT must be loadgen or python" >&2; exit 2;; esac
if [ "$CLIENT" = python ]; then
  "$PYTHON" -c 'import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.grpc, opentelemetry.exporter.otlp.proto.http' 2> /dev/null ||
    { echo "CLIENT=python needs the OpenTelemetry Python SDK and OTLP exporters in $PYTHON (scripts/test.sh makes .venv)" >&2; exit 2; }
fi
[ -x "$BIN" ] || { echo "$BIN not found: cargo build --release -p sentrace" >&2; exit 2; }

WORK=$(mktemp -d)
trap 'for p in "$WORK"/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The sections a configuration turns off.
off_sections() {
  case "$1" in
    on|on-kek) ;;
    off) echo detect minimize seal ;;
    no-detect) echo detect ;;
    no-minimize) echo minimize ;;
    no-seal) echo seal ;;
    no-sensitive-key) ;;
    no-context) ;;
    *) echo "unknown configuration $1" >&2; exit 2 ;;
  esac
}

# Other TOML a configuration adds.
extra_toml() {
  case "$1" in
    no-sensitive-key) printf '[minimize]\nsensitive_key = false\n' ;;
    no-context)
      mkdir -p "$WORK/no-context/rules"
      printf '[context]\nlearn = false\n' > "$WORK/no-context/rules/bench.toml"
      printf '[detect]\ntenant_rules_dir = "%s"\n' "$WORK/no-context/rules" ;;
    on-kek)
      : "${KEK:?the on-kek configuration needs KEK, a master key provider spec}"
      printf '[keys]\nkek = "%s"\n' "$KEK" ;;
  esac
}

start() { # configuration
  local d="$WORK/$1" g h q s bin=$BIN
  case "$1" in *@b) bin=${BIN_B:?a configuration named with @b needs BIN_B};; esac
  mkdir -p "$d"; g=$(port); h=$(port); q=$(port)
  printf '[listen]\notlp_grpc = "127.0.0.1:%s"\notlp_http = "127.0.0.1:%s"\nquery = "127.0.0.1:%s"\n' \
    "$g" "$h" "$q" > "$d/sentrace.toml"
  for s in $(off_sections "${1%@b}"); do printf '[%s]\nenabled = false\n' "$s" >> "$d/sentrace.toml"; done
  extra_toml "${1%@b}" >> "$d/sentrace.toml"
  taskset -c "$SERVER_CPU" "$bin" serve --data-dir "$d/data" --config "$d/sentrace.toml" > "$d/out" 2> "$d/err" &
  echo $! > "$WORK/$1.pid"
  for _ in $(seq 1 150); do grep -q "sentrace: ready" "$d/out" && break; sleep 0.2; done
  grep -q "sentrace: ready" "$d/out" || { echo "server $1 did not start:" >&2; cat "$d/err" >&2; exit 1; }
  if [ "$PROTO" = grpc ]; then echo "https://127.0.0.1:$g" > "$d/endpoint"
  else echo "https://127.0.0.1:$h/v1/traces" > "$d/endpoint"; fi
  "$bin" tokens create --data-dir "$d/data" --tenant bench --role ingest > "$d/token"
}

# CPU time (user + system, clock ticks) the server of a configuration has used so far:
# fields 14 and 15 of /proc/PID/stat, counted after the command name's closing `)`.
cpu_ticks() {
  local stat
  stat=$(cat "/proc/$(cat "$WORK/$1.pid")/stat")
  awk '{print $12 + $13}' <<< "${stat##*) }"
}

run() { # configuration round
  local d="$WORK/$1" before after port
  before=$(cpu_ticks "$1")
  if [ "$CLIENT" = python ]; then
    port=$(cat "$d/endpoint"); port=${port##*:}; port=${port%%/*}
    taskset -c "$LOADGEN_CPU" "$PYTHON" "$HERE/python_client.py" --proto "$PROTO" --port "$port" \
      --ca "$d/data/tls/ca.pem" --token "$(cat "$d/token")" --spans "$PY_SPANS" --json
  else
    taskset -c "$LOADGEN_CPU" "$LOADGEN" "$PROTO" --endpoint "$(cat "$d/endpoint")" \
      --ca "$d/data/tls/ca.pem" --token "$(cat "$d/token")" --connections "$CONNECTIONS" \
      --inflight "$INFLIGHT" --duration "$DURATION" --spans-per-request "$SPANS" --attrs "$ATTRS" --json
  fi
  after=$(cpu_ticks "$1")
  echo $((after - before)) > "$WORK/$1.$2.cpu"
}

for c in $CONFIGS; do start "$c"; done
for r in $(seq 1 "$ROUNDS"); do
  taskset -c "$SERVER_CPU" "$LOADGEN" limits --seconds 3 --spans-per-request "$SPANS" --attrs "$ATTRS" --json \
    > "$WORK/limits.$r.json"
  order=$CONFIGS
  if [ $((r % 2)) -eq 0 ]; then order=$(printf '%s\n' $CONFIGS | tac | tr '\n' ' '); fi
  for c in $order; do
    sleep "$SETTLE"
    run "$c" "$r" > "$WORK/$c.$r.json"
    echo "round $r $c: $(python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(round(j.get("spans_accepted_per_s", 0)))' "$WORK/$c.$r.json") spans/s" >&2
  done
done
for c in $CONFIGS; do
  [ -f "$WORK/$c.pid" ] || continue
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$(cat "$WORK/$c.pid")/status" 2>/dev/null || echo 0)
  echo "$rss" > "$WORK/$c.rss"
done

python3 - "$WORK" "$ROUNDS" "$PROTO" "$CONFIGS" "$CLIENT" "$CLK_TCK" <<'PY'
import json, statistics, sys, os
work, rounds, proto, configs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].split()
client, clk_tck = sys.argv[5], int(sys.argv[6])

def load(name):
    with open(os.path.join(work, name)) as f:
        return json.load(f)

def decode_rate(j):
    # The prost decode row of `otlp-loadgen limits`.
    for row in j.get("rows", []):
        if "decode" in str(row.get("op", "")).lower():
            return float(row.get("spans_per_s", 0))
    return 0.0

floor = statistics.median(decode_rate(load(f"limits.{r}.json")) for r in range(1, rounds + 1))
per = {}
for c in configs:
    runs = [load(f"{c}.{r}.json") for r in range(1, rounds + 1)]
    rate = statistics.median(float(j.get("spans_accepted_per_s", 0)) for j in runs)
    p99 = statistics.median(float(j["latency_ms"]["p99"]) for j in runs)
    failed = sum(int(j.get("requests_failed", 0)) for j in runs)
    spread = (max(float(j.get("spans_accepted_per_s", 0)) for j in runs) - min(float(j.get("spans_accepted_per_s", 0)) for j in runs)) / rate if rate else 0
    rss = int(open(os.path.join(work, f"{c}.rss")).read().strip() or 0) // 1024
    # Server CPU per accepted span, median of the rounds.
    cpu = []
    for r, j in enumerate(runs, start=1):
        ticks = int(open(os.path.join(work, f"{c}.{r}.cpu")).read().strip() or 0)
        if int(j.get("spans_accepted", 0)):
            cpu.append(ticks / clk_tck * 1e6 / int(j["spans_accepted"]))
    per[c] = (rate, p99, failed, spread, rss, statistics.median(cpu) if cpu else None)

base = per.get("off", (0,))[0]
on = per.get("on", (0,))[0]
labels = {
    "on": "every feature on (default)",
    "off": "detect, minimize, seal off",
    "no-detect": "detect off alone",
    "no-minimize": "minimize off alone",
    "no-seal": "seal off alone",
    "on-kek": "every feature on, [keys] kek = $KEK",
    "no-sensitive-key": "sensitive-value key off alone",
    "no-context": "learned field context off alone",
}
who = "the OpenTelemetry Python SDK (one client)" if client == "python" else "otlp-loadgen"
print(f"OTLP/{proto} from {who}, {rounds} rounds, median; server on one core")
print(f"| configuration | spans/s | vs all off | vs prost decode | p99 ms | spread | failed | peak RSS MB | server CPU µs/span |")
print(f"|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for c in configs:
    rate, p99, failed, spread, rss, cpu = per[c]
    label = labels.get(c.removesuffix("@b"), c) + (" (BIN_B)" if c.endswith("@b") else "")
    vs_off = f"{rate / base:.2f}" if base else "-"
    vs_dec = f"{rate / floor:.3f}" if floor else "-"
    cpu_s = f"{cpu:.1f}" if cpu is not None else "-"
    print(f"| {label} | {rate:,.0f} | {vs_off} | {vs_dec} | {p99:.1f} | {spread:.0%} | {failed} | {rss} | {cpu_s} |")
if floor:
    print(f"| prost decode alone (otlp-loadgen limits) | {floor:,.0f} | | 1.000 | | | | | {1e6 / floor:.1f} |")
if "on" in per and "off" in per and per["on"][5] and per["off"][5]:
    print(f"server CPU per span, every feature on / all off: {per['on'][5] / per['off'][5]:.2f}x")
if on and "on-kek" in per and per["on-kek"][0]:
    print(f"cost of the KEK provider: {1 - per['on-kek'][0] / on:+.1%} of the default's throughput")
if on and base:
    for c in configs:
        if c.startswith("no-") and not c.endswith("@b"):
            print(f"cost of {c[3:]}: {1 - on / per[c][0]:+.1%} of its throughput")
for c in configs:
    if c.endswith("@b") and c.removesuffix("@b") in per:
        a = c.removesuffix("@b")
        ratios = []
        for r in range(1, rounds + 1):
            ra = float(load(f"{a}.{r}.json").get("spans_accepted_per_s", 0))
            rb = float(load(f"{c}.{r}.json").get("spans_accepted_per_s", 0))
            if rb:
                ratios.append(ra / rb)
        if ratios:
            print(f"BIN / BIN_B, {a}: {statistics.median(ratios):.3f} (median of {len(ratios)} rounds; per round {', '.join(f'{x:.3f}' for x in ratios)})")
PY
