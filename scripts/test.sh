#!/usr/bin/env bash
# `make test`: real services up, then lint, types and the whole suite; the services this run
# started are stopped afterwards (ones already running, e.g. for development, are left up).
# Any failing step fails the run, and pytest collecting no tests is a failure too.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BIN=.venv/bin

step() { printf '\n== %s\n' "$*"; }
failed() { printf '\nmake test: FAILED during %s\n' "$current" >&2; }
current=setup
trap failed ERR

step "services"
current="service start-up"
started=()
for service in postgres kafka prometheus kube; do
  scripts/services.sh running "$service" || started+=("$service")
done
scripts/services.sh start
trap '[ ${#started[@]} -eq 0 ] || scripts/services.sh stop "${started[@]}"' EXIT
# shellcheck disable=SC1091
. "${MONITOR_STATE_DIR:-.state}/services.env"

# Tools the tests drive: libfaketime for the shifted-clock passes below, and headless
# Chromium, which opens the HTML report with the network off (tests/monitor/test_report.py).
step "test tools"; current="test tools (Debian packages)"
missing=()
command -v faketime >/dev/null || missing+=(faketime)
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  printf 'installing Debian packages: %s\n' "${missing[*]}"
  sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
    || { $sudo apt-get update >/dev/null && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
fi

# NannyML, the known answers of the performance estimators, lives in a virtualenv of its own.
step "anchors"; current="anchor environment (NannyML)"; scripts/anchors.sh

step "lint"; current=lint
$BIN/ruff check .
$BIN/ruff format --check .

step "types"; current="type check"
$BIN/mypy

step "tests"; current=tests
# Exit code 5 (no tests collected) is a failure like any other non-zero code.
$BIN/pytest -p no:cacheprovider "$@"

# The suite must pass on any date: run it again with the clock a year ahead and a year back
# (libfaketime shifts every clock the tests and their child processes read), so a test that
# compares a fixed date with today fails the day it is written. Tests marked real_clock
# cannot follow a shifted clock (the broker and Prometheus keep theirs) and stay out.
for shift in '+1 year' '-1 year'; do
  step "tests with the clock moved $shift (faketime)"; current="tests with the clock moved $shift"
  faketime "$shift" $BIN/pytest -p no:cacheprovider -q -m 'not real_clock' "$@"
done

printf '\nmake test: all passed\n'
