#!/usr/bin/env bash
# Tools for the chart, manifest and benchmark checks: Helm and vegeta (built with
# `go install`), kubernetes-validate and check-jsonschema (into .venv), wrk (Debian).
# Idempotent.
#
#   scripts/tools.sh            install whatever is missing
#   scripts/tools.sh helm       install only Helm
#   scripts/tools.sh --print    print where each tool is
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${MONITOR_STATE_DIR:-$ROOT/.state}
HELM_VERSION=v3.21.4
KUBERNETES_VALIDATE=1.37.0
CHECK_JSONSCHEMA=0.39.0
VEGETA_VERSION=v12.12.0
BIN_DIR=$STATE/bin
VENV=$ROOT/.venv

say() { printf 'tools: %s\n' "$*" >&2; }
die() { printf 'tools: error: %s\n' "$*" >&2; exit 1; }

helm_path() { echo "$BIN_DIR/helm"; }

install_helm() {
  # A source build reports its version as v3.21 with no patch digit, so the marker file
  # written after a successful build is what says which version is there.
  if [ -x "$(helm_path)" ] && [ -f "$BIN_DIR/.helm-$HELM_VERSION" ]; then return 0; fi
  command -v go >/dev/null || die "Go is needed to build Helm; install golang (Debian) or put go on PATH"
  say "building Helm $HELM_VERSION with go install (a few minutes the first time)"
  mkdir -p "$BIN_DIR"
  GOBIN=$BIN_DIR go install -ldflags "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >"$STATE/helm-build.log" 2>&1 \
    || { tail -n 20 "$STATE/helm-build.log" >&2; die "go install helm failed; see $STATE/helm-build.log"; }
  rm -f "$BIN_DIR"/.helm-*; touch "$BIN_DIR/.helm-$HELM_VERSION"
}

install_python_tools() {
  [ -x "$VENV/bin/pip" ] || die "no virtualenv at $VENV; run make venv first"
  if "$VENV/bin/pip" show kubernetes-validate check-jsonschema >/dev/null 2>&1; then return 0; fi
  say "installing kubernetes-validate and check-jsonschema into .venv"
  "$VENV/bin/pip" install --quiet "kubernetes-validate==$KUBERNETES_VALIDATE" "check-jsonschema==$CHECK_JSONSCHEMA"
}

install_vegeta() {
  # Constant-rate load with latency percentiles (wrk measures closed-loop throughput).
  if [ -x "$BIN_DIR/vegeta" ] && [ -f "$BIN_DIR/.vegeta-$VEGETA_VERSION" ]; then return 0; fi
  command -v go >/dev/null || die "Go is needed to build vegeta; install golang or put go on PATH"
  say "building vegeta $VEGETA_VERSION with go install"
  mkdir -p "$BIN_DIR"
  GOBIN=$BIN_DIR go install "github.com/tsenart/vegeta/v12@$VEGETA_VERSION" >"$STATE/vegeta-build.log" 2>&1 \
    || { tail -n 20 "$STATE/vegeta-build.log" >&2; die "go install vegeta failed; see $STATE/vegeta-build.log"; }
  rm -f "$BIN_DIR"/.vegeta-*; touch "$BIN_DIR/.vegeta-$VEGETA_VERSION"
}

install_wrk() {
  command -v wrk >/dev/null && return 0
  say "installing wrk (Debian)"
  local sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends wrk >/dev/null 2>&1 \
    || { $sudo apt-get update >/dev/null 2>&1 && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends wrk >/dev/null; } \
    || die "apt-get install wrk failed"
}

mkdir -p "$STATE"
# `scripts/tools.sh helm`: only Helm (scripts/services.sh builds it for the chart tests).
if [ "${1:-}" = helm ]; then install_helm; exit 0; fi
if [ "${1:-}" = --print ]; then
  echo "helm: $(helm_path)"; echo "kubernetes-validate: $VENV/bin/kubernetes-validate"
  echo "check-jsonschema: $VENV/bin/check-jsonschema"; echo "wrk: $(command -v wrk || echo missing)"
  echo "vegeta: $BIN_DIR/vegeta"
  exit 0
fi
install_python_tools
install_wrk
install_vegeta
install_helm
say "ready in $BIN_DIR and .venv: helm $HELM_VERSION, vegeta $VEGETA_VERSION, kubernetes-validate $KUBERNETES_VALIDATE, check-jsonschema $CHECK_JSONSCHEMA, wrk"
