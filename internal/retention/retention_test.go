package retention

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// bk builds a DONE backup that ended daysAgo days before now on timeline 1,
// beginning at segment seg.
func bk(id string, daysAgo int, seg int) Backup {
	return Backup{
		ID: id, Status: "DONE", EndTime: now.Add(-time.Duration(daysAgo) * day), Timeline: 1,
		BeginWAL: fmt.Sprintf("00000001000000000000%04X", seg), EndWAL: fmt.Sprintf("00000001000000000000%04X", seg+1),
	}
}

func with(b Backup, f func(*Backup)) Backup { f(&b); return b }

func TestParsePolicy(t *testing.T) {
	for in, want := range map[string]string{
		"REDUNDANCY 3": "REDUNDANCY 3", " redundancy  2 ": "REDUNDANCY 2",
		"RECOVERY WINDOW OF 7 DAYS": "RECOVERY WINDOW OF 7 DAYS", "recovery window of 1 week": "RECOVERY WINDOW OF 1 WEEKS",
		"Recovery Window Of 2 Months": "RECOVERY WINDOW OF 2 MONTHS", "30d": "RECOVERY WINDOW OF 30 DAYS",
		"4w": "RECOVERY WINDOW OF 4 WEEKS", "6m": "RECOVERY WINDOW OF 6 MONTHS",
	} {
		p, err := ParsePolicy(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePolicy(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	p, _ := ParsePolicy("2m")
	if p.Window != 62*day {
		t.Errorf("2m = %v, want 62 days", p.Window)
	}
	for _, bad := range []string{"", "REDUNDANCY", "REDUNDANCY -1", "REDUNDANCY 0", "RECOVERY WINDOW OF 7 YEARS", "7", "0d", "7 days", "d7"} {
		if _, err := ParsePolicy(bad); err == nil {
			t.Errorf("ParsePolicy(%q) accepted", bad)
		}
	}
}

func TestReport(t *testing.T) {
	cases := []struct {
		name    string
		backups []Backup
		policy  string
		minRed  int
		want    string // id=status, newest first
	}{
		{name: "empty catalog", policy: "REDUNDANCY 2", want: ""},
		{
			name:    "redundancy keeps the newest n",
			backups: []Backup{bk("20261101T000000", 23, 1), bk("20261110T000000", 14, 5), bk("20261120T000000", 4, 9)},
			policy:  "REDUNDANCY 2",
			want:    "20261120T000000=VALID 20261110T000000=VALID 20261101T000000=OBSOLETE",
		},
		{
			name: "failed backups neither count nor go",
			backups: []Backup{bk("20261101T000000", 23, 1), with(bk("20261110T000000", 14, 5), func(b *Backup) { b.Status = "FAILED" }),
				bk("20261120T000000", 4, 9)},
			policy: "REDUNDANCY 1",
			want:   "20261120T000000=VALID 20261110T000000=- 20261101T000000=OBSOLETE",
		},
		{
			name:    "minimum redundancy raises redundancy",
			backups: []Backup{bk("20261101T000000", 23, 1), bk("20261110T000000", 14, 5), bk("20261120T000000", 4, 9)},
			policy:  "REDUNDANCY 1", minRed: 3,
			want: "20261120T000000=VALID 20261110T000000=VALID 20261101T000000=VALID",
		},
		{
			name: "keep annotations survive and still count",
			backups: []Backup{with(bk("20261001T000000", 54, 1), func(b *Backup) { b.Keep = "full" }), bk("20261101T000000", 23, 3),
				with(bk("20261110T000000", 14, 5), func(b *Backup) { b.Keep = "standalone" }), bk("20261120T000000", 4, 9)},
			policy: "REDUNDANCY 2",
			want:   "20261120T000000=VALID 20261110T000000=KEEP:STANDALONE 20261101T000000=OBSOLETE 20261001T000000=KEEP:FULL",
		},
		{
			name:    "window keeps the first backup older than the window",
			backups: []Backup{bk("20261001T000000", 54, 1), bk("20261101T000000", 23, 3), bk("20261110T000000", 14, 5), bk("20261120T000000", 4, 9)},
			policy:  "RECOVERY WINDOW OF 7 DAYS",
			want:    "20261120T000000=VALID 20261110T000000=VALID 20261101T000000=OBSOLETE 20261001T000000=OBSOLETE",
		},
		{
			name:    "window with minimum redundancy marks OBSOLETE*",
			backups: []Backup{bk("20261001T000000", 54, 1), bk("20261101T000000", 23, 3), bk("20261110T000000", 14, 5)},
			policy:  "1w", minRed: 2,
			want: "20261110T000000=VALID 20261101T000000=OBSOLETE* 20261001T000000=OBSOLETE",
		},
		{
			name:    "window wider than every backup keeps all",
			backups: []Backup{bk("20261101T000000", 23, 3), bk("20261110T000000", 14, 5)},
			policy:  "RECOVERY WINDOW OF 2 MONTHS",
			want:    "20261110T000000=VALID 20261101T000000=VALID",
		},
		{
			name: "window honours keep on old backups",
			backups: []Backup{with(bk("20260101T000000", 327, 1), func(b *Backup) { b.Keep = "full" }), bk("20261101T000000", 23, 3),
				bk("20261120T000000", 4, 9)},
			policy: "RECOVERY WINDOW OF 1 DAYS",
			want:   "20261120T000000=VALID 20261101T000000=OBSOLETE 20260101T000000=KEEP:FULL",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := ParsePolicy(c.policy)
			if err != nil {
				t.Fatal(err)
			}
			r := Report(c.backups, p, c.minRed, now)
			var got []string
			for i := len(c.backups) - 1; i >= 0; i-- {
				got = append(got, c.backups[i].ID+"="+string(r[c.backups[i].ID]))
			}
			if strings.Join(got, " ") != c.want {
				t.Fatalf("\n got %s\nwant %s", strings.Join(got, " "), c.want)
			}
		})
	}
}

func walsFrom(names ...string) []WALName {
	var out []WALName
	for _, n := range names {
		out = append(out, WALName{Name: n, Keys: []string{"s/wals/x/" + n}})
	}
	return out
}

func names(ws []WALName) string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Name)
	}
	return strings.Join(out, " ")
}

