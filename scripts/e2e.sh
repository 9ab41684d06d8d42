#!/usr/bin/env bash
# End-to-end harness (test/e2e): the real CloudNativePG operator and
# instance manager, with bcloud as the Barman Cloud plugin, on the envtest
# API server, the harness standing in for the kubelet. Needs root (mount
# namespaces) and the parts scripts/deps.sh installs.
# Usage: scripts/e2e.sh [go test flags...], e.g. scripts/e2e.sh -run 'TestE2E/backup'
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

if [ "$(id -u)" != 0 ]; then
  echo "e2e: run as root: pods get their own mount namespaces and PostgreSQL runs as the postgres user" >&2
  exit 2
fi

begin=$(date +%s)
scripts/deps.sh debian s3 envtest cnpg
echo "e2e: dependencies ready in $(( $(date +%s) - begin ))s" >&2

mkdir -p "$ROOT/.cache/e2e"
LOG=$ROOT/.cache/e2e/last.log
status=0
( cd test/e2e && go test -count=1 -v -timeout 30m "$@" ./... ) >"$LOG" 2>&1 || status=$?

# The scenario list with timings, then the harness's step timings.
echo "e2e: scenarios (full log: $LOG)"
grep -E -- '^\s*--- (PASS|FAIL|SKIP)' "$LOG" || true
sed -n '/timings:/,/^\(---\|===\|PASS\|FAIL\|ok \)/p' "$LOG" | grep -vE '^(---|===|PASS|FAIL|ok )' || true
if [ "$status" != 0 ]; then
  echo "e2e: FAILED; last lines of the log:" >&2
  grep -vE '^\s+\{"level"' "$LOG" | tail -60 >&2
fi
exit "$status"
