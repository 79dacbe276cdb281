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
# COMPARE_S3=1: the second server keeps its blocks on S3 instead of its data directory: a
# real S3-compatible server, s3s-fs (the binary named by S3_SERVER, default
# .tools/bin/s3s-fs: `cargo install s3s-fs@0.14.1 --locked --features binary --root
# .tools`), on loopback with access keys made at run time and its own root under the
# temporary directory, `[store] url = "s3://traces/bench"`, credentials through AWS_*. Same
# spans; after the ids are picked both servers are restarted (cold footer caches), then
# trace by id, the Jaeger search and both Tempo searches alternate request by request
# between the two. Prints local and S3 p50/p99, the S3 / local ratios, the S3 requests
# (s3s-fs's log, by operation) and the bytes s3s-fs read (its /proc/PID/io, Linux) per
# query, those of the first trace by id after the restart, and the requests and bucket
# bytes of the load. Not with COMPARE_TOML or COMPARE_BIN.
set -euo pipefail
cd "$(dirname "$0")/.."
SPANS=${SPANS:-10000000}
IDS=${IDS:-100}
SEARCHES=${SEARCHES:-20}
BIN=${SENTRACE:-target/release/sentrace}
BIN2=${COMPARE_BIN:-$BIN}
S3_SERVER=${S3_SERVER:-.tools/bin/s3s-fs}
COMPARE_S3=${COMPARE_S3:-0}
case "$COMPARE_S3" in 0 | 1) ;; *) echo "COMPARE_S3=$COMPARE_S3: set it to 1 or leave it unset" >&2; exit 2 ;; esac
if [ "$COMPARE_S3" = 1 ]; then
  [ -z "${COMPARE_TOML:-}${COMPARE_BIN:-}" ] || { echo "COMPARE_S3=1 cannot be combined with COMPARE_TOML or COMPARE_BIN" >&2; exit 2; }
  [ -x "$S3_SERVER" ] || { echo "S3_SERVER=$S3_SERVER not found: cargo install s3s-fs@0.14.1 --locked --features binary --root .tools" >&2; exit 2; }
fi
# A second server to compare with, for any of the three.
SECOND=0; [ -n "${COMPARE_TOML:-}${COMPARE_BIN:-}" ] || [ "$COMPARE_S3" = 1 ] && SECOND=1
# The searches are interleaved too when the second server is not the same binary with
# another setting (that comparison is about trace by id).
SEARCH2=0; [ -n "${COMPARE_BIN:-}" ] || [ "$COMPARE_S3" = 1 ] && SEARCH2=1
: "${LOADGEN:?set LOADGEN to an otlp-loadgen binary}"
[ -x "$LOADGEN" ] || { echo "LOADGEN=$LOADGEN is not executable" >&2; exit 2; }
for tool in curl python3; do
  command -v "$tool" > /dev/null || { echo "$tool is required" >&2; exit 2; }
done
if [ "${NO_BUILD:-0}" != 1 ]; then cargo build --release -p sentrace >&2; fi

