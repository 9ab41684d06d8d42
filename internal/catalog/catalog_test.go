package catalog

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/storage/mem"
)

func put(t *testing.T, b storage.Bucket, key, body string) {
	t.Helper()
	if err := b.Put(context.Background(), key, strings.NewReader(body), int64(len(body)), storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

func info(status, name string, end time.Time, endXlog string, tli int) *BackupInfo {
	b := New()
	b.Status = ptr(status)
	if name != "" {
		b.BackupName = ptr(name)
	}
	b.EndTime = &end
	b.EndXlog = ptr(endXlog)
	b.Timeline = ptr(tli)
	b.ServerName = ptr("cloud")
	return b
}

// newTestCatalog builds a catalog with DONE, FAILED, unreadable and
// incomplete backups, plus another server and stray objects.
func newTestCatalog(t *testing.T) *Catalog {
	t.Helper()
	ctx := context.Background()
	c := &Catalog{Bucket: storage.WithPrefix(mem.New(), "pre/fix"), Server: "pg"}
	d := func(s string) time.Time { tm, _ := ParseTime(s); return tm }
	for id, bi := range map[string]*BackupInfo{
		"20240101T000000": info(StatusDone, "first", d("2024-01-01 00:10:00+00:00"), "0/3000000", 1),
		"20240102T000000": info(StatusDone, "dup", d("2024-01-02 00:10:00+00:00"), "0/5000000", 1),
		"20240103T000000": info(StatusFailed, "", d("2024-01-03 00:10:00+00:00"), "0/7000000", 2),
		"20240104T000000": info(StatusDone, "dup", d("2024-01-04 00:10:00+01:00"), "1/0", 2),
		"20240105T000000": info(StatusFailed, "late", d("2024-01-05 00:10:00+00:00"), "2/0", 2),
	} {
		if err := c.Put(ctx, id, bi); err != nil {
			t.Fatal(err)
		}
	}
	put(t, c.Bucket, "pg/base/20240101T000000/data.tar.gz", "x")
	put(t, c.Bucket, "pg/base/20240106T000000/data.tar", "in progress, no backup.info")
	put(t, c.Bucket, "pg/base/20240107T000000/backup.info", "garbage line\n")
	put(t, c.Bucket, "pg/base/notanid/backup.info", "status=DONE\n")
	put(t, c.Bucket, "pg/base/backup.info", "status=DONE\n")
	put(t, c.Bucket, "pg2/base/20240108T000000/backup.info", "status=DONE\n")
	put(t, c.Bucket, "pg/wals/0000000100000000/000000010000000000000001", "wal")
	return c
}

func TestList(t *testing.T) {
	c := newTestCatalog(t)
	entries, err := c.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.ID)
	}
	want := "20240101T000000 20240102T000000 20240103T000000 20240104T000000 20240105T000000 20240107T000000 notanid"
	if strings.Join(ids, " ") != want {
		t.Errorf("ids = %v", ids)
	}
	bad := entries[5]
	if bad.Info != nil || bad.Err == nil || !strings.Contains(bad.Err.Error(), "line 1") {
		t.Errorf("unreadable entry = %+v", bad)
	}
	if got := entries[3].Info; got.StatusValue() != StatusDone || *got.BackupName != "dup" {
		t.Errorf("entry 3 = %+v", got)
	}
}

func TestGetPut(t *testing.T) {
	c := newTestCatalog(t)
	ctx := context.Background()
	if _, err := c.Get(ctx, "20240106T000000"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(no backup.info) = %v", err)
	}
	bi := New()
	bi.Error = ptr("a\nb")
	if err := c.Put(ctx, "20240109T000000", bi); err == nil {
		t.Error("Put accepted an invalid backup.info")
	}
	got, err := c.Get(ctx, "20240104T000000")
	if err != nil || FormatTime(*got.EndTime) != "2024-01-04 00:10:00+01:00" {
		t.Errorf("Get = %v, %v", got, err)
	}
	data, err := storage.ReadAll(ctx, c.Bucket, "pg/base/20240104T000000/backup.info")
	if err != nil || string(data) != string(got.Marshal()) {
		t.Errorf("stored backup.info = %q, %v", data, err)
	}
}

