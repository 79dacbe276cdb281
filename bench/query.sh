#!/usr/bin/env bash
# Read path: trace by id and Jaeger search latency with many spans stored, and bytes per span
# on disk. Starts one release `sentrace serve` on loopback with a fresh data directory, loads
# SPANS spans with the otlp-loadgen binary named by $LOADGEN, waits for them to reach blocks,
# then measures over HTTPS (curl, request time after the TLS handshake):
#   - trace by id (GET /api/traces/{id}) p50/p99 over IDS ids;
#   - Jaeger search (GET /api/traces?service=S&lookback=1h&limit=20) p50/p99 over SEARCHES;
#   - Tempo search (GET /tempo/api/search?q=TRACEQL&limit=20) p50/p99 over SEARCHES, for a
#     service condition the store's index checks and for a span attribute it cannot;
#   - bytes per span on disk: blocks, WAL and transparency log, each apart.
#
#   LOADGEN=path/to/otlp-loadgen bench/query.sh
# Environment: SPANS (default 10000000), IDS (100), SEARCHES (20), SENTRACE (path of the
# binary; default target/release/sentrace, built first with `cargo build --release -p
# sentrace` unless NO_BUILD=1), KEEP=1 keeps the temporary directory, KEK (a master key
# provider spec, docs/keys.md, for `[keys] kek = "$KEK"`, for example
# KEK="command:/usr/bin/python3 $PWD/examples/kek-openssl.py $PWD/kek.hex"; default: the data
# directory's master.key). Run it with and without KEK for the provider's cost.
# COMPARE_TOML (TOML, e.g. $'[minimize]\nsensitive_key = false'): also start a second server
# with that TOML appended to its config, load it with the same spans (same generator seed),
# and time trace by id on both, request by request interleaved, in the same run; prints
# the ratio. COMPARE_BIN (path of another sentrace binary, e.g. an earlier build): the same,
# with the second server running that binary (and COMPARE_TOML, if given, in its config);
# the Jaeger search is then interleaved too.
set -euo pipefail
cd "$(dirname "$0")/.."
SPANS=${SPANS:-10000000}
IDS=${IDS:-100}
SEARCHES=${SEARCHES:-20}
BIN=${SENTRACE:-target/release/sentrace}
BIN2=${COMPARE_BIN:-$BIN}
: "${LOADGEN:?set LOADGEN to an otlp-loadgen binary}"
[ -x "$LOADGEN" ] || { echo "LOADGEN=$LOADGEN is not executable" >&2; exit 2; }
for tool in curl python3; do
  command -v "$tool" > /dev/null || { echo "$tool is required" >&2; exit 2; }
done
if [ "${NO_BUILD:-0}" != 1 ]; then cargo build --release -p sentrace >&2; fi