func TestWALsToDelete(t *testing.T) {
	seg := func(tli, n int) string { return fmt.Sprintf("%08X00000000%08X", tli, n) }
	archive := walsFrom(seg(1, 1), seg(1, 2), seg(1, 2)+".00000028.backup", seg(1, 3), seg(1, 4), seg(1, 5), seg(1, 6),
		"00000002.history", seg(2, 6), seg(2, 7), seg(2, 8), seg(2, 9))
	b1 := bk("20261101T000000", 23, 2)
	b2 := bk("20261110T000000", 14, 4)
	b3 := bk("20261120T000000", 4, 5)
	cases := []struct {
		name    string
		backups []Backup
		del     string
		skip    bool
		want    string
	}{
		{"oldest backup frees WAL up to the next backup", []Backup{b1, b2, b3}, b1.ID, false,
			seg(1, 1) + " " + seg(1, 2) + " " + seg(1, 2) + ".00000028.backup " + seg(1, 3)},
		{"a middle backup frees nothing while an older one needs WAL", []Backup{b1, b2, b3}, b2.ID, false, ""},
		{"the only backup frees WAL before its own begin", []Backup{b1}, b1.ID, false, seg(1, 1)},
		{"older failed backups do not hold WAL",
			[]Backup{with(bk("20261001T000000", 54, 1), func(b *Backup) { b.Status = "FAILED" }), b1, b2}, b1.ID, false,
			seg(1, 1) + " " + seg(1, 2) + " " + seg(1, 2) + ".00000028.backup " + seg(1, 3)},
		{"older keep:standalone backup keeps its own range (retention)",
			[]Backup{with(bk("20261001T000000", 54, 1), func(b *Backup) { b.Keep = "standalone"; b.EndWAL = seg(1, 2) }), b2, b3}, b2.ID, false,
			seg(1, 3) + " " + seg(1, 4)},
		{"older keep:standalone backup blocks cleanup with -b",
			[]Backup{with(bk("20261001T000000", 54, 1), func(b *Backup) { b.Keep = "standalone" }), b2, b3}, b2.ID, true, ""},
		{"older keep:full backup blocks cleanup",
			[]Backup{with(bk("20261001T000000", 54, 1), func(b *Backup) { b.Keep = "full" }), b2, b3}, b2.ID, false, ""},
		{"after a failover WAL of a timeline with backups is kept",
			[]Backup{b1, b2, with(bk("20261121T000000", 3, 8), func(b *Backup) { b.Timeline = 2; b.BeginWAL = seg(2, 8); b.EndWAL = seg(2, 8) })},
			b1.ID, false, seg(1, 1) + " " + seg(1, 2) + " " + seg(1, 2) + ".00000028.backup " + seg(1, 3)},
		{"deleting up to a backup on the new timeline frees the old timeline only below it",
			[]Backup{b2, with(bk("20261121T000000", 3, 8), func(b *Backup) { b.Timeline = 2; b.BeginWAL = seg(2, 8); b.EndWAL = seg(2, 8) })},
			b2.ID, false,
			seg(1, 1) + " " + seg(1, 2) + " " + seg(1, 2) + ".00000028.backup " + seg(1, 3) + " " + seg(1, 4) + " " + seg(1, 5) + " " + seg(1, 6) + " " + seg(2, 6) + " " + seg(2, 7)},
		{"unknown backup frees nothing", []Backup{b1}, "20200101T000000", false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := names(WALsToDelete(c.backups, c.del, archive, c.skip)); got != c.want {
				t.Fatalf("\n got %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestWindow(t *testing.T) {
	if w := Window(nil); !w.FirstRecoverabilityPoint.IsZero() || !w.LastSuccessfulBackupTime.IsZero() {
		t.Fatal("empty catalog has a window")
	}
	w := Window([]Backup{bk("20261110T000000", 14, 5), with(bk("20261122T000000", 2, 9), func(b *Backup) { b.Status = "FAILED" }),
		bk("20261101T000000", 23, 1), bk("20261120T000000", 4, 9)})
	if !w.FirstRecoverabilityPoint.Equal(now.Add(-23*day)) || !w.LastSuccessfulBackupTime.Equal(now.Add(-4*day)) {
		t.Fatalf("Window = %+v", w)
	}
}
