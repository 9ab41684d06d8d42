#!/usr/bin/env bash
# make demo: a throwaway PostgreSQL 15 archives its WAL with bcloud into a
# file:// store, takes a base backup with bcloud, loses data by mistake, and
# is restored to the point in time just before the mistake into a second
# data directory, which starts and shows exactly the rows of that moment.
# Everything lives in one temporary directory, removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

BCLOUD_SRC=${BCLOUD:-$PWD/bin/bcloud}
PGBIN=${BCLOUD_PGBIN:-/usr/lib/postgresql/15/bin}
SERVER=demo

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

[ -x "$BCLOUD_SRC" ] || die "$BCLOUD_SRC not found: run make build first"
[ -x "$PGBIN/pg_ctl" ] || die "PostgreSQL 15 not found in $PGBIN (set BCLOUD_PGBIN)"

# PostgreSQL refuses to run as root: run it, and bcloud as PostgreSQL
# would, as the postgres user.
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || die "running as root needs a postgres user"
  as_pg() { runuser -u postgres -- "$@"; }
else
  as_pg() { "$@"; }
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/bcloud-demo-XXXXXX")
chmod 700 "$WORK"
[ "$(id -u)" = 0 ] && chown postgres: "$WORK"
SRC=$WORK/source
DST=$WORK/restored
STORE=$WORK/store
SOCK=$WORK/sock
BCLOUD=$WORK/bcloud
URL=file://$STORE

