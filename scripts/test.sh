#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs what the tests need (a Python
# virtual environment with the OpenTelemetry SDK; Node.js and the pinned oidc-provider for the
# OIDC end-to-end test), builds, checks formatting and lints, runs
# the Rust tests, then the interop tests with real OpenTelemetry SDK clients.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> Python test environment (.venv)"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/interop/requirements.txt
# schemathesis, sslyze and pyOpenSSL share `cryptography`: refuse a set that does not fit.
.venv/bin/pip check

echo "==> OIDC test provider (Node.js, npm ci in tests/oidc)"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi
node --version
(cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error)

echo "==> curl (the client-matrix interop test drives it over HTTP/1.1 and HTTP/2)"
if ! command -v curl >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl
fi

echo "==> Console browser test (Debian chromium, playwright-core: npm ci in tests/console)"
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
(cd tests/console && npm ci --no-audit --no-fund --loglevel=error)

echo "==> S3-compatible test server (s3s-fs, cargo install into .tools; crates/sentrace/tests/s3_store.rs)"
if [ ! -x .tools/bin/s3s-fs ]; then
  cargo install s3s-fs@0.14.1 --locked --features binary --root .tools --debug --quiet
fi
export SENTRACE_S3_SERVER="$PWD/.tools/bin/s3s-fs"

echo "==> Azure Blob emulator (Azurite, npm ci in tests/azurite; crates/sentrace/tests/cloud_store.rs)"
(cd tests/azurite && npm ci --no-audit --no-fund --loglevel=error)
export SENTRACE_AZURITE="$PWD/tests/azurite/node_modules/.bin/azurite-blob"

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "==> dependency rules (the write path carries no HTTP or gRPC stack)"
if cargo tree -p sentrace-pipeline -e normal | grep -E "axum|hyper|tonic|tower|reqwest"; then
  echo "sentrace-pipeline depends on an HTTP or gRPC crate (listed above)"; exit 1
fi

echo "==> cargo test"
cargo test --workspace --quiet

echo "==> interop tests (OpenTelemetry Python SDK)"
cargo build --quiet --bin sentrace
SENTRACE_BIN="$PWD/target/debug/sentrace" .venv/bin/python -m pytest -q tests/interop

echo "==> packaging (systemd-analyze, hadolint, kubernetes-validate, structure; packaging/check.sh)"
SENTRACE_BIN="$PWD/target/debug/sentrace" packaging/check.sh

echo "==> fuzz smoke (each target briefly, as rustls does)"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --quiet
fi
(
  cd fuzz
  export RUSTC_BOOTSTRAP=1
  for target in $(cargo fuzz list); do
    log="target/fuzz-$target.log"
    mkdir -p target
    if ! cargo fuzz run -O "$target" -- -max_total_time="${FUZZ_SECONDS:-10}" >"$log" 2>&1; then
      echo "fuzz target $target failed:"; tail -60 "$log"; exit 1
    fi
    echo "fuzz $target: $(grep -E '^Done' "$log" || echo 'ran')"
  done
)
echo "fuzz: $(cd fuzz && cargo fuzz list | wc -l) targets ran clean"