WORK=$(mktemp -d)
cleanup() {
  for p in "$WORK/pid" "$WORK/pid2" "$WORK/pid_s3"; do [ -f "$p" ] && { kill "$(cat "$p")" 2> /dev/null || true; }; done
  wait 2> /dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# The second server's environment (the S3 credentials with COMPARE_S3=1).
ENV2=(env)
serve() { # suffix ("" or 2), binary, data dir: starts `sentrace serve` and waits until ready
  local s=$1 bin=$2 data=$3 e=(env)
  [ "$s" = 2 ] && e=("${ENV2[@]}")
  local pid rc=0
  "${e[@]}" "$bin" serve --data-dir "$data" --config "$WORK/sentrace$s.toml" > "$WORK/out$s" 2> "$WORK/err$s" &
  pid=$!; echo "$pid" > "$WORK/pid$s"
  for _ in $(seq 1 300); do
    grep -q "sentrace: ready" "$WORK/out$s" && return 0
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2> /dev/null; then
    echo "server${s:+ $s} not ready after 60 s:" >&2
  else
    wait "$pid" || rc=$?; echo "server${s:+ $s} exited with status $rc:" >&2
  fi
  cat "$WORK/out$s" "$WORK/err$s" >&2; exit 1
}
stop() { # suffix: stops that server (SIGTERM) and waits for it to exit
  local p; p=$(cat "$WORK/pid$1"); kill "$p"; wait "$p" 2> /dev/null || true; rm -f "$WORK/pid$1"
}
G=$(port); H=$(port); Q=$(port)
D="$WORK/data"
printf '[listen]\notlp_grpc = "127.0.0.1:%s"\notlp_http = "127.0.0.1:%s"\nquery = "127.0.0.1:%s"\n' \
  "$G" "$H" "$Q" > "$WORK/sentrace.toml"
if [ -n "${KEK:-}" ]; then printf '[keys]\nkek = "%s"\n' "$KEK" >> "$WORK/sentrace.toml"; fi
serve "" "$BIN" "$D"
INGEST=$("$BIN" tokens create --data-dir "$D" --tenant bench --role ingest)
READ=$("$BIN" tokens create --data-dir "$D" --tenant bench --role read)
CA="$D/tls/ca.pem"
if [ "$COMPARE_S3" = 1 ]; then
  # As bench/nodes.sh: s3s-fs on loopback, keys made now, every request's operation logged
  # at debug (the request counts below).
  mkdir -p "$WORK/s3/traces"
  S3_PORT=$(port)
  S3_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(10))')
  S3_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(20))')
  RUST_LOG=s3s::ops=debug "$S3_SERVER" --host 127.0.0.1 --port "$S3_PORT" \
    --access-key "$S3_KEY" --secret-key "$S3_SECRET" "$WORK/s3" > "$WORK/s3.log" 2>&1 &
  echo $! > "$WORK/pid_s3"
  for _ in $(seq 1 100); do (exec 3<> "/dev/tcp/127.0.0.1/$S3_PORT") 2> /dev/null && break; sleep 0.1; done
  (exec 3<> "/dev/tcp/127.0.0.1/$S3_PORT") 2> /dev/null || { echo "s3s-fs did not listen:" >&2; cat "$WORK/s3.log" >&2; exit 1; }
  ENV2=(env AWS_ENDPOINT_URL="http://127.0.0.1:$S3_PORT" AWS_ACCESS_KEY_ID="$S3_KEY"
    AWS_SECRET_ACCESS_KEY="$S3_SECRET" AWS_REGION=us-east-1 AWS_ALLOW_HTTP=true)
fi
if [ "$SECOND" = 1 ]; then
  G2=$(port); Q2=$(port); D2="$WORK/data2"
  printf '[listen]\notlp_grpc = "127.0.0.1:%s"\notlp_http = "127.0.0.1:%s"\nquery = "127.0.0.1:%s"\n%s\n' \
    "$G2" "$(port)" "$Q2" "${COMPARE_TOML:-}" > "$WORK/sentrace2.toml"
  if [ "$COMPARE_S3" = 1 ]; then printf '[store]\nurl = "s3://traces/bench"\n' >> "$WORK/sentrace2.toml"; fi
  serve 2 "$BIN2" "$D2"
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
# S3 requests: s3s-fs logs one "resolved route, op: NAME" line per request it serves.
s3_lines() { wc -l < "$WORK/s3.log"; }
s3_count() { # first log line to look at: prints how many requests were logged from there
  tail -n +"$1" "$WORK/s3.log" | grep -c 'resolved route, op: ' || true
}
s3_read() { # bytes s3s-fs has read so far (block ranges it served, plus request bodies), or -1
  awk '$1 == "rchar:" { print $2; f = 1 } END { if (!f) print -1 }' "/proc/$(cat "$WORK/pid_s3")/io" 2> /dev/null || echo -1
}
s3_ops() { # first log line to look at: prints the operation of each request logged from there
  tail -n +"$1" "$WORK/s3.log" | grep -o 'resolved route, op: [A-Za-z0-9]*' | sed 's/.*op: //' || true
}
if [ "$SECOND" = 1 ]; then
  load "$G2" "$CA2" "$INGEST2"; loaded2=$loaded; load_secs2=$load_secs
fi
load "$G" "$CA" "$INGEST"
# 2. Let the background flush move the buffered spans to blocks (the default flush interval
#    is 30 s), so the reads below hit blocks, as they would on a server that runs for long.
sleep 40
# With S3: the requests of start-up, load and flushes (and the idle listings meanwhile).
if [ "$COMPARE_S3" = 1 ]; then s3_load_requests=$(s3_count 1); fi

get() { # path -> prints "seconds<TAB>http code" and keeps the body in $WORK/body (body2: get2)
  curl -sS --cacert "${GET_CA:-$CA}" -H "authorization: Bearer ${GET_TOKEN:-$READ}" -o "${GET_BODY:-$WORK/body}" \
    -w '%{time_appconnect}\t%{time_total}\t%{http_code}\n' "https://localhost:${GET_PORT:-$Q}$1" |
    awk -F'\t' '{ printf "%.6f\t%s\n", $2 - $1, $3 }'
}
get2() { GET_CA=$CA2 GET_TOKEN=$READ2 GET_PORT=$Q2 GET_BODY=$WORK/body2 get "$1"; }
check() { # get's output, what [, body file]
  [ "$(cut -f2 <<< "$1")" = 200 ] || { echo "GET $2: HTTP $(cut -f2 <<< "$1")" >&2; cat "${3:-$WORK/body}" >&2; exit 1; }
}