WORK=$(mktemp -d)
cleanup() {
  for p in "$WORK/pid" "$WORK/pid2"; do [ -f "$p" ] && { kill "$(cat "$p")" 2> /dev/null || true; }; done
  wait 2> /dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
G=$(port); H=$(port); Q=$(port)
D="$WORK/data"
printf '[listen]\notlp_grpc = "127.0.0.1:%s"\notlp_http = "127.0.0.1:%s"\nquery = "127.0.0.1:%s"\n' \
  "$G" "$H" "$Q" > "$WORK/sentrace.toml"
if [ -n "${KEK:-}" ]; then printf '[keys]\nkek = "%s"\n' "$KEK" >> "$WORK/sentrace.toml"; fi
"$BIN" serve --data-dir "$D" --config "$WORK/sentrace.toml" > "$WORK/out" 2> "$WORK/err" &
echo $! > "$WORK/pid"
for _ in $(seq 1 300); do grep -q "sentrace: ready" "$WORK/out" && break; sleep 0.2; done
grep -q "sentrace: ready" "$WORK/out" || { echo "server did not start:" >&2; cat "$WORK/err" >&2; exit 1; }
INGEST=$("$BIN" tokens create --data-dir "$D" --tenant bench --role ingest)
READ=$("$BIN" tokens create --data-dir "$D" --tenant bench --role read)
CA="$D/tls/ca.pem"
if [ -n "${COMPARE_TOML:-}${COMPARE_BIN:-}" ]; then
  G2=$(port); Q2=$(port); D2="$WORK/data2"
  printf '[listen]\notlp_grpc = "127.0.0.1:%s"\notlp_http = "127.0.0.1:%s"\nquery = "127.0.0.1:%s"\n%s\n' \
    "$G2" "$(port)" "$Q2" "${COMPARE_TOML:-}" > "$WORK/sentrace2.toml"
  "$BIN2" serve --data-dir "$D2" --config "$WORK/sentrace2.toml" > "$WORK/out2" 2> "$WORK/err2" &
  echo $! > "$WORK/pid2"
  for _ in $(seq 1 300); do grep -q "sentrace: ready" "$WORK/out2" && break; sleep 0.2; done
  grep -q "sentrace: ready" "$WORK/out2" || { echo "second server did not start:" >&2; cat "$WORK/err2" >&2; exit 1; }
  INGEST2=$("$BIN2" tokens create --data-dir "$D2" --tenant bench --role ingest)
  READ2=$("$BIN2" tokens create --data-dir "$D2" --tenant bench --role read)
  CA2="$D2/tls/ca.pem"
fi

# 1. Load: rounds of at most 60 s until SPANS spans were accepted.
load() { # grpc port, CA, token; sets loaded and load_secs
  local rate=50000 t0 left secs out got
  loaded=0; t0=$(date +%s)
  while [ "$loaded" -lt "$SPANS" ]; do
    left=$((SPANS - loaded))
    secs=$(( (left + rate - 1) / rate )); [ "$secs" -gt 60 ] && secs=60; [ "$secs" -lt 1 ] && secs=1
    out=$("$LOADGEN" grpc --endpoint "https://127.0.0.1:$1" --ca "$2" --token "$3" \
      --connections 2 --inflight 4 --duration "${secs}s" --json)
    got=$(python3 -c 'import json,sys; print(int(json.loads(sys.argv[1])["spans_accepted"]))' "$out")
    [ "$got" -gt 0 ] || { echo "load generator stored nothing: $out" >&2; exit 1; }
    loaded=$((loaded + got)); rate=$(( got / secs + 1 ))
    echo "loaded $loaded of $SPANS spans" >&2
  done
  load_secs=$(( $(date +%s) - t0 ))
}
if [ -n "${COMPARE_TOML:-}${COMPARE_BIN:-}" ]; then
  load "$G2" "$CA2" "$INGEST2"; loaded2=$loaded; load_secs2=$load_secs
fi
load "$G" "$CA" "$INGEST"
# 2. Let the background flush move the buffered spans to blocks (the default flush interval
#    is 30 s), so the reads below hit blocks, as they would on a server that runs for long.
sleep 40

get() { # path -> prints "seconds<TAB>http code" and keeps the body in $WORK/body
  curl -sS --cacert "${GET_CA:-$CA}" -H "authorization: Bearer ${GET_TOKEN:-$READ}" -o "$WORK/body" \
    -w '%{time_appconnect}\t%{time_total}\t%{http_code}\n' "https://localhost:${GET_PORT:-$Q}$1" |
    awk -F'\t' '{ printf "%.6f\t%s\n", $2 - $1, $3 }'
}
get2() { GET_CA=$CA2 GET_TOKEN=$READ2 GET_PORT=$Q2 get "$1"; }
check() { [ "$(cut -f2 <<< "$1")" = 200 ] || { echo "GET $2: HTTP $(cut -f2 <<< "$1")" >&2; cat "$WORK/body" >&2; exit 1; }; }

# 3. Trace ids to look up: Jaeger searches, one per service, until IDS distinct ids.
r=$(get "/api/services"); check "$r" /api/services
python3 -c 'import json,sys; [print(s) for s in json.load(open(sys.argv[1]))["data"]]' "$WORK/body" > "$WORK/services"
: > "$WORK/ids"
while read -r svc; do
  r=$(get "/api/traces?service=$svc&lookback=1h&limit=$IDS"); check "$r" "search $svc"
  python3 -c 'import json,sys; [print(t["traceID"]) for t in json.load(open(sys.argv[1]))["data"]]' "$WORK/body" >> "$WORK/ids"
done < "$WORK/services"
sort -u "$WORK/ids" | shuf -n "$IDS" --random-source=<(yes) > "$WORK/ids.pick"
if [ -n "${COMPARE_TOML:-}${COMPARE_BIN:-}" ]; then
  # The generator gives each send fresh trace ids: pick the second server's ids the same way.
  : > "$WORK/ids2"
  while read -r svc; do
    r=$(get2 "/api/traces?service=$svc&lookback=1h&limit=$IDS"); check "$r" "search $svc (second server)"
    python3 -c 'import json,sys; [print(t["traceID"]) for t in json.load(open(sys.argv[1]))["data"]]' "$WORK/body" >> "$WORK/ids2"
  done < "$WORK/services"
  sort -u "$WORK/ids2" | shuf -n "$IDS" --random-source=<(yes) > "$WORK/ids2.pick"
fi
SERVICE=$(head -n 1 "$WORK/services")

# 4. Measure.
: > "$WORK/byid"; : > "$WORK/byid2"; [ -f "$WORK/ids2.pick" ] || : > "$WORK/ids2.pick"
while read -r id id2; do
  r=$(get "/api/traces/$id"); check "$r" "trace $id"; cut -f1 <<< "$r" >> "$WORK/byid"
  if [ -n "${COMPARE_TOML:-}${COMPARE_BIN:-}" ] && [ -n "$id2" ]; then
    r=$(get2 "/api/traces/$id2"); check "$r" "trace $id2 (second server)"; cut -f1 <<< "$r" >> "$WORK/byid2"
  fi
done < <(paste -d' ' "$WORK/ids.pick" "$WORK/ids2.pick")
: > "$WORK/search"; : > "$WORK/search2"; for _ in $(seq 1 "$SEARCHES"); do
  r=$(get "/api/traces?service=$SERVICE&lookback=1h&limit=20"); check "$r" "search"; cut -f1 <<< "$r" >> "$WORK/search"
  if [ -n "${COMPARE_BIN:-}" ]; then
    r=$(get2 "/api/traces?service=$SERVICE&lookback=1h&limit=20"); check "$r" "search (second server)"; cut -f1 <<< "$r" >> "$WORK/search2"
  fi
done
traces_found=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["data"]))' "$WORK/body")
urlq() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
TEMPO_SERVICE=$(urlq "{ resource.service.name = \"$SERVICE\" }")
TEMPO_ATTR=$(urlq '{ span.http.response.status_code >= 500 }')
for name in tempo_service tempo_attr; do
  if [ "$name" = tempo_service ]; then tq=$TEMPO_SERVICE; else tq=$TEMPO_ATTR; fi
  : > "$WORK/$name"; for _ in $(seq 1 "$SEARCHES"); do
    r=$(get "/tempo/api/search?q=$tq&limit=20"); check "$r" "tempo search"; cut -f1 <<< "$r" >> "$WORK/$name"
  done
  python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["traces"]))' "$WORK/body" > "$WORK/$name.found"
