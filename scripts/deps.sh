#!/usr/bin/env bash
# Installs every real part the tests need, pinned, into .cache/ (git-ignored).
# Idempotent: a part already present at the pinned version is not fetched again.
# Usage: scripts/deps.sh [all|go|s3|gcs|azure|debian|envtest]...
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=$ROOT/.cache
BIN=$CACHE/bin
mkdir -p "$BIN"

VERSITYGW_VERSION=v1.8.0
FAKE_GCS_VERSION=v1.56.1
AZURITE_VERSION=3.37.0
GOLANGCI_VERSION=v2.15.0

log() { printf 'deps: %s\n' "$*" >&2; }

stamp_ok() { [ -f "$CACHE/stamps/$1" ] && [ "$(cat "$CACHE/stamps/$1")" = "$2" ]; }
stamp_set() { mkdir -p "$CACHE/stamps"; printf '%s' "$2" >"$CACHE/stamps/$1"; }

go_tool() { # name module version
  local name=$1 mod=$2 ver=$3
  if stamp_ok "$name" "$ver" && [ -x "$BIN/$name" ]; then return; fi
  log "go install $mod@$ver"
  GOBIN=$BIN CGO_ENABLED=0 go install "$mod@$ver"
  stamp_set "$name" "$ver"
}

s3() { go_tool versitygw github.com/versity/versitygw/cmd/versitygw "$VERSITYGW_VERSION"; }
gcs() { go_tool fake-gcs-server github.com/fsouza/fake-gcs-server "$FAKE_GCS_VERSION"; }
lint() { go_tool golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint "$GOLANGCI_VERSION"; }

azure() {
  if stamp_ok azurite "$AZURITE_VERSION" && [ -x "$CACHE/azurite/node_modules/.bin/azurite-blob" ]; then return; fi
  log "npm install azurite@$AZURITE_VERSION"
  mkdir -p "$CACHE/azurite"
  npm install --silent --no-audit --no-fund --prefix "$CACHE/azurite" "azurite@$AZURITE_VERSION" >&2
  stamp_set azurite "$AZURITE_VERSION"
}

debian() {
  local want="barman-cli-cloud pgbackrest postgresql-15 postgresql-contrib-15 python3-snappy python3-zstandard python3-lz4 python3-azure"
  local missing=""
  for p in $want; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  [ -z "$missing" ] && return
  log "apt-get install$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends $missing >&2
}

[ $# -eq 0 ] && set -- all
for part in "$@"; do
  case $part in
    all) debian; s3; gcs; azure ;;
    s3|gcs|azure|debian|lint) $part ;;
    *) echo "deps: unknown part $part (all|s3|gcs|azure|debian|lint)" >&2; exit 2 ;;
  esac
done