# 3. Trace ids to look up: Jaeger searches, one per service, until IDS distinct ids.
r=$(get "/api/services"); check "$r" /api/services
python3 -c 'import json,sys; [print(s) for s in json.load(open(sys.argv[1]))["data"]]' "$WORK/body" > "$WORK/services"
: > "$WORK/ids"
while read -r svc; do
  r=$(get "/api/traces?service=$svc&lookback=1h&limit=$IDS"); check "$r" "search $svc"
  python3 -c 'import json,sys; [print(t["traceID"]) for t in json.load(open(sys.argv[1]))["data"]]' "$WORK/body" >> "$WORK/ids"
done < "$WORK/services"
sort -u "$WORK/ids" | shuf -n "$IDS" --random-source=<(yes) > "$WORK/ids.pick"
if [ "$SECOND" = 1 ]; then
  # The generator gives each send fresh trace ids: pick the second server's ids the same way.
  : > "$WORK/ids2"
  while read -r svc; do
    r=$(get2 "/api/traces?service=$svc&lookback=1h&limit=$IDS"); check "$r" "search $svc (second server)" "$WORK/body2"
    python3 -c 'import json,sys; [print(t["traceID"]) for t in json.load(open(sys.argv[1]))["data"]]' "$WORK/body2" >> "$WORK/ids2"
  done < "$WORK/services"
  sort -u "$WORK/ids2" | shuf -n "$IDS" --random-source=<(yes) > "$WORK/ids2.pick"
fi
SERVICE=$(head -n 1 "$WORK/services")
if [ "$COMPARE_S3" = 1 ]; then
  # The searches above filled both footer caches: restart both servers, so that the first
  # trace by id below reads its footers from disk or from the bucket (cold), the rest from
  # the cache (warm). Start-up's own requests are counted apart.
  stop ""; stop 2
  at=$(s3_lines); serve "" "$BIN" "$D"; serve 2 "$BIN2" "$D2"; s3_restart_requests=$(s3_count "$((at + 1))")
fi

# 4. Measure. With S3, the requests s3s-fs served during each of the second server's
#    queries go to $WORK/<class>2.s3 (one count per query, in order).
timed2() { # class, path, what: one query to the second server, timed (and its S3 requests counted)
  local r at rd
  [ "$COMPARE_S3" = 1 ] && at=$(s3_lines) && rd=$(s3_read)
  r=$(get2 "$2"); check "$r" "$3 (second server)" "$WORK/body2"; cut -f1 <<< "$r" >> "$WORK/${1}2"
  if [ "$COMPARE_S3" = 1 ]; then
    s3_count "$((at + 1))" >> "$WORK/${1}2.s3"; s3_ops "$((at + 1))" >> "$WORK/${1}2.ops"
    echo "$rd $(s3_read)" >> "$WORK/${1}2.bytes"
  fi
}
for f in byid search tempo_service tempo_attr; do
  : > "$WORK/$f"; : > "$WORK/${f}2"; : > "$WORK/${f}2.s3"; : > "$WORK/${f}2.ops"; : > "$WORK/${f}2.bytes"
done
[ -f "$WORK/ids2.pick" ] || : > "$WORK/ids2.pick"
while read -r id id2; do
  r=$(get "/api/traces/$id"); check "$r" "trace $id"; cut -f1 <<< "$r" >> "$WORK/byid"
  if [ "$SECOND" = 1 ] && [ -n "$id2" ]; then timed2 byid "/api/traces/$id2" "trace $id2"; fi
done < <(paste -d' ' "$WORK/ids.pick" "$WORK/ids2.pick")
for _ in $(seq 1 "$SEARCHES"); do
  r=$(get "/api/traces?service=$SERVICE&lookback=1h&limit=20"); check "$r" "search"; cut -f1 <<< "$r" >> "$WORK/search"
  if [ "$SEARCH2" = 1 ]; then timed2 search "/api/traces?service=$SERVICE&lookback=1h&limit=20" search; fi
done
traces_found=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["data"]))' "$WORK/body")
echo "$traces_found" > "$WORK/search.found"
if [ "$SEARCH2" = 1 ]; then
  python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["data"]))' "$WORK/body2" > "$WORK/search2.found"
