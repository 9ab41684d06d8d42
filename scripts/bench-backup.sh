#!/usr/bin/env bash
# make bench-backup: one PostgreSQL 15 dataset of about 2.2 GiB (pgbench
# scale 100 plus 4 million rows of random md5 text, so it does not
# compress to nothing) backed up with bcloud backup, barman-cloud-backup
# 3.4 and pgbackrest backup 2.45 to one local versitygw (TLS), then
# restored with bcloud restore, barman-cloud-restore and pgbackrest restore;
# uncompressed, gzip, and lz4/zstd where the peer has them; parallelism 2
# everywhere. Prints wall time, MB/s, CPU, peak RSS and ratios. A
# measurement, not a test.
#
# Environment: BENCH_SCALE (pgbench scale, default 100), BENCH_MD5_ROWS
# (default 4000000), BENCH_REPS (default 1), BENCH_ONLY (comma-separated
# substrings of "tool codec": run only those), BENCH_OUT (results file,
# default .cache/bench/backup.md), BCLOUD_BIN (default: bin/bcloud, built).
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x .cache/bin/versitygw ] || scripts/deps.sh s3
for tool in barman-cloud-backup barman-cloud-restore pgbackrest; do
  command -v "$tool" >/dev/null || { echo "bench-backup: $tool not found: run scripts/deps.sh debian" >&2; exit 1; }
done
if [ -z "${BCLOUD_BIN:-}" ]; then
  make -s build >/dev/null
  BCLOUD_BIN=$PWD/bin/bcloud
fi
export BCLOUD_BIN
mkdir -p .cache/bench
export BENCH_OUT=${BENCH_OUT:-$PWD/.cache/bench/backup.md}

go test -tags bench -count=1 -run '^TestBenchBackup$' -v -timeout 170m ./test/bench/
echo "bench-backup: results in $BENCH_OUT"
