#!/bin/sh
# Throughput ratio against Presidio (regex-only, the only mode that runs without a model
# download) on the same OTLP/JSON input, by CPU time (the machine may be loaded). Presidio
# lives in a throw-away virtual environment, never in the project.
#
# usage: crates/sentrace-redact/scripts/presidio_compare.sh [SPANS]   (from the workspace root)
set -eu
SPANS="${1:-300}"
VENV="${PRESIDIO_VENV:-/tmp/presidio-venv}"
# PRESIDIO_SCRIPT: a script that runs Presidio over an OTLP/JSON file (argument) and prints
# the redacted result; it is not part of the repository.
PEER="${PRESIDIO_SCRIPT:?set PRESIDIO_SCRIPT to the Presidio runner (reads OTLP/JSON, prints it redacted)}"
DIR="$(mktemp -d /tmp/sentrace-redact-compare.XXXXXX)"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q presidio-analyzer presidio-anonymizer
fi
cargo run --release -q -p sentrace-redact --example measure -- --throughput-only \
    --spans "$SPANS" --export "$DIR/corpus.json" --export-spans "$SPANS" | grep '^export:'
echo '{"resourceSpans": []}' > "$DIR/empty.json"
cpu() { # CPU seconds (user + sys) of a command
    /usr/bin/time -f '%U %S' -o "$DIR/t" "$@" > "$DIR/log" 2>&1 || { cat "$DIR/log"; exit 1; }
    awk '{print $1 + $2}' "$DIR/t"
}
SETUP=$(cpu "$VENV/bin/python" "$PEER" "$DIR/empty.json" "$DIR/out0.json")
TOTAL=$(cpu "$VENV/bin/python" "$PEER" "$DIR/corpus.json" "$DIR/out.json")
grep '^presidio:' "$DIR/log" || true
awk -v s="$SETUP" -v t="$TOTAL" 'BEGIN { printf "presidio: %.0f ms CPU per pass (%.2f s total - %.2f s setup)\n", (t - s) * 1000, t, s }'
rm -rf "$DIR"