fi
urlq() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
TEMPO_SERVICE=$(urlq "{ resource.service.name = \"$SERVICE\" }")
TEMPO_ATTR=$(urlq '{ span.http.response.status_code >= 500 }')
for name in tempo_service tempo_attr; do
  if [ "$name" = tempo_service ]; then tq=$TEMPO_SERVICE; else tq=$TEMPO_ATTR; fi
  for _ in $(seq 1 "$SEARCHES"); do
    r=$(get "/tempo/api/search?q=$tq&limit=20"); check "$r" "tempo search"; cut -f1 <<< "$r" >> "$WORK/$name"
    if [ "$COMPARE_S3" = 1 ]; then timed2 "$name" "/tempo/api/search?q=$tq&limit=20" "tempo search"; fi
  done
  python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["traces"]))' "$WORK/body" > "$WORK/$name.found"
  if [ "$COMPARE_S3" = 1 ]; then
    python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["traces"]))' "$WORK/body2" > "$WORK/${name}2.found"
  fi
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
if [ "$COMPARE_S3" = 1 ]; then
  bucket_bytes=$(find "$WORK/s3/traces" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
  python3 - "$WORK" "$loaded2" "$load_secs2" "$s3_load_requests" "$s3_restart_requests" "$bucket_bytes" <<'PY'
import os, statistics, sys
work = sys.argv[1]
spans, secs, load_req, restart_req, bucket = map(int, sys.argv[2:])
def ms(name):
    return [float(x) * 1000 for x in open(f"{work}/{name}") if x.strip()]
def counts(name):
    return [int(x) for x in open(f"{work}/{name}.s3") if x.strip()]
pick = lambda v, p: sorted(v)[min(len(v) - 1, int(round(p * (len(v) - 1))))]
print(f"S3 server: {spans:,} spans loaded in {secs} s; bucket {bucket / spans:.1f} bytes per span;"
      f" {load_req * 1e6 / spans:,.0f} S3 requests per 1M spans (start, load, flushes, idle listings);"
      f" {restart_req} S3 requests at the restart before the queries")
print("| query (interleaved, local then S3) | traces found, local / S3 | local p50 / p99 | S3 p50 / p99 | S3 / local: p50, mean | S3 requests per query: mean (min-max) | KiB read by s3s-fs per query, mean |")
print("|---|---|---|---|---|---|---|")
def kib(name):
    d = [int(y) - int(x) for x, y in (l.split() for l in open(f"{work}/{name}.bytes") if l.strip())
         if int(x) >= 0 and int(y) >= 0]
    return f"{statistics.mean(d) / 1024:,.0f}" if d else "-"
found = lambda name: open(f"{work}/{name}.found").read().strip() if os.path.exists(f"{work}/{name}.found") else "-"
rows = (("byid", "trace by id"), ("search", "Jaeger search, one service, 1 h, limit 20"),
        ("tempo_service", "Tempo `{ resource.service.name = ... }`, limit 20"),
        ("tempo_attr", "Tempo `{ span.http.response.status_code >= 500 }`, limit 20"))
for name, what in rows:
    a, b, c = ms(name), ms(name + "2"), counts(name + "2")
    if not a or not b:
        continue
    print(f"| {what} ({len(b)}) | {found(name)} / {found(name + '2')} | {pick(a, .5):.1f} / {pick(a, .99):.1f} ms | {pick(b, .5):.1f} / {pick(b, .99):.1f} ms"
          f" | {pick(b, .5) / pick(a, .5):.2f}, {statistics.mean(b) / statistics.mean(a):.2f}"
          f" | {statistics.mean(c):.1f} ({min(c)}-{max(c)}) | {kib(name + '2')} |")
a, b, c = ms("byid"), ms("byid2"), counts("byid2")
if len(b) > 1:
    print(f"| first trace by id after the restart (cold footer cache) | | {a[0]:.1f} ms | {b[0]:.1f} ms"
          f" | {b[0] / a[0]:.2f} | {c[0]} (the rest: median {statistics.median(c[1:]):.0f}) | |")
    print(f"| the other trace-by-id queries (warm), median | | {statistics.median(a[1:]):.1f} ms | {statistics.median(b[1:]):.1f} ms | | | |")
for name, what in rows:
    ops = {}
    for op in open(f"{work}/{name}2.ops"):
        ops[op.strip()] = ops.get(op.strip(), 0) + 1
    if ops:
        print(f"{what}, S3 requests by operation: " + ", ".join(f"{k} {v}" for k, v in sorted(ops.items())))
PY
fi