done

size() { [ -d "$1" ] && du -sb "$1" | cut -f1 || echo 0; }
# Blocks (and their integrity tags) lie under blocks/<tenant>/, the transparency logs under
# blocks/log/.
blocks=$(find "$D/blocks" -path "$D/blocks/log" -prune -o -name '*.parquet' -print | wc -l)
block_bytes=$(find "$D/blocks" -path "$D/blocks/log" -prune -o -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
python3 - "$WORK" "$loaded" "$load_secs" "$blocks" "$SERVICE" "$traces_found" \
  "$block_bytes" "$(size "$D/wal")" "$(size "$D/blocks/log")" "$(wc -l < "$WORK/ids.pick")" <<'PY'
import sys
work, spans, secs, blocks, svc, found, b, w, l, nids = sys.argv[1:]
spans = int(spans)
def q(name):
    v = sorted(float(x) for x in open(f"{work}/{name}") if x.strip())
    pick = lambda p: v[min(len(v) - 1, int(round(p * (len(v) - 1))))] * 1000
    return len(v), pick(0.5), pick(0.99)
n1, p50, p99 = q("byid"); n2, s50, s99 = q("search")
print(f"spans stored: {spans:,} (loaded in {secs} s); blocks: {blocks}")
print("| measure | value |")
print("|---|---|")
print(f"| trace by id p50 / p99 ({n1} ids of {nids}) | {p50:.1f} ms / {p99:.1f} ms |")
print(f"| search service={svc} lookback=1h limit=20 p50 / p99 ({n2} queries, {found} traces) | {s50:.1f} ms / {s99:.1f} ms |")
for name, q_text in (("tempo_service", f'{{ resource.service.name = "{svc}" }}'), ("tempo_attr", "{ span.http.response.status_code >= 500 }")):
    n, t50, t99 = q(name); hits = open(f"{work}/{name}.found").read().strip()
    print(f"| Tempo search q=`{q_text}` limit=20 p50 / p99 ({n} queries, {hits} traces) | {t50:.1f} ms / {t99:.1f} ms |")
for name, size in (("blocks", b), ("WAL", w), ("log", l)):
    print(f"| bytes per span on disk, {name} | {int(size) / spans:.1f} ({int(size):,} bytes) |")
print(f"| bytes per span on disk, all three | {(int(b) + int(w) + int(l)) / spans:.1f} |")
PY
if [ -n "${COMPARE_TOML:-}${COMPARE_BIN:-}" ]; then
  python3 - "$WORK" "${COMPARE_TOML:-}" "$loaded" "$load_secs" "$loaded2" "$load_secs2" <<'PY'
import statistics, sys
work, toml = sys.argv[1], sys.argv[2]
a_n, a_s, b_n, b_s = map(int, sys.argv[3:])
def ms(name):
    return sorted(float(x) * 1000 for x in open(f"{work}/{name}") if x.strip())
a, b = ms("byid"), ms("byid2")
pick = lambda v, p: v[min(len(v) - 1, int(round(p * (len(v) - 1))))]
flat = " ".join(toml.split()) or "another binary"
print(f"| trace by id p50 / p99, second server (`{flat}`), its own ids, interleaved | {pick(b, .5):.1f} ms / {pick(b, .99):.1f} ms |")
print(f"| trace by id, default / second server: mean, p50 | {statistics.mean(a) / statistics.mean(b):.3f}, {pick(a, .5) / pick(b, .5):.3f} |")
print(f"| load rate, default / second server (spans/s) | {a_n / max(a_s, 1):,.0f} / {b_n / max(b_s, 1):,.0f} |")
sa, sb = ms("search"), ms("search2")
if sb:
    print(f"| search p50 / p99, second server, interleaved | {pick(sb, .5):.1f} ms / {pick(sb, .99):.1f} ms |")
    print(f"| search, default / second server: mean, p50 | {statistics.mean(sa) / statistics.mean(sb):.3f}, {pick(sa, .5) / pick(sb, .5):.3f} |")
PY
fi
