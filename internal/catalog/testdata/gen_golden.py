#!/usr/bin/python3
"""Regenerate the golden files of internal/catalog with the real Python barman.

Run from internal/catalog:  /usr/bin/python3 testdata/gen_golden.py

Needs barman 3.4 (Debian python3-barman). For each backup below it writes
testdata/golden/<backup_id>.info with barman's own BackupInfo.save, then
renders what the barman-cloud tools print for it:

  <id>.show.json   barman-cloud-backup-show --format json
  <id>.show34.txt  barman-cloud-backup-show console output of barman 3.4
  list.json        barman-cloud-backup-list --format json (all backups)
  list.txt         barman-cloud-backup-list console output

The JSON follows barman 3.17, which adds fields barman 3.4 does not have
(cluster_size, data_checksums, ...) and the begin_time_iso/end_time_iso
keys. Info317 below declares those fields on top of 3.4's BackupInfo and
adds the two keys, so the JSON comes from barman's own to_dict, repr and
json.dumps. 20240120T083000.info is the barman 3.17 example of the
compatibility spec (section 4.4); barman 3.4 cannot load it, so its
expected 3.4 re-serialisation is written as 20240120T083000.info34.
"""

import datetime
import io
import json
import os
import sys
import types


def _stub_google_cloud():
    """Let barman import its GCP provider without google-cloud-storage.

    Only the snapshot metadata classes are used, which never touch the
    client library.
    """
    try:
        import google.cloud.storage  # noqa: F401
        import google.api_core.exceptions  # noqa: F401
        return
    except ImportError:
        pass
    exc = types.ModuleType("google.api_core.exceptions")
    for name in ("GoogleAPIError", "Conflict", "NotFound"):
        setattr(exc, name, type(name, (Exception,), {}))
    modules = {
        "google": types.ModuleType("google"),
        "google.cloud": types.ModuleType("google.cloud"),
        "google.cloud.storage": types.ModuleType("google.cloud.storage"),
        "google.api_core": types.ModuleType("google.api_core"),
        "google.api_core.exceptions": exc,
    }
    modules["google"].__path__ = []
    modules["google.cloud"].__path__ = []
    modules["google.api_core"].__path__ = []
    modules["google.cloud"].storage = modules["google.cloud.storage"]
    modules["google.api_core"].exceptions = exc
    sys.modules.update(modules)


_stub_google_cloud()

from barman import __version__  # noqa: E402
from barman.cloud_providers import snapshots_info_from_dict  # noqa: E402
from barman.infofile import BackupInfo, Field, Tablespace  # noqa: E402
from barman.output import ConsoleOutputWriter  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")


def _join_ids(ids):
    return ",".join(ids) if ids else None


def _split_ids(text):
    return text.split(",") if text else None


class Info317(BackupInfo):
    """barman 3.4's BackupInfo with the fields added up to barman 3.17."""

    __slots__ = ()
    children_backup_ids = Field("children_backup_ids", dump=_join_ids, load=_split_ids)
    cluster_size = Field("cluster_size", load=int)
    data_checksums = Field("data_checksums")
    encryption = Field("encryption")
    parent_backup_id = Field("parent_backup_id")
    summarize_wal = Field("summarize_wal")

    def to_json(self):
        begin, end = self.begin_time, self.end_time
        data = super().to_json()  # ctime for begin_time/end_time
        # barman 3.17 appends the ISO forms after backup_id.
        if begin is not None:
            data["begin_time_iso"] = begin.isoformat()
        if end is not None:
            data["end_time_iso"] = end.isoformat()
        return data


def tz(hours=0, minutes=0, seconds=0):
    return datetime.timezone(
        datetime.timedelta(hours=hours, minutes=minutes, seconds=seconds)
    )


LABEL = (
    "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n"
    "CHECKPOINT LOCATION: 0/2000060\nBACKUP METHOD: streamed\n"
    "BACKUP FROM: primary\nSTART TIME: 2024-01-15 10:30:00 UTC\n"
    "LABEL: Barman backup cloud 20240115T103000\nSTART TIMELINE: 1\n"
)

COPY_STATS = {
    "total_time": 64.5,
    "number_of_workers": 2,
    "analysis_time": 0,
    "analysis_time_per_item": {"data": 0, "16385": 0},
    "copy_time_per_item": {"data": 60.1, "16385": 1.25},
    "serialized_copy_time_per_item": {"data": 59.0, "16385": 1.0},
    "copy_time": 60.1,
    "serialized_copy_time": 59.0,
}

