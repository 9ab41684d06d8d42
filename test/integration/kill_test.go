package integration

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bcloud-dev/bcloud/internal/catalog"
	"github.com/bcloud-dev/bcloud/internal/testenv"
)

// TestBackupKilledAtRandomPoints: bcloud backup to S3 is killed with
// SIGKILL at 10 seeded random points, and the store goes down in the
// middle of one more backup. No interrupted backup is ever listed as DONE,
// PostgreSQL leaves backup mode each time, and the next backup succeeds
// and aborts the multipart uploads the killed ones left.
func TestBackupKilledAtRandomPoints(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a dozen backups; run without -short")
	}
	bin := bcloudBin(t)
	srv := testenv.VersityGW(t)
	bucket := srv.NewBucket(t)
	proxy := testenv.NewFaultProxy(t, strings.TrimPrefix(srv.Endpoint, "http://"))
	dest := "s3://" + bucket + "/kill"
	env := append(s3Env(srv), "AWS_ENDPOINT_URL="+srv.Endpoint)
	pg, _ := bkSource(t, bin, dest, env)
	pg.Exec(t, "CREATE TABLE filler AS SELECT g AS id, repeat(md5(g::text), 24) AS pad FROM generate_series(1, 60000) g")
	env = append(env, bkPGEnv(pg)...)

	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("BCLOUD_KILL_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("BCLOUD_KILL_SEED=%q: %v", s, err)
		}
		seed = v
	}
	rng := rand.New(rand.NewPCG(seed, 0x6263))
	t.Logf("kill points seeded with %d (set BCLOUD_KILL_SEED to fix)", seed)
	b := openS3(t, srv, dest)
	cat := &catalog.Catalog{Bucket: b, Server: "pg"}
	killed := map[string]bool{}
	for i := range 10 {
		delay := time.Duration(100+rng.IntN(2400)) * time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := bkAsPostgres(ctx, env, bin, "backup", "--immediate-checkpoint", "-J", "2", "-S", "8MB", dest, "pg")
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		started := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		cancel()
		finished := strings.Contains(out.String(), "backup completed")
		t.Logf("kill %d at %s: finished first=%v", i+1, delay, finished)
		waitFor(t, "PostgreSQL to end the killed backup's session", time.Minute, func() bool {
			return pg.QueryString(t, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'bcloud_backup'") == "0"
		})
		if !finished {
			killed[catalog.NewBackupID(started.In(time.Local))] = true
		}
		time.Sleep(1100 * time.Millisecond) // a new backup ID
	}
	// The store goes down in the middle of a backup.
	proxyEnv := append(append([]string{}, env...), "AWS_ENDPOINT_URL=http://"+proxy.Addr)
	go func() { time.Sleep(800 * time.Millisecond); proxy.SetDown(true) }()
	code, out := bkExit(t, proxyEnv, bin, "backup", "--immediate-checkpoint", "-J", "2", "-S", "8MB", dest, "pg")
	proxy.Heal()
	if code == 0 {
		t.Fatalf("backup through a store that went down succeeded:\n%s", out)
	}
	time.Sleep(1100 * time.Millisecond)

	// Whatever a kill left: every backup listed as DONE is complete.
	entries, err := cat.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	done := 0
	for _, e := range entries {
		if e.Info == nil || e.Info.StatusValue() != catalog.StatusDone {
			continue
		}
		done++
		if code, out := exitCode(t, env, bin, "verify", dest, "pg", e.ID); code != 0 {
			t.Fatalf("backup %s is listed as DONE but is not complete (killed=%v):\n%s", e.ID, killed[e.ID], out)
		}
	}
	// The next backup succeeds and leaves no unfinished upload behind.
	bkRun(t, env, bin, "backup", "--immediate-checkpoint", "-J", "2", "-S", "8MB", dest, "pg")
	client := srv.Client()
	left, err := client.ListMultipartUploads(t.Context(), &s3api.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(left.Uploads) != 0 {
		t.Fatalf("%d unfinished multipart uploads remain after the next backup, e.g. %s", len(left.Uploads), aws.ToString(left.Uploads[0].Key))
	}
	if code, out := exitCode(t, env, bin, "verify", dest, "pg"); code != 0 {
		t.Fatalf("verify after the kills: exit %d\n%s", code, out)
	}
	t.Logf("%d of 10 backups killed before finishing; %d DONE backups before the last, all complete; the next backup succeeded", len(killed), done)
}
