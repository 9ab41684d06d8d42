#!/usr/bin/env bash
# make bench-wal: archives the same 32 x 16 MiB WAL segments, produced by
# pgbench on a real PostgreSQL 15, with bcloud, barman-cloud-wal-archive 3.4
# and pgbackrest archive-push 2.45, one process per segment as PostgreSQL
# calls archive_command, to one local versitygw (TLS), uncompressed and
# gzip; prints seconds per segment, CPU seconds, peak RSS and ratios, next
# to the raw PUT time of the same bytes. A measurement, not a test.
#
# Environment: BENCH_REPS (runs per configuration, default 3), BENCH_ONLY
# (comma-separated substrings of "tool codec": run only those), BENCH_OUT (results file,
# default .cache/bench/wal.md), BENCH_PROFILE (directory for the CPU and
# allocation profiles of bcloud wal-archive, default .cache/bench/prof;
# empty to skip), BCLOUD_BIN (default: bin/bcloud, built).
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x .cache/bin/versitygw ] || scripts/deps.sh s3
for tool in barman-cloud-wal-archive pgbackrest; do
  command -v "$tool" >/dev/null || { echo "bench-wal: $tool not found: run scripts/deps.sh debian" >&2; exit 1; }
done
if [ -z "${BCLOUD_BIN:-}" ]; then
  make -s build >/dev/null
  BCLOUD_BIN=$PWD/bin/bcloud
fi
export BCLOUD_BIN
mkdir -p .cache/bench
export BENCH_OUT=${BENCH_OUT:-$PWD/.cache/bench/wal.md}
export BENCH_PROFILE=${BENCH_PROFILE-$PWD/.cache/bench/prof}

go test -tags bench -count=1 -run '^TestBenchWAL$' -v -timeout 120m ./test/bench/
echo "bench-wal: results in $BENCH_OUT"