BACKUPS = {
    # A typical barman-cloud-backup result.
    "20240115T103000": dict(
        backup_label=LABEL,
        backup_name="nightly",
        begin_offset=40,
        begin_time=datetime.datetime(2024, 1, 15, 10, 30, 0, 123456, tz()),
        begin_wal="000000010000000000000002",
        begin_xlog="0/2000028",
        config_file="/etc/postgresql/16/main/postgresql.conf",
        copy_stats=COPY_STATS,
        end_offset=256,
        end_time=datetime.datetime(2024, 1, 15, 10, 31, 5, 654321, tz()),
        end_wal="000000010000000000000002",
        end_xlog="0/2000100",
        hba_file="/etc/postgresql/16/main/pg_hba.conf",
        ident_file="/etc/postgresql/16/main/pg_ident.conf",
        included_files=["/etc/postgresql/16/main/conf.d/x.conf"],
        pgdata="/var/lib/postgresql/16/main",
        server_name="cloud",
        status="DONE",
        systemid="7323741938495719012",
        tablespaces=[Tablespace("tbs1", 16385, "/srv/tbs1")],
        timeline=1,
        version=160001,
        xlog_segment_size=16777216,
    ),
    # A failed backup: whole-second time, negative offset, most fields None.
    "20240116T020000": dict(
        begin_offset=40,
        begin_time=datetime.datetime(2024, 1, 16, 2, 0, 0, 0, tz(-5)),
        begin_wal="000000010000000000000004",
        begin_xlog="0/4000028",
        error="failure uploading data (Connection reset by peer)",
        pgdata="/var/lib/postgresql/16/main",
        server_name="cloud",
        status="FAILED",
        systemid="7323741938495719012",
        timeline=1,
        version=160001,
        xlog_segment_size=16777216,
    ),
    # Nothing set: barman's defaults only.
    "20240117T000000": dict(),
    # Quotes, escapes, non-ASCII, odd offsets and literal corner cases.
    "20240118T235959": dict(
        backup_label="it's a \"label\"\twith \\ and \x01\x7f, é 日本 \U0001F600 \u2028 \xa0\n",
        backup_name="nächtlich \"full\" 'q'",
        begin_offset=0,
        begin_time=datetime.datetime(2024, 1, 5, 7, 8, 9, 1, tz(5, 30)),
        begin_wal="00000003000000A1000000FF",
        begin_xlog="A1/FF000000",
        compression="gzip",
        config_file="/etc/postgresql/9.6/main/postgresql.conf",
        copy_stats={
            "copy_time": 1e-07,
            "total_time": 0.30000000000000004,
            "big": 2**70,
            "huge": 1e16,
            "neg": -0.0,
            1: (1,),
            "t": (True, False, None),
            "nested": {"a": [], "b": {}, "c": ()},
            "s": "x'y\"z",
        },
        deduplicated_size=100,
        end_offset=16777215,
        end_time=datetime.datetime(2024, 12, 31, 23, 59, 59, 999999, tz(5, 45)),
        end_wal="00000003000000A200000000",
        end_xlog="A2/FFFFFF",
        hba_file="/etc/postgresql/9.6/main/pg_hba.conf",
        ident_file="/etc/postgresql/9.6/main/pg_ident.conf",
        included_files=["/etc/pg/a.conf", "/etc/pg/é'.conf"],
        mode="rsync-concurrent",
        pgdata="/var/lib/postgresql/9.6/main",
        server_name="pg-main",
        size=12345,
        status="DONE",
        systemid="6399140913451224327",
        tablespaces=[
            Tablespace("tbs'1", 16385, "/srv/tbs 1"),
            Tablespace("ünï", 4294967295, '/srv/"q"'),
        ],
        timeline=3,
        version=90624,
        xlog_segment_size=67108864,
    ),
    # A GCP snapshot backup (the only snapshot provider barman 3.4 knows).
    "20240119T120000": dict(
        backup_label=LABEL.replace("20240115T103000", "20240119T120000"),
        backup_name="snap",
        begin_offset=40,
        begin_time=datetime.datetime(2024, 1, 19, 12, 0, 0, 500000, tz(1)),
        begin_wal="000000010000000000000010",
        begin_xlog="0/10000028",
        end_offset=312,
        end_time=datetime.datetime(2024, 1, 19, 12, 0, 30, 0, tz(1)),
        end_wal="000000010000000000000010",
        end_xlog="0/10000138",
        pgdata="/opt/postgres/data",
        server_name="pg-snap",
        snapshots_info=snapshots_info_from_dict(
            {
                "provider": "gcp",
                "provider_info": {"project": "test-project"},
                "snapshots": [
                    {
                        "mount": {
                            "mount_options": "rw,noatime",
                            "mount_point": "/opt/postgres",
                        },
                        "provider": {
                            "device_name": "pgdata",
                            "snapshot_name": "snap-1",
                            "snapshot_project": "test-project",
                        },
                    }
                ],
            }
        ),
        status="DONE",
        systemid="7323741938495719012",
        timeline=1,
        version=150004,
        xlog_segment_size=16777216,
    ),
}

