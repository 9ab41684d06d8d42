package integration

import (
	"bytes"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bcloud-dev/bcloud/internal/catalog"
	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/testenv"
)

func p[T any](v T) *T { return &v }

// synthBackup describes a backup of a synthetic catalog.
type synthBackup struct {
	id      string
	status  string
	daysAgo int
	tli     int
	begin   int // segment number of begin_wal
	keep    string
	tsOID   int
}

func seg(tli, n int) string { return fmt.Sprintf("%08X%08X%08X", tli, 0, n) }

// writeCatalog writes the same synthetic catalog and WAL archive under
// server srv of bucket b: backup.info files, archives, keep annotations,
// WAL segments, .backup and .history files.
func writeCatalog(t *testing.T, b storage.Bucket, backups []synthBackup, wals []string) {
	t.Helper()
	ctx := t.Context()
	put := func(key string, data []byte) {
		if err := b.Put(ctx, key, bytes.NewReader(data), int64(len(data)), storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	cat := &catalog.Catalog{Bucket: b, Server: "srv"}
	for _, s := range backups {
		info := catalog.New()
		end := time.Now().Add(-time.Duration(s.daysAgo) * 24 * time.Hour).Truncate(time.Second)
		begin := end.Add(-time.Minute)
		info.Status = p(s.status)
		info.BeginTime, info.EndTime = &begin, &end
		info.BeginWAL, info.EndWAL = p(seg(s.tli, s.begin)), p(seg(s.tli, s.begin+1))
		info.BeginXlog, info.EndXlog = p(fmt.Sprintf("0/%X", s.begin<<24|0x28)), p(fmt.Sprintf("0/%X", (s.begin+1)<<24|0x100))
		info.BeginOffset, info.EndOffset = p(int64(40)), p(int64(256))
		info.Timeline = p(s.tli)
		info.Version = p(150000)
		info.ServerName = p("cloud")
		info.SystemID = p("7323741938495719012")
		info.PGData = p("/var/lib/postgresql/data")
		info.BackupLabel = p("START WAL LOCATION: 0/2000028\n")
		if s.status != "DONE" {
			info.Error = p("failure stopping backup (simulated)")
		}
		put("srv/base/"+s.id+"/data.tar", []byte("tar of "+s.id))
		if s.tsOID != 0 {
			put(fmt.Sprintf("srv/base/%s/%d.tar", s.id, s.tsOID), []byte("tablespace"))
			info.Tablespaces = []catalog.Tablespace{{Name: "tbs", OID: s.tsOID, Location: "/srv/tbs"}}
		}
		if err := cat.Put(ctx, s.id, info); err != nil {
			t.Fatal(err)
		}
		if s.keep != "" {
			if err := cat.SetKeep(ctx, s.id, s.keep); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, w := range wals {
		key := "srv/wals/" + w
		if !strings.HasSuffix(w, ".history") {
			key = "srv/wals/" + strings.ToUpper(w[:16]) + "/" + w
		}
		put(key+".gz", []byte("wal "+w))
	}
}

// TestRetentionMatchesBarmanCloud runs barman-cloud-backup-delete 3.4 and
// bcloud backup-delete on identical catalogs and compares what is left.
func TestRetentionMatchesBarmanCloud(t *testing.T) {
	bin := bcloudBin(t)
	barmanDelete := barmanTool(t, "backup-delete")
	srv := testenv.VersityGW(t)
	env := s3Env(srv)

	var wals []string
	for i := 1; i <= 20; i++ {
		wals = append(wals, seg(1, i))
	}
	wals = append(wals, seg(1, 3)+".00000028.backup", seg(1, 9)+".00000028.backup", "00000002.history")
	for i := 14; i <= 24; i++ {
		wals = append(wals, seg(2, i))
	}
	scenarios := []struct {
		name    string
		backups []synthBackup
		args    []string
	}{
		{"redundancy with a failed backup", []synthBackup{
			{id: "20261001T000000", status: "DONE", daysAgo: 50, tli: 1, begin: 3, tsOID: 16385},
			{id: "20261010T000000", status: "DONE", daysAgo: 40, tli: 1, begin: 6},
			{id: "20261015T000000", status: "FAILED", daysAgo: 35, tli: 1, begin: 8},
			{id: "20261020T000000", status: "DONE", daysAgo: 30, tli: 1, begin: 9},
			{id: "20261101T000000", status: "DONE", daysAgo: 20, tli: 1, begin: 12},
		}, []string{"-r", "REDUNDANCY 2"}},
		{"window with keep annotations", []synthBackup{
			{id: "20260901T000000", status: "DONE", daysAgo: 80, tli: 1, begin: 1, keep: "standalone"},
			{id: "20261001T000000", status: "DONE", daysAgo: 50, tli: 1, begin: 3},
			{id: "20261010T000000", status: "DONE", daysAgo: 40, tli: 1, begin: 6, keep: "full"},
			{id: "20261020T000000", status: "DONE", daysAgo: 30, tli: 1, begin: 9},
			{id: "20261101T000000", status: "DONE", daysAgo: 20, tli: 1, begin: 12},
			{id: "20261120T000000", status: "DONE", daysAgo: 3, tli: 1, begin: 15},
		}, []string{"-r", "RECOVERY WINDOW OF 7 DAYS"}}, // 3.4 has no -m: minimum redundancy is covered by the unit tests
		{"timeline switch after a failover", []synthBackup{
			{id: "20261001T000000", status: "DONE", daysAgo: 50, tli: 1, begin: 3},
			{id: "20261020T000000", status: "DONE", daysAgo: 30, tli: 1, begin: 9},
			{id: "20261110T000000", status: "DONE", daysAgo: 10, tli: 2, begin: 16},
			{id: "20261120T000000", status: "DONE", daysAgo: 3, tli: 2, begin: 20},
		}, []string{"-r", "REDUNDANCY 1"}},
		{"delete one backup by id", []synthBackup{
			{id: "20261001T000000", status: "DONE", daysAgo: 50, tli: 1, begin: 3},
			{id: "20261020T000000", status: "DONE", daysAgo: 30, tli: 1, begin: 9},
			{id: "20261101T000000", status: "DONE", daysAgo: 20, tli: 1, begin: 12},
		}, []string{"-b", "20261001T000000"}},
		{"delete a middle backup by id keeps WAL", []synthBackup{
			{id: "20261001T000000", status: "DONE", daysAgo: 50, tli: 1, begin: 3},
			{id: "20261020T000000", status: "DONE", daysAgo: 30, tli: 1, begin: 9},
			{id: "20261101T000000", status: "DONE", daysAgo: 20, tli: 1, begin: 12},
		}, []string{"-b", "20261020T000000"}},
		{"policy keeps everything", []synthBackup{
			{id: "20261020T000000", status: "DONE", daysAgo: 30, tli: 1, begin: 9},
			{id: "20261101T000000", status: "DONE", daysAgo: 20, tli: 1, begin: 12},
		}, []string{"-r", "REDUNDANCY 5"}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			bucket := srv.NewBucket(t)
			ours, theirs := "s3://"+bucket+"/ours", "s3://"+bucket+"/theirs"
			writeCatalog(t, openS3(t, srv, ours), sc.backups, wals)
			writeCatalog(t, openS3(t, srv, theirs), sc.backups, wals)
			before := listKeys(t, srv, ours, "srv")
			ep := []string{"--endpoint-url", srv.Endpoint}
			run(t, env, barmanDelete, append(append(append([]string{}, ep...), sc.args...), theirs, "srv")...)
			run(t, env, bin, append(append(append([]string{"backup-delete"}, ep...), sc.args...), ours, "srv")...)
			got, want := listKeys(t, srv, ours, "srv"), listKeys(t, srv, theirs, "srv")
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("after backup-delete %v the stores differ\nonly bcloud kept:       %v\nonly barman-cloud kept: %v",
					sc.args, minus(got, want), minus(want, got))
			}
			t.Logf("%s: %d of %d objects removed by both", sc.name, len(before)-len(got), len(before))
		})
	}
}

func minus(a, b []string) []string {
	in := map[string]bool{}
	for _, x := range b {
		in[x] = true
	}
	var out []string
	for _, x := range a {
		if !in[x] {
			out = append(out, x)
		}
	}
	sort.Strings(out)
	return out
}
