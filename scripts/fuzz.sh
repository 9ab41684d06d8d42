#!/usr/bin/env bash
# Runs every fuzz target for a short while (FUZZTIME, default 5s each).
# The committed seed corpora run anyway as part of `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-5s}
status=0
while IFS=: read -r file name; do
  pkg=./$(dirname "$file")
  echo "fuzz: $name in $pkg for $FUZZTIME"
  if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg" >/tmp/bcloud-fuzz.log 2>&1; then
    cat /tmp/bcloud-fuzz.log
    status=1
  fi
done < <(grep -rhoE --include='*_test.go' -H '^func (Fuzz[A-Za-z0-9_]+)' internal | sed -E 's/func //')
exit $status
