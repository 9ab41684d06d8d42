package backup

import "testing"

func TestTranslateRule(t *testing.T) {
	cases := []struct{ rule, want string }{
		{"pg_wal/*", `^(?s:pg_wal/[^/]*)\z`},
		{"**/x", `^(?s:.*/x)\z`},
		{"***", `^(?s:.*[^/]*)\z`},
		{"a?b", `^(?s:a.b)\z`},
		{"[0-9]*", `^(?s:\[0-9\][^/]*)\z`},
		{"a.b", `^(?s:a\.b)\z`},
	}
	for _, c := range cases {
		if got := translateRule(c.rule); got != c.want {
			t.Errorf("translateRule(%q) = %q, want %q", c.rule, got, c.want)
		}
	}
}

func TestPGDataFilter(t *testing.T) {
	f, err := PGDataFilter([]uint32{16385}, []string{"/ts_inside"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path  string
		isDir bool
		want  bool
	}{
		{".", true, true},
		{"./PG_VERSION", false, true},
		{"./postgresql.auto.conf", false, true},
		{"./postmaster.pid", false, false},
		{"./postmaster.opts", false, false},
		{"./recovery.conf", false, false},
		{"./standby.signal", false, false},
		{"./postgresql.auto.conf.tmp", false, false},
		{"./current_logfiles.tmp", false, false},
		{"./backup_label", false, true},
		{"./recovery.signal", false, true},
		// /pg_wal/* keeps the directory and drops its content, and
		// subdirectories are matched on their own.
		{"pg_wal", true, true},
		{"pg_wal/000000010000000000000001", false, false},
		{"pg_wal/archive_status", true, false},
		{"pg_wal/archive_status/000000010000000000000001.done", false, true},
		{"pg_xlog/x", false, false},
		{"log", true, true},
		{"log/postgresql.log", false, false},
		{"pg_log/x", false, false},
		{"global", true, true},
		{"global/pg_control", false, false},
		{"global/1262", false, true},
		{"global/pg_internal.init", false, false},
		{"base/1/pg_internal.init", false, false},
		{"base/pgsql_tmp", true, false},
		{"base/pgsql_tmp/pgsql_tmp1.0", false, false},
		{"pgsql_tmp", true, false},
		{"base/16384/pgsql_tmp123", false, false},
		// The temporary relation rule never matches: brackets are literal.
		{"base/16384/t3_1234", false, true},
		{"base/16384/t3_1234_fsm", false, true},
		{"pg_replslot", true, true},
		{"pg_replslot/slot1", true, false},
		{"pg_replslot/slot1/state", false, true},
		{"pg_stat_tmp", true, true},
		{"pg_stat_tmp/global.stat", false, false},
		{"pg_dynshmem/x", false, false},
		{"pg_notify/0000", false, false},
		{"pg_serial/0000", false, false},
		{"pg_snapshots/x", false, false},
		{"pg_subtrans/0000", false, false},
		{"pg_multixact/offsets/0000", false, true},
		{"pg_xact/0000", false, true},
		{"pg_tblspc", true, true},
		{"pg_tblspc/16385", true, false},
		{"pg_tblspc/16385", false, false},
		{"pg_tblspc/16386", true, true},
		// A tablespace inside PGDATA: its directory entry and direct files
		// are excluded, deeper levels are not (barman quirk).
		{"ts_inside", true, false},
		{"ts_inside/x", false, true},
		{"ts_inside/PG_15_202209061", true, true},
		// Anchored rules only match at the root.
		{"base/pg_wal/x", false, true},
		{"base/log/x", false, true},
		// Unanchored rules match at any depth.
		{"a/b/pg_notify/x", false, false},
		{"a/postmaster.pid", false, false},
	}
	for _, c := range cases {
		if got := f.Allowed(c.path, c.isDir); got != c.want {
			t.Errorf("Allowed(%q, dir=%v) = %v, want %v", c.path, c.isDir, got, c.want)
		}
	}
}

func TestTablespaceFilter(t *testing.T) {
	f, err := TablespaceFilter("15")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path  string
		isDir bool
		want  bool
	}{
		{".", true, false},
		{"PG_15_202209061", true, true},
		{"PG_14_202107181", true, false},
		{"PG_15_202209061/16384", true, true},
		{"PG_15_202209061/16384/16390", false, true},
		{"PG_15_202209061/16384/pgsql_tmp", true, false},
		{"PG_15_202209061/pgsql_tmp", true, false},
		{"lost+found", true, false},
		// Files directly in the location are named "./x", which "/*" does
		// not match: barman keeps them.
		{"./stray", false, true},
		{"./postmaster.pid", false, false},
	}
	for _, c := range cases {
		if got := f.Allowed(c.path, c.isDir); got != c.want {
			t.Errorf("Allowed(%q, dir=%v) = %v, want %v", c.path, c.isDir, got, c.want)
		}
	}
}

func TestFilterRuleForms(t *testing.T) {
	f, err := NewFilter([]string{"only_dirs/", "/anch", "q?x", "", "deep/**/leaf"}, []string{"/keep*"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		path  string
		isDir bool
		want  bool
	}{
		{"only_dirs", true, false},
		{"only_dirs", false, true},
		{"a/only_dirs", true, false},
		{"anch", false, false},
		{"a/anch", false, true},
		{"q/x", false, false}, // "?" matches "/" too
		{"qax", false, false},
		{"qaax", false, true},
		{"deep/a/b/leaf", false, false},
		{"deep/leaf", false, true},
		{"keep_anch", false, true},
		{"keep", false, true},
	}
	for _, c := range cases {
		if got := f.Allowed(c.path, c.isDir); got != c.want {
			t.Errorf("Allowed(%q, dir=%v) = %v, want %v", c.path, c.isDir, got, c.want)
		}
	}
	var nilFilter *Filter
	if !nilFilter.Allowed("x", false) {
		t.Error("a nil filter must allow everything")
	}
}
