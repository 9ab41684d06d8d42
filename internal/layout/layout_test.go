package layout

import "testing"

func TestWALKey(t *testing.T) {
	for _, c := range []struct{ server, name, ext, want string }{
		{"pg", "000000010000000A00000042", "", "pg/wals/000000010000000A/000000010000000A00000042"},
		{"pg", "000000010000000a00000042", ".gz", "pg/wals/000000010000000A/000000010000000a00000042.gz"},
		{"pg", "00000002.history", "", "pg/wals/00000002.history"},
		{"pg", "000000010000000000000002.00000028.backup", ".zst", "pg/wals/0000000100000000/000000010000000000000002.00000028.backup.zst"},
		{"pg", "/var/lib/pg_wal/000000020000000100000003.partial", "", "pg/wals/0000000200000001/000000020000000100000003.partial"},
	} {
		if got := WALKey(c.server, c.name, c.ext); got != c.want {
			t.Errorf("WALKey(%q, %q, %q) = %q, want %q", c.server, c.name, c.ext, got, c.want)
		}
	}
}

func TestIsWALFile(t *testing.T) {
	good := []string{"000000010000000000000001", "00000001.history", "000000010000000000000001.partial",
		"000000010000000000000001.00000028.backup", "pg_wal/0000000100000000000000AB"}
	bad := []string{"", "00000001", "000000010000000000000001.gz", "0000000100000000000000", "backup_label",
		"000000010000000000000001.backup", "0000000G0000000000000001", "00000001.history.gz"}
	for _, n := range good {
		if !IsWALFile(n) {
			t.Errorf("IsWALFile(%q) = false", n)
		}
	}
	for _, n := range bad {
		if IsWALFile(n) {
			t.Errorf("IsWALFile(%q) = true", n)
		}
	}
}

func TestArchiveKey(t *testing.T) {
	if got := ArchiveKey("s", "20240115T103000", "data", 0, ".gz"); got != "s/base/20240115T103000/data.tar.gz" {
		t.Error(got)
	}
	if got := ArchiveKey("s", "20240115T103000", "16385", 2, ""); got != "s/base/20240115T103000/16385_0002.tar" {
		t.Error(got)
	}
	if !IsBackupID("20240115T103000") || IsBackupID("20240115T10300") || IsBackupID("latest") {
		t.Error("IsBackupID")
	}
}
