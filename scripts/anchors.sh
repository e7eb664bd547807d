#!/usr/bin/env bash
# The anchor environment: NannyML 0.13 in a virtualenv of its own, for the known-answer tests
# of the performance estimators and the PCA reconstruction error (tests/detectors/nannyml_runner.py
# runs in it). NannyML's pins (LightGBM < 4.6, plotly 5, ...) and its age clash with modeltap's
# (numpy 2, scikit-learn 1.9), so it never goes into .venv. Idempotent: a marker file names
# the pins installed, and a second run with the same pins only checks that it is there.
#
#   scripts/anchors.sh           create or update .state/anchors-venv, print where it is
#   scripts/anchors.sh --print   print the anchor interpreter's path (exit 1 if absent)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${MONITOR_STATE_DIR:-$ROOT/.state}
VENV=$STATE/anchors-venv
# NannyML 0.13.1 was released against numpy 1.26 and scikit-learn 1.5; these are the versions
# its own CI used then, pinned so the anchors' answers do not move under us.
PINS=(
  "nannyml==0.13.1"
  "numpy==1.26.4"
  "pandas==2.2.3"
  "scipy==1.13.1"
  "scikit-learn==1.5.2"
  "lightgbm==4.5.0"
)
MARKER=$VENV/.installed-$(printf '%s\n' "${PINS[@]}" | cksum | cut -d' ' -f1)

die() { printf 'anchors: error: %s\n' "$*" >&2; exit 1; }

if [ "${1:-}" = --print ]; then
  [ -f "$MARKER" ] || die "no anchor environment at $VENV; run scripts/anchors.sh"
  echo "$VENV/bin/python"
  exit 0
fi

# Importing NannyML takes seconds; its installed metadata answers at once.
if [ -f "$MARKER" ] && "$VENV/bin/python" -c 'import importlib.metadata as m; m.version("nannyml")' 2>/dev/null; then
  echo "anchors: NannyML 0.13.1 ready in $VENV"
  exit 0
fi

# NannyML 0.13 supports Python 3.9 to 3.12; modeltap's own interpreter (3.11) fits.
PYTHON=${ANCHORS_PYTHON:-}
if [ -z "$PYTHON" ]; then
  for candidate in "$ROOT/.venv/bin/python" python3.12 python3.11 python3.10 python3; do
    if command -v "$candidate" >/dev/null \
      && "$candidate" -c 'import sys; sys.exit(not (3, 9) <= sys.version_info[:2] <= (3, 12))'; then
      PYTHON=$candidate
      break
    fi
  done
fi
[ -n "$PYTHON" ] || die "NannyML 0.13 needs Python 3.9 to 3.12; set ANCHORS_PYTHON to one"

mkdir -p "$STATE"
rm -f "$VENV"/.installed-*
[ -x "$VENV/bin/pip" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "${PINS[@]}" >"$STATE/anchors.log" 2>&1 \
  || { tail -n 20 "$STATE/anchors.log" >&2; die "pip install failed; see $STATE/anchors.log"; }
"$VENV/bin/python" -c 'import nannyml' || die "nannyml installed but does not import; see $STATE/anchors.log"
touch "$MARKER"
echo "anchors: NannyML 0.13.1 installed in $VENV"