# The barman 3.17 example of the compatibility spec, section 4.4.
SPEC_317 = """backup_label='START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\\nCHECKPOINT LOCATION: 0/2000060\\nBACKUP METHOD: streamed\\nBACKUP FROM: primary\\nSTART TIME: 2024-01-15 10:30:00 UTC\\nLABEL: Barman backup cloud 20240115T103000\\nSTART TIMELINE: 1\\n'
backup_name=nightly
begin_offset=40
begin_time=2024-01-15 10:30:00.123456+00:00
begin_wal=000000010000000000000002
begin_xlog=0/2000028
children_backup_ids=None
cluster_size=30000000
compression=None
config_file=/etc/postgresql/16/main/postgresql.conf
copy_stats={'total_time': 64.5, 'number_of_workers': 2, 'analysis_time': 0, 'analysis_time_per_item': {'data': 0}, 'copy_time_per_item': {'data': 60.1}, 'serialized_copy_time_per_item': {'data': 59.0}, 'copy_time': 60.1, 'serialized_copy_time': 59.0}
data_checksums=off
deduplicated_size=None
encryption=None
end_offset=256
end_time=2024-01-15 10:31:05.654321+00:00
end_wal=000000010000000000000002
end_xlog=0/2000100
error=None
hba_file=/etc/postgresql/16/main/pg_hba.conf
ident_file=/etc/postgresql/16/main/pg_ident.conf
included_files=['/etc/postgresql/16/main/conf.d/x.conf']
mode=None
parent_backup_id=None
pgdata=/var/lib/postgresql/16/main
server_name=cloud
size=None
status=DONE
summarize_wal=None
systemid=7323741938495719012
tablespaces=[('tbs1', 16385, '/srv/tbs1')]
timeline=1
version=160001
xlog_segment_size=16777216
"""
SPEC_ID = "20240120T083000"

KEEP = {"20240115T103000": "full", "20240118T235959": "standalone"}


def load(backup_id):
    info = Info317(backup_id)
    info.load(filename=os.path.join(OUT, backup_id + ".info"))
    return info


def write(name, text):
    with open(os.path.join(OUT, name), "w", encoding="utf-8", newline="") as f:
        f.write(text)


def main():
    if not __version__.startswith("3.4"):
        sys.exit("barman 3.4 expected, found %s" % __version__)
    os.makedirs(OUT, exist_ok=True)
    for backup_id, fields in BACKUPS.items():
        BackupInfo(backup_id, **fields).save(
            filename=os.path.join(OUT, backup_id + ".info")
        )
    write(SPEC_ID + ".info", SPEC_317)
    spec = load(SPEC_ID)
    old = BackupInfo(SPEC_ID)
    for name, value in spec._fields.items():
        if isinstance(getattr(BackupInfo, name, None), Field):
            setattr(old, name, value)
    buf = io.BytesIO()
    old.save(file_object=buf)
    write(SPEC_ID + ".info34", buf.getvalue().decode("utf-8"))

    ids = sorted(list(BACKUPS) + [SPEC_ID])
    infos = {i: load(i) for i in ids}
    for backup_id, info in infos.items():
        write(
            backup_id + ".show.json",
            json.dumps({info.server_name: info.to_json()}) + "\n",
        )
        lines = []
        try:
            ConsoleOutputWriter.render_show_backup(info.to_dict(), lines.append)
        except KeyError:
            continue  # barman 3.4 cannot render a backup with a size
        write(backup_id + ".show34.txt", "".join(line + "\n" for line in lines))
    write(
        "list.json",
        json.dumps({"backups_list": [infos[i].to_json() for i in ids]}) + "\n",
    )
    # barman-cloud-backup-list console output (cloud_backup_list.main).
    columns = "{:<20}{:<25}{:<30}{:<17}{:<20}"
    out = [columns.format("Backup ID", "End Time", "Begin Wal", "Archival Status", "Name")]
    for i in ids:
        info = infos[i]
        if info.status != BackupInfo.DONE:
            continue
        keep = KEEP.get(i)
        out.append(
            columns.format(
                i,
                info.end_time.strftime("%Y-%m-%d %H:%M:%S"),
                info.begin_wal,
                keep and "KEEP:%s" % keep.upper() or "",
                info.backup_name or "",
            )
        )
    write("list.txt", "".join(line + "\n" for line in out))


if __name__ == "__main__":
    main()
