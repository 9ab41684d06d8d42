package catalog

import (
	"bytes"
	"encoding/json"
	"math"
	"math/big"
	"strings"
	"testing"
)

func goldenEntries(t *testing.T) []Entry {
	t.Helper()
	var entries []Entry
	for _, id := range goldenIDs(t) {
		entries = append(entries, Entry{ID: id, Info: parseGolden(t, id)})
	}
	return entries
}

// TestGoldenShowJSON compares with barman's to_json rendered by json.dumps
// (testdata/gen_golden.py).
func TestGoldenShowJSON(t *testing.T) {
	for _, e := range goldenEntries(t) {
		var buf bytes.Buffer
		if err := RenderShowJSON(&buf, e); err != nil {
			t.Fatal(err)
		}
		if want := readGolden(t, e.ID+".show.json"); buf.String() != string(want) {
			t.Errorf("%s: show JSON differs\n got: %s\nwant: %s", e.ID, buf.Bytes(), want)
		}
	}
}

func TestGoldenListJSON(t *testing.T) {
	entries := goldenEntries(t)
	// Reverse order and an unreadable entry must not matter.
	for i, j := 0, len(entries)-1; i < j; i, j = i+1, j-1 {
		entries[i], entries[j] = entries[j], entries[i]
	}
	entries = append(entries, Entry{ID: "20200101T000000", Err: bytes.ErrTooLarge})
	var buf bytes.Buffer
	if err := RenderListJSON(&buf, entries); err != nil {
		t.Fatal(err)
	}
	if want := readGolden(t, "list.json"); buf.String() != string(want) {
		t.Errorf("list JSON differs\n got: %s\nwant: %s", buf.Bytes(), want)
	}
	buf.Reset()
	if err := RenderListJSON(&buf, nil); err != nil || buf.String() != "{\"backups_list\": []}\n" {
		t.Errorf("empty list = %q, %v", buf.String(), err)
	}
}

// TestJSONForCNPG checks the keys CloudNativePG reads from backup-list and
// backup-show through encoding/json.
func TestJSONForCNPG(t *testing.T) {
	var buf bytes.Buffer
	e := Entry{ID: "20240115T103000", Info: parseGolden(t, "20240115T103000")}
	if err := RenderShowJSON(&buf, e); err != nil {
		t.Fatal(err)
	}
	var doc map[string]struct {
		BackupName   string `json:"backup_name"`
		BackupLabel  string `json:"backup_label"`
		BeginTime    string `json:"begin_time"`
		BeginTimeISO string `json:"begin_time_iso"`
		EndTimeISO   string `json:"end_time_iso"`
		BeginWAL     string `json:"begin_wal"`
		EndXlog      string `json:"end_xlog"`
		SystemID     string `json:"systemid"`
		BackupID     string `json:"backup_id"`
		Error        string `json:"error"`
		Timeline     int    `json:"timeline"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	c := doc["cloud"]
	if c.BackupID != e.ID || c.BackupName != "nightly" || c.BeginTime != "Mon Jan 15 10:30:00 2024" ||
		c.BeginTimeISO != "2024-01-15T10:30:00.123456+00:00" || c.EndTimeISO != "2024-01-15T10:31:05.654321+00:00" ||
		c.Timeline != 1 || c.EndXlog != "0/2000100" || !strings.HasPrefix(c.BackupLabel, "'START WAL") {
		t.Errorf("unexpected document %+v", c)
	}
	// Object also marshals through encoding/json (compacted).
	data, err := json.Marshal(e.Info.JSON(e.ID))
	if err != nil || !strings.Contains(string(data), `"backup_id":"20240115T103000"`) {
		t.Errorf("json.Marshal: %s %v", data, err)
	}
}

func TestPyJSON(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{
		{"a\"\\\n\r\t\b\f\x01\x7f/é日😀\u2028", `"a\"\\\n\r\t\b\f\u0001\u007f/\u00e9\u65e5\ud83d\ude00\u2028"`},
		{Dict{{Key: int64(1), Value: nil}, {Key: true, Value: false}, {Key: nil, Value: 1.5}, {Key: 2.5, Value: math.Inf(-1)}},
			`{"1": null, "true": false, "null": 1.5, "2.5": -Infinity}`},
		{List{Tuple{}, big.NewInt(1).Lsh(big.NewInt(1), 70), 1e-07, 1e16, math.NaN()}, `[[], 1180591620717411303424, 1e-07, 1e+16, NaN]`},
		{Object{{Key: "k", Value: []any{1, int64(2)}}}, `{"k": [1, 2]}`},
	} {
		got, err := PyJSON(c.v)
		if err != nil || string(got) != c.want {
			t.Errorf("PyJSON(%#v) = %s, %v; want %s", c.v, got, err, c.want)
		}
	}
	for _, v := range []any{Bytes("x"), Dict{{Key: Tuple{}, Value: 1}}, List{struct{}{}}} {
		if _, err := PyJSON(v); err == nil {
			t.Errorf("PyJSON(%#v) succeeded", v)
		}
	}
}

func TestJSONEmptyValues(t *testing.T) {
	info := New()
	info.IncludedFiles = []string{}
	info.CopyStats = Dict{}
	info.BackupLabel = ptr("")
	info.ChildrenBackupIDs = []string{}
	obj := info.JSON("x")
	for key, want := range map[string]string{"included_files": "[]", "copy_stats": "{}", "backup_label": "null",
		"children_backup_ids": "null", "tablespaces": "null", "status": `"EMPTY"`} {
		v, ok := obj.Get(key)
		got, _ := PyJSON(v)
		if !ok || string(got) != want {
			t.Errorf("%s = %s (present %v), want %s", key, got, ok, want)
		}
	}
	for _, key := range []string{"backup_name", "snapshots_info", "begin_time_iso", "end_time_iso"} {
		if _, ok := obj.Get(key); ok {
			t.Errorf("%s present", key)
		}
	}
	if last := obj[len(obj)-1]; last.Key != "backup_id" || last.Value != "x" {
		t.Errorf("last member %v", last)
	}
}
