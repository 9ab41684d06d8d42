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
CONTROLLER_TOOLS_VERSION=v0.23.0
ETCD_VERSION=v3.6.13
KUBE_VERSION=v1.36.3

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

controller_gen() { go_tool controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen "$CONTROLLER_TOOLS_VERSION"; }

# envtest: etcd and kube-apiserver built from the Go module proxy through
# wrapper modules (the upstream modules carry replace directives that
# `go install` refuses). Cached in .cache/envtest/<versions>/.
envtest() {
  local dir=$CACHE/envtest/$KUBE_VERSION-$ETCD_VERSION
  if [ -x "$dir/kube-apiserver" ] && [ -x "$dir/etcd" ]; then return; fi
  mkdir -p "$dir" "$CACHE/envtest/src/etcd" "$CACHE/envtest/src/kas"
  if [ ! -x "$dir/etcd" ]; then
    log "build etcd $ETCD_VERSION"
    ( cd "$CACHE/envtest/src/etcd"
      printf 'module example.local/etcdbuild\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" > go.mod
      printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
      go mod tidy >&2 && CGO_ENABLED=0 go build -o "$dir/etcd" go.etcd.io/etcd/server/v3 >&2 )
  fi
  if [ ! -x "$dir/kube-apiserver" ]; then
    log "build kube-apiserver $KUBE_VERSION (a few minutes on a fresh machine)"
    ( cd "$CACHE/envtest/src/kas"
      local sv="v0.${KUBE_VERSION#v1.}"
      go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" >/dev/null
      local mods
      mods=$(grep -E '^\s+k8s.io/[a-z0-9-]+ v0\.0\.0$' "$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$KUBE_VERSION.mod" | awk '{print $1}')
      { echo 'module example.local/kasbuild'; echo; echo 'go 1.26'; echo; echo "require k8s.io/kubernetes $KUBE_VERSION"; echo; echo 'replace (';
        for m in $mods; do echo "	$m => $m $sv"; done; echo ')'; } > go.mod
      printf '//go:build tools\n\npackage tools\n\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver"\n' > tools.go
      local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
      go mod tidy >&2 && CGO_ENABLED=0 go build -ldflags "-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor" \
        -o "$dir/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver >&2 )
  fi
  ln -sfn "$dir" "$CACHE/envtest/current"
}

azure() {
  if stamp_ok azurite "$AZURITE_VERSION" && [ -x "$CACHE/azurite/node_modules/.bin/azurite-blob" ]; then return; fi
  log "npm install azurite@$AZURITE_VERSION"
  mkdir -p "$CACHE/azurite"
  npm install --silent --no-audit --no-fund --prefix "$CACHE/azurite" "azurite@$AZURITE_VERSION" >&2
  stamp_set azurite "$AZURITE_VERSION"
}

debian() {
  local want="barman-cli-cloud pgbackrest postgresql-15 python3-snappy python3-zstandard python3-lz4 python3-azure"
  local missing=""
  for p in $want; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
  [ -z "$missing" ] && return
  log "apt-get install$missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends $missing >&2
}

# cnpg: the real CloudNativePG manager binary (operator, instance manager,
# wal-archive, wal-restore, backup) for the test/e2e harness, built from a
# wrapper module. The Go proxy serves exact cloudnative-pg versions only.
CNPG_VERSION=v1.30.0
cnpg() {
  local dir=$CACHE/cnpg/$CNPG_VERSION
  if [ -x "$dir/manager" ]; then return; fi
  mkdir -p "$dir" "$CACHE/cnpg/src"
  log "build cloudnative-pg manager $CNPG_VERSION (a few minutes on a fresh machine)"
  ( cd "$CACHE/cnpg/src"
    printf 'module example.local/cnpgbuild\n\ngo 1.26\n\nrequire github.com/cloudnative-pg/cloudnative-pg %s\n' "$CNPG_VERSION" > go.mod
    printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/cloudnative-pg/cloudnative-pg/cmd/manager"\n' > tools.go
    go mod tidy >&2 && CGO_ENABLED=0 go build -ldflags "-X github.com/cloudnative-pg/cloudnative-pg/pkg/versions.buildVersion=${CNPG_VERSION#v}" \
      -o "$dir/manager.tmp" github.com/cloudnative-pg/cloudnative-pg/cmd/manager >&2
    mv "$dir/manager.tmp" "$dir/manager" )
}

[ $# -eq 0 ] && set -- all
for part in "$@"; do
  case $part in
    all) debian; s3; gcs; azure; controller_gen; envtest ;;
    s3|gcs|azure|debian|lint|envtest) $part ;;
    controller-gen) controller_gen ;;
    cnpg) cnpg ;;
    *) echo "deps: unknown part $part (all|s3|gcs|azure|debian|lint|controller-gen|envtest)" >&2; exit 2 ;;
  esac
done
