#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, builds the workspace once
# (debug), runs the Rust unit and integration tests, then the end-to-end tests against the real binary.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

log() { printf '\n== %s\n' "$*"; }
# Free disk where the build and the test data go: printed at each stage so a full disk is easy to tell.
disk() { df -h --output=avail,used,size "$ROOT" | tail -n 1 | awk '{print "disk: " $1 " free (" $2 " used of " $3 ")"}'; }
disk

# System packages (clang and libbpf are for the eBPF sensor; pkg-config and a C toolchain for -sys crates;
# tcpdump records the loopback traffic that the sensor's replay tests decode; openssl makes the fake
# provider's certificate; curl and Node.js are clients the live sensor tests capture; Chromium runs the web
# UI's browser tests).
need_apt=()
for pkg in clang libbpf-dev pkg-config tcpdump openssl curl chromium; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
  $SUDO apt-get clean
fi

# Python virtualenv: the S3 server (moto), boto3, DuckDB, pyarrow, pytest.
VENV="$ROOT/.venv"
if [ ! -x "$VENV/bin/python" ]; then
  log "python virtualenv"
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import sys; sys.exit(0 if open('$VENV/.requirements').read() == open('tests/requirements.txt').read() else 1)" 2>/dev/null; then
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-cache-dir -r tests/requirements.txt
  cp tests/requirements.txt "$VENV/.requirements"
fi
export VIRTUAL_ENV="$VENV"

disk

# One from-scratch build: incremental compilation caches would only take disk here.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
log "cargo build --workspace"
cargo build --workspace --locked
disk

log "cargo test --workspace"
cargo test --workspace --locked

log "redaction corpus: recall and precision per kind"
cargo test --locked -p lumen-redact --test corpus -- --nocapture 2>&1 | grep -vE '^(running|test |$)' 

disk

log "benchmark harness, quick mode (proves it runs; numbers from a debug build mean nothing)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
"$TARGET/debug/lumen-bench" run --quick --lumen "$TARGET/debug/lumen" --python "$VENV/bin/python" \
  --work "$TARGET/bench-quick" > "$TARGET/bench-quick.md"
tail -n 8 "$TARGET/bench-quick.md"
# The query suite at scale streams its data set from the generator (10 M spans do not fit as NDJSON).
"$TARGET/debug/lumen-bench" queries --quick --lumen "$TARGET/debug/lumen" --python "$VENV/bin/python" \
  --work "$TARGET/bench-quick" > "$TARGET/bench-quick-queries.md"
head -n 6 "$TARGET/bench-quick-queries.md"

log "end-to-end tests (pytest tests/e2e)"
export LUMEN_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/lumen"
export LUMEN_SENSOR_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/lumen-sensor"
"$VENV/bin/python" -m pytest tests/e2e -v -p no:cacheprovider --durations=10 "$@"

disk

log "deployment checks (Terraform fmt/validate, checkov, HCL promises) and the notebook on real Lumen data"
bash "$ROOT/tests/deploy/run.sh"

disk
