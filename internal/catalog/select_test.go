package catalog

import (
	"context"
	"testing"
	"time"
)

func TestLSN(t *testing.T) {
	for s, want := range map[string]uint64{"16/B374D848": 0x16B374D848, "0/0": 0, "FFFFFFFF/FFFFFFFF": 1<<64 - 1, "a/b": 0xa0000000b} {
		got, err := ParseLSN(s)
		if err != nil || got != want {
			t.Errorf("ParseLSN(%q) = %x, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "1", "1/2/3", "x/1", "1/", "/1", "+1/1", "100000000/0", "-1/0"} {
		if _, err := ParseLSN(s); err == nil {
			t.Errorf("ParseLSN(%q) succeeded", s)
		}
	}
	if got := FormatLSN(0x16B374D848); got != "16/B374D848" {
		t.Errorf("FormatLSN = %s", got)
	}
}

func TestSelect(t *testing.T) {
	c := newTestCatalog(t)
	entries, err := c.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time { tm, _ := ParseTime(s); return tm }
	for _, tc := range []struct {
		target string
		tli    int
		want   string
	}{
		{"2024-01-10 00:00:00+00:00", 0, "20240105T000000"},
		{"2024-01-03 23:10:00+00:00", 0, "20240104T000000"}, // 00:10+01:00 is 23:10 UTC the day before
		{"2024-01-03 23:09:59+00:00", 0, "20240103T000000"},
		{"2024-01-10 00:00:00+00:00", 1, "20240102T000000"},
		{"2024-01-01 00:10:00+00:00", 0, "20240101T000000"},
		{"2024-01-01 00:09:59+00:00", 0, ""},
		{"2024-01-10 00:00:00+00:00", 9, ""},
	} {
		e, ok := SelectByTargetTime(entries, at(tc.target), tc.tli)
		if e.ID != tc.want || ok != (tc.want != "") {
			t.Errorf("SelectByTargetTime(%s, %d) = %s, want %s", tc.target, tc.tli, e.ID, tc.want)
		}
	}
	for _, tc := range []struct {
		lsn  uint64
		tli  int
		want string
	}{
		{1 << 40, 0, "20240105T000000"},
		{1 << 32, 0, "20240104T000000"},
		{1<<32 - 1, 0, "20240103T000000"},
		{1 << 40, 1, "20240102T000000"},
		{0x3000000, 0, "20240101T000000"},
		{0x2FFFFFF, 0, ""},
	} {
		e, ok := SelectByTargetLSN(entries, tc.lsn, tc.tli)
		if e.ID != tc.want || ok != (tc.want != "") {
			t.Errorf("SelectByTargetLSN(%X, %d) = %s, want %s", tc.lsn, tc.tli, e.ID, tc.want)
		}
	}
	for tli, want := range map[int]string{1: "20240102T000000", 2: "20240105T000000", 3: ""} {
		if e, _ := SelectByTLI(entries, tli); e.ID != want {
			t.Errorf("SelectByTLI(%d) = %s, want %s", tli, e.ID, want)
		}
	}
	if e, ok := SelectLatest(entries); !ok || e.ID != "notanid" {
		t.Errorf("SelectLatest = %s", e.ID)
	}
	if _, ok := SelectLatest(nil); ok {
		t.Error("SelectLatest(nil) found a backup")
	}
}
