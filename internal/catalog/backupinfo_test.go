package catalog

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// specID is the barman 3.17 example of the compatibility spec; the other
// golden files were written by barman 3.4's BackupInfo.save
// (testdata/gen_golden.py).
const specID = "20240120T083000"

func goldenIDs(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/golden/*.info")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	var ids []string
	for _, f := range files {
		ids = append(ids, strings.TrimSuffix(filepath.Base(f), ".info"))
	}
	return ids
}

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata/golden", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func parseGolden(t *testing.T, id string) *BackupInfo {
	t.Helper()
	info, err := ParseBackupInfo(readGolden(t, id+".info"))
	if err != nil {
		t.Fatalf("%s: %v", id, err)
	}
	return info
}

func TestGoldenRoundTrip(t *testing.T) {
	for _, id := range goldenIDs(t) {
		info := parseGolden(t, id)
		want := readGolden(t, id+".info")
		if id == specID {
			// A 3.17 file re-written with 3.4's keys, by barman 3.4.
			want = readGolden(t, id+".info34")
		}
		if got := info.Marshal(); string(got) != string(want) {
			t.Errorf("%s: Marshal differs\n got: %s\nwant: %s", id, got, want)
		}
		if err := info.Validate(); err != nil {
			t.Errorf("%s: Validate: %v", id, err)
		}
	}
}

func TestKeys34(t *testing.T) {
	want := "backup_label backup_name begin_offset begin_time begin_wal begin_xlog compression config_file " +
		"copy_stats deduplicated_size end_offset end_time end_wal end_xlog error hba_file ident_file " +
		"included_files mode pgdata server_name size snapshots_info status systemid tablespaces timeline " +
		"version xlog_segment_size"
	if got := strings.Join(Keys34(), " "); got != want {
		t.Errorf("Keys34() = %s", got)
	}
}

func TestParseBackupInfoValues(t *testing.T) {
	info := parseGolden(t, specID)
	ts := time.Date(2024, 1, 15, 10, 30, 0, 123456000, time.UTC)
	if !info.BeginTime.Equal(ts) || FormatTime(*info.BeginTime) != "2024-01-15 10:30:00.123456+00:00" {
		t.Errorf("begin_time = %v", info.BeginTime)
	}
	if *info.ClusterSize != 30000000 || *info.DataChecksums != "off" || info.SummarizeWAL != nil ||
		info.ChildrenBackupIDs != nil || info.ParentBackupID != nil || info.Encryption != nil {
		t.Errorf("3.11+ fields: %v %v %v %v", *info.ClusterSize, *info.DataChecksums, info.SummarizeWAL, info.ChildrenBackupIDs)
	}
	if !reflect.DeepEqual(info.Tablespaces, []Tablespace{{"tbs1", 16385, "/srv/tbs1"}}) {
		t.Errorf("tablespaces = %v", info.Tablespaces)
	}
	if !strings.HasPrefix(*info.BackupLabel, "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT") {
		t.Errorf("backup_label = %q", *info.BackupLabel)
	}
	if info.Mode != nil || info.Compression != nil || info.Size != nil || *info.Timeline != 1 || *info.Version != 160001 {
		t.Error("unexpected scalar values")
	}
	if v, _ := info.CopyStats.(Dict).Get("copy_time"); v != 60.1 {
		t.Errorf("copy_stats copy_time = %v", v)
	}

	tricky := parseGolden(t, "20240118T235959")
	_, off := tricky.EndTime.Zone()
	if off != 5*3600+45*60 || tricky.EndTime.Nanosecond() != 999999000 {
		t.Errorf("end_time = %v", tricky.EndTime)
	}
	if *tricky.BackupName != `nächtlich "full" 'q'` || tricky.Tablespaces[1].OID != 4294967295 {
		t.Errorf("tricky values: %q %v", *tricky.BackupName, tricky.Tablespaces)
	}

	empty := parseGolden(t, "20240117T000000")
	if *empty.Status != StatusEmpty || *empty.XLOGSegmentSize != DefaultXLOGSegmentSize || empty.BeginTime != nil {
		t.Errorf("defaults: %v %v", *empty.Status, *empty.XLOGSegmentSize)
	}
}

func TestParseBackupInfoTolerance(t *testing.T) {
	in := "# comment\n\n  \t\nstatus = DONE \r\nfuture_key=some value\nbegin_time=2024-01-15T10:30:00\n" +
		"end_time=2024-01-15 10:31:05.1234567 -0130\ntimeline=1_0\nchildren_backup_ids=a,b\ntablespaces=[]\n" +
		"included_files=()\ncopy_stats={}\nbackup_label=''\nstatus=FAILED"
	info, err := ParseBackupInfo([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if *info.Status != "FAILED" || *info.Timeline != 10 {
		t.Errorf("status %v timeline %v", *info.Status, *info.Timeline)
	}
	if !reflect.DeepEqual(info.Extra, []KeyValue{{"future_key", "some value"}}) {
		t.Errorf("extra = %v", info.Extra)
	}
	if FormatTime(*info.BeginTime) != "2024-01-15 10:30:00+00:00" || FormatTime(*info.EndTime) != "2024-01-15 10:31:05.123456-01:30" {
		t.Errorf("times %s %s", FormatTime(*info.BeginTime), FormatTime(*info.EndTime))
	}
	if !reflect.DeepEqual(info.ChildrenBackupIDs, []string{"a", "b"}) || info.Tablespaces != nil {
		t.Errorf("ids %v tablespaces %v", info.ChildrenBackupIDs, info.Tablespaces)
	}
	out := string(info.Marshal())
	for _, line := range []string{"included_files=None\n", "copy_stats=None\n", "backup_label=None\n", "tablespaces=None\n"} {
		if !strings.Contains(out, line) {
			t.Errorf("Marshal lacks %q:\n%s", line, out)
		}
	}
	for _, key := range []string{"future_key", "children_backup_ids", "cluster_size"} {
		if strings.Contains(out, key) {
			t.Errorf("Marshal wrote %s", key)
		}
	}
}

func TestParseBackupInfoErrors(t *testing.T) {
	for in, want := range map[string]string{
		"status=DONE\nno equals sign\n":          "line 2: no '='",
		"timeline=one\n":                         "line 1: timeline: invalid int",
		"begin_time=yesterday\n":                 "line 1: begin_time: invalid timestamp",
		"backup_label='unterminated\n":           "line 1: backup_label",
		"backup_label=42\n":                      "line 1: backup_label: expected a str literal",
		"tablespaces=[('a', 'b', 'c')]\n":        "line 1: tablespaces",
		"included_files=[1]\n":                   "line 1: included_files",
		"copy_stats={'a': 1\n":                   "line 1: copy_stats",
		"status=DONE\nerror=\xff\n":              "line 2: invalid UTF-8",
		"begin_time=2024-02-30 10:00:00+00:00\n": "invalid timestamp",
		"version=99999999999999999999\n":         "out of range",
	} {
		_, err := ParseBackupInfo([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseBackupInfo(%q) error = %v, want %q", in, err, want)
		}
	}
}

func TestParseTime(t *testing.T) {
	for in, want := range map[string]string{
		"2024-01-15 10:30:00.123456+00:00":   "2024-01-15 10:30:00.123456+00:00",
		"2024-01-15 10:30:00+01:00":          "2024-01-15 10:30:00+01:00",
		"2024-01-15T10:30:00Z":               "2024-01-15 10:30:00+00:00",
		"2024-01-15 10:30:00 UTC":            "2024-01-15 10:30:00+00:00",
		"2024-01-15 10:30:00.5-0800":         "2024-01-15 10:30:00.500000-08:00",
		"2024-01-15 10:30+05":                "2024-01-15 10:30:00+05:00",
		"2024-01-15":                         "2024-01-15 00:00:00+00:00",
		"20240115T103000":                    "2024-01-15 10:30:00+00:00",
		"2024-01-15 10:30:00+05:30:15":       "2024-01-15 10:30:00+05:30:15",
		"2024-01-15 10:30:00.000000001+0000": "2024-01-15 10:30:00+00:00",
	} {
		got, err := ParseTime(in)
		if err != nil {
			t.Errorf("ParseTime(%q): %v", in, err)
			continue
		}
		if s := FormatTime(got); s != want {
			t.Errorf("ParseTime(%q) = %s, want %s", in, s, want)
		}
	}
	for _, in := range []string{"", "2024", "2024-1-15", "2024-01-15 25:00:00", "2024-01-15 10:30:00+2", "2024-01-15 10:30:00 CET", "2024-01-15 10:30:00."} {
		if got, err := ParseTime(in); err == nil {
			t.Errorf("ParseTime(%q) = %v, want an error", in, got)
		}
	}
	loc := time.FixedZone("", -(3*3600 + 30*60))
	d := time.Date(2024, 3, 5, 6, 7, 8, 9000, loc)
	if ISOTime(d) != "2024-03-05T06:07:08.000009-03:30" || CTime(d) != "Tue Mar  5 06:07:08 2024" {
		t.Errorf("ISOTime %s CTime %s", ISOTime(d), CTime(d))
	}
}

func TestMarshalNew(t *testing.T) {
	info := New()
	info.BackupName = ptr("x")
	info.BackupLabel = ptr("it's\n")
	info.Tablespaces = []Tablespace{{"t", 1, "/l"}}
	info.IncludedFiles = []string{}
	info.CopyStats = Dict{{Key: "copy_time", Value: 1.5}}
	info.SnapshotsInfo = Dict{}
	out := string(info.Marshal())
	for _, line := range []string{"backup_name=x\n", `backup_label="it's\n"` + "\n", "tablespaces=[('t', 1, '/l')]\n",
		"included_files=None\n", "copy_stats={'copy_time': 1.5}\n", "snapshots_info=None\n", "status=EMPTY\n",
		"xlog_segment_size=16777216\n", "begin_time=None\n"} {
		if !strings.Contains(out, line) {
			t.Errorf("Marshal lacks %q:\n%s", line, out)
		}
	}
	if strings.Count(out, "\n") != 29 {
		t.Errorf("Marshal wrote %d lines, want 29", strings.Count(out, "\n"))
	}
	info.SnapshotsInfo = nil
	info.BackupName = nil
	if out := string(info.Marshal()); strings.Contains(out, "backup_name") || strings.Contains(out, "snapshots_info") {
		t.Errorf("hidden fields written:\n%s", out)
	}
}

func TestValidate(t *testing.T) {
	info := New()
	info.Error = ptr("two\nlines")
	if err := info.Validate(); err == nil {
		t.Error("Validate accepted a line break in error")
	}
	info.Error = ptr("bad \xff")
	if err := info.Validate(); err == nil {
		t.Error("Validate accepted invalid UTF-8")
	}
	info.Error = nil
	info.BackupLabel = ptr("label\nwith lines")
	info.EndTime = ptr(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC))
	if err := info.Validate(); err == nil || !strings.Contains(err.Error(), "end_time") {
		t.Errorf("Validate(year 10000) = %v", err)
	}
	info.EndTime = nil
	if err := info.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}