cleanup() {
  local rc=$?
  for d in "$DST" "$SRC"; do
    if [ -f "$d/postmaster.pid" ]; then
      as_pg "$PGBIN/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1 || true
    fi
  done
  rm -rf "$WORK"
  if [ $rc -eq 0 ]; then
    printf '\nDemo finished; %s removed.\n' "$WORK"
  else
    printf '\nDemo FAILED (exit %d); %s removed.\n' "$rc" "$WORK" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port nobody listens on.
free_port() {
  local p
  for p in $(seq "$1" $(($1 + 200))); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  die "no free port near $1"
}

as_pg mkdir -p "$SOCK" "$STORE"
cp "$BCLOUD_SRC" "$BCLOUD"
chmod 755 "$BCLOUD"

PORT1=$(free_port 55432)
psql1() { as_pg "$PGBIN/psql" -h "$SOCK" -p "$PORT1" -U postgres -d postgres -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
pgenv() { as_pg env PGHOST="$SOCK" PGPORT="$PORT1" PGUSER=postgres "$@"; }

step "Create a PostgreSQL 15 cluster archiving WAL with bcloud into $URL"
as_pg "$PGBIN/initdb" -D "$SRC" -U postgres -A trust -E UTF8 --locale=C --wal-segsize=1 --no-sync >/dev/null
cat >>"$SRC/postgresql.conf" <<EOF
port = $PORT1
listen_addresses = ''
unix_socket_directories = '$SOCK'
wal_level = replica
archive_mode = on
archive_command = '$BCLOUD wal-archive $URL $SERVER %p'
EOF
as_pg "$PGBIN/pg_ctl" -D "$SRC" -l "$WORK/source.log" -w start >/dev/null
note "archive_command = '$BCLOUD wal-archive $URL $SERVER %p'"

step "Write data: 1000 orders"
psql1 "CREATE TABLE orders (id int PRIMARY KEY, item text, at timestamptz DEFAULT clock_timestamp())"
psql1 "INSERT INTO orders (id, item) SELECT g, 'item ' || g FROM generate_series(1, 1000) g"
note "orders: $(psql1 'SELECT count(*) FROM orders') rows"

step "bcloud backup --gzip $URL $SERVER"
pgenv "$BCLOUD" backup --immediate-checkpoint --gzip --name before-sale "$URL" "$SERVER"
"$BCLOUD" backup-list "$URL" "$SERVER" | sed 's/^/    /'

step "More orders after the backup: 500"
psql1 "INSERT INTO orders (id, item) SELECT g, 'item ' || g FROM generate_series(1001, 1500) g"
TARGET_TIME=$(psql1 "SELECT clock_timestamp()")
psql1 "SELECT pg_create_restore_point('before_mistake')" >/dev/null
WANT_ROWS=$(psql1 "SELECT count(*) FROM orders")
WANT_SUM=$(psql1 "SELECT md5(string_agg(o::text, ',' ORDER BY id)) FROM orders o")
note "orders: $WANT_ROWS rows at $TARGET_TIME (also restore point 'before_mistake')"

step "A mistake: half of the orders deleted, then 200 new ones"
sleep 1
psql1 "DELETE FROM orders WHERE id % 2 = 0"
psql1 "INSERT INTO orders (id, item) SELECT g, 'item ' || g FROM generate_series(2001, 2200) g"
note "orders now: $(psql1 'SELECT count(*) FROM orders') rows"

step "Wait until the WAL holding the mistake is archived"
LAST=$(psql1 "SELECT pg_walfile_name(pg_current_wal_lsn())")
psql1 "SELECT pg_switch_wal()" >/dev/null
for _ in $(seq 1 300); do
  DONE=$(psql1 "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
  if [ ${#DONE} -eq 24 ] && [[ ! "$DONE" < "$LAST" ]]; then break; fi
  sleep 0.2
done
[ ${#DONE} -eq 24 ] && [[ ! "$DONE" < "$LAST" ]] || die "WAL $LAST was not archived (last: $DONE)"
note "last archived WAL: $DONE"

step "bcloud restore auto --recovery-target-time '$TARGET_TIME' into $DST"
as_pg "$BCLOUD" restore --recovery-target-time "$TARGET_TIME" "$URL" "$SERVER" auto "$DST"
note "written to $DST/postgresql.auto.conf:"
grep -E '^(restore_command|recovery_target)' "$DST/postgresql.auto.conf" | sed 's/^/      /'

step "Start the restored copy: it replays archived WAL up to the target and promotes"
PORT2=$(free_port $((PORT1 + 1)))
cat >>"$DST/postgresql.conf" <<EOF
port = $PORT2
archive_mode = off
EOF
as_pg "$PGBIN/pg_ctl" -D "$DST" -l "$WORK/restored.log" -w start >/dev/null
psql2() { as_pg "$PGBIN/psql" -h "$SOCK" -p "$PORT2" -U postgres -d postgres -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
for _ in $(seq 1 300); do
  [ "$(psql2 'SELECT pg_is_in_recovery()' 2>/dev/null || true)" = f ] && break
  sleep 0.2
done
[ "$(psql2 'SELECT pg_is_in_recovery()')" = f ] || { tail -20 "$WORK/restored.log"; die "the restored copy did not finish recovery"; }
grep -E 'recovery stopping|archive recovery complete' "$WORK/restored.log" | sed 's/^/    log: /' || true

step "Check: the restored copy holds exactly the rows of $TARGET_TIME"
GOT_ROWS=$(psql2 "SELECT count(*) FROM orders")
GOT_SUM=$(psql2 "SELECT md5(string_agg(o::text, ',' ORDER BY id)) FROM orders o")
note "source now: $(psql1 'SELECT count(*) FROM orders') rows; at the target: $WANT_ROWS rows; restored: $GOT_ROWS rows"
if [ "$GOT_ROWS" != "$WANT_ROWS" ] || [ "$GOT_SUM" != "$WANT_SUM" ]; then
  die "restored data differs: $GOT_ROWS rows (checksum $GOT_SUM), want $WANT_ROWS ($WANT_SUM)"
fi
note "row count and checksum match: OK"

step "bcloud verify"
if "$BCLOUD" verify --help >/dev/null 2>&1; then
  rc=0
  "$BCLOUD" verify "$URL" "$SERVER" latest || rc=$?
  case $rc in
    0) note "verify: OK" ;;
    3) note "verify did not accept 'SOURCE_URL SERVER_NAME BACKUP_ID': skipped" ;;
    *) die "verify reported a problem (exit $rc)" ;;
  esac
else
  note "bcloud verify does not exist yet: skipped"
fi