func TestResolve(t *testing.T) {
	c := newTestCatalog(t)
	ctx := context.Background()
	for in, want := range map[string]string{
		// IDs sort as strings, and barman does not check that a directory
		// name is a backup ID, so "notanid" is the latest backup.
		"latest": "notanid", "last": "notanid", "oldest": "20240101T000000", "first": "20240101T000000",
		"last-failed": "20240105T000000", "20240102T000000": "20240102T000000", "late": "20240105T000000",
	} {
		e, err := c.Resolve(ctx, in)
		if err != nil || e.ID != want || e.Info == nil {
			t.Errorf("Resolve(%q) = %s, %v; want %s", in, e.ID, err, want)
		}
	}
	for in, want := range map[string]error{"dup": ErrAmbiguous, "nope": ErrNotFound, "20240106T000000": ErrNotFound} {
		if _, err := c.Resolve(ctx, in); !errors.Is(err, want) {
			t.Errorf("Resolve(%q) = %v, want %v", in, err, want)
		}
	}
	if _, err := c.Resolve(ctx, "dup"); err == nil || !strings.Contains(err.Error(), "20240102T000000 20240104T000000") {
		t.Errorf("ambiguous error = %v", err)
	}
	if e, err := c.Resolve(ctx, "20240107T000000"); err == nil || e.ID != "20240107T000000" {
		t.Errorf("Resolve(unreadable) = %v, %v", e, err)
	}
	empty := &Catalog{Bucket: mem.New(), Server: "pg"}
	for _, in := range []string{"latest", "oldest", "last-failed"} {
		if _, err := empty.Resolve(ctx, in); !errors.Is(err, ErrNotFound) {
			t.Errorf("empty Resolve(%q) = %v", in, err)
		}
	}
}

func TestKeep(t *testing.T) {
	c := newTestCatalog(t)
	ctx := context.Background()
	if err := c.SetKeep(ctx, "20240102T000000", KeepStandalone); err != nil {
		t.Fatal(err)
	}
	if err := c.SetKeep(ctx, "20240101T000000", KeepFull); err != nil {
		t.Fatal(err)
	}
	if err := c.SetKeep(ctx, "20240103T000000", KeepFull); err == nil || !strings.Contains(err.Error(), "status FAILED") {
		t.Errorf("SetKeep(FAILED) = %v", err)
	}
	if err := c.SetKeep(ctx, "20240101T000000", "forever"); err == nil {
		t.Error("SetKeep accepted an unknown target")
	}
	if err := c.SetKeep(ctx, "20240106T000000", KeepFull); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetKeep(missing) = %v", err)
	}
	data, err := storage.ReadAll(ctx, c.Bucket, "pg/base/20240102T000000/annotations/keep")
	if err != nil || string(data) != "standalone" {
		t.Errorf("annotation = %q, %v", data, err)
	}
	for id, want := range map[string]string{"20240102T000000": "standalone", "20240101T000000": "full", "20240104T000000": ""} {
		if got, err := c.Keep(ctx, id); err != nil || got != want {
			t.Errorf("Keep(%s) = %q, %v; want %q", id, got, err, want)
		}
	}
	put(t, c.Bucket, "pg/base/20240104T000000/annotations/keep", "")
	all, err := c.KeepAll(ctx)
	if err != nil || len(all) != 3 || all["20240102T000000"] != "standalone" || all["20240104T000000"] != "full" {
		t.Errorf("KeepAll = %v, %v", all, err)
	}
	if err := c.ReleaseKeep(ctx, "20240102T000000"); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Keep(ctx, "20240102T000000"); err != nil || got != "" {
		t.Errorf("Keep after release = %q, %v", got, err)
	}
	if err := c.ReleaseKeep(ctx, "20240102T000000"); err != nil {
		t.Errorf("second release: %v", err)
	}
}

func TestCheckBackupName(t *testing.T) {
	for _, ok := range []string{"nightly", "a b", "2024-01-15", "20240115T10300", "latest2", "Latest"} {
		if err := CheckBackupName(ok); err != nil {
			t.Errorf("CheckBackupName(%q) = %v", ok, err)
		}
	}
	for name, want := range map[string]string{"": "empty", "20240115T103000": "backup ID", "20240115T103000\n": "backup ID",
		"٢٠٢٤٠١١٥T103000": "backup ID", "latest": "reserved", "last": "reserved", "oldest": "reserved", "first": "reserved",
		"last-failed": "reserved", "latest-full": "reserved", "last-full": "reserved", "auto": "reserved"} {
		if err := CheckBackupName(name); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckBackupName(%q) = %v, want %q", name, err, want)
		}
	}
}

func TestNewBackupID(t *testing.T) {
	tm := time.Date(2024, 1, 5, 7, 8, 9, 999, time.FixedZone("", -5*3600))
	if got := NewBackupID(tm); got != "20240105T070809" {
		t.Errorf("NewBackupID = %s", got)
	}
}

func TestListCancelled(t *testing.T) {
	c := newTestCatalog(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.List(ctx); err == nil {
		t.Error("List with a cancelled context succeeded")
	}
}

func TestRenderWithoutInfo(t *testing.T) {
	var buf strings.Builder
	e := Entry{ID: "20240107T000000", Err: errors.New("parse backup.info line 1: boom")}
	if err := RenderShowJSON(&buf, e); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("RenderShowJSON = %v", err)
	}
	if err := RenderShowConsole(&buf, Entry{ID: "x"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("RenderShowConsole = %v", err)
	}
}
