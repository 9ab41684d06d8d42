//go:build bench

package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bcloud-dev/bcloud/internal/testenv"
)

// backupRun is one tool and codec of the base backup benchmark.
type backupRun struct {
	tool, codec string
	// backup takes a backup into bucket and returns a function that
	// restores it into an empty directory.
	backup func(t *testing.T, bucket string) (usage, func(dir string) usage)
}

// backupResult is what one backupRun measured, per repetition.
type backupResult struct {
	backup, restore         []usage
	backupPSS, restorePSS   int64
	stored, restored, files int64
}

// TestBenchBackup takes a base backup of one PostgreSQL 15 of at least
// 2 GiB with bcloud, barman-cloud-backup and pgbackrest backup to the same
// versitygw, then restores each with the same tool, for every codec each
// has, at the same parallelism (2).
func TestBenchBackup(t *testing.T) {
	bcloud, wrap := binaries(t)
	barman := testenv.Tool(t, "barman-cloud-backup")
	barmanRestore := testenv.Tool(t, "barman-cloud-restore")
	barmanList := testenv.Tool(t, "barman-cloud-backup-list")
	testenv.Tool(t, "pgbackrest")
	cred, uid, gid := pgCredential(t)
	work := testenv.NewDir(t)
	home := filepath.Join(work, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	chownAll(t, home, uid, gid)
	st := newStore(t, work)
	out := report(t)
	fmt.Fprintf(out, "## Base backup and restore\n\nMachine: %s\n\n", machine())

	pg, size := buildDataset(t, out)
	sampler := &treeSampler{}
	r := runner{env: st.env(home), cred: cred, dir: work, wrap: wrap, sample: sampler.sample}
	endpoint := st.srv.Endpoint
	conn := []string{"-h", pg.SocketDir, "-p", strconv.Itoa(pg.Port), "-U", "postgres"}

	bcloudRun := func(flags ...string) func(*testing.T, string) (usage, func(string) usage) {
		return func(t *testing.T, bucket string) (usage, func(string) usage) {
			dest := "s3://" + bucket + "/backups"
			args := append([]string{"backup", "--endpoint-url", endpoint, "--immediate-checkpoint", "-J", "2"}, flags...)
			u := r.must(t, bcloud, append(append(args, conn...), dest, "bench")...)
			return u, func(dir string) usage {
				return r.must(t, bcloud, "restore", "--endpoint-url", endpoint, "-J", "2", dest, "bench", "latest", dir)
			}
		}
	}
	barmanRun := func(flags ...string) func(*testing.T, string) (usage, func(string) usage) {
		return func(t *testing.T, bucket string) (usage, func(string) usage) {
			dest := "s3://" + bucket + "/backups"
			args := append([]string{"--endpoint-url", endpoint, "--immediate-checkpoint", "-J", "2"}, flags...)
			u := r.must(t, barman, append(append(args, conn...), dest, "bench")...)
			id := latestBarmanBackup(t, r, barmanList, endpoint, dest)
			return u, func(dir string) usage {
				return r.must(t, barmanRestore, "--endpoint-url", endpoint, dest, "bench", id, dir)
			}
		}
	}
	pgbrRun := func(compress string) func(*testing.T, string) (usage, func(string) usage) {
		return func(t *testing.T, bucket string) (usage, func(string) usage) {
			p := newPgBackRest(t, r, st, bucket, pg, map[string]string{"compress-type": compress, "process-max": "2"})
			u := r.must(t, p.bin, p.args("backup", "--type=full")...)
			return u, func(dir string) usage {
				return r.must(t, p.bin, p.args("restore", "--pg1-path="+dir)...)
			}
		}
	}
	runs := []backupRun{
		{"bcloud", "none", bcloudRun()},
		{"barman-cloud", "none", barmanRun()},
		{"pgbackrest", "none", pgbrRun("none")},
		{"bcloud", "gzip", bcloudRun("--gzip")},
		{"barman-cloud", "gzip", barmanRun("--gzip")},
		{"pgbackrest", "gzip", pgbrRun("gz")},
		{"bcloud", "lz4", bcloudRun("--lz4")},
		{"pgbackrest", "lz4", pgbrRun("lz4")},
		{"bcloud", "zstd", bcloudRun("--zstd")},
		{"pgbackrest", "zstd", pgbrRun("zst")},
		// bcloud variants that explain its numbers: lz4 at the fast level
		// pgBackRest uses (bcloud's default, medium, is lz4 level 6), and
		// the data split into several archives restored in parallel.
		{"bcloud --compression-level low", "lz4", bcloudRun("--lz4", "--compression-level", "low")},
		{"bcloud -S 512MB", "none", bcloudRun("-S", "512MB")},
	}
	runs = only(runs, func(r backupRun) string { return r.tool + " " + r.codec })

	results := map[string]*backupResult{}
	n := reps(1)
	for rep := 1; rep <= n; rep++ {
		for _, run := range runs {
			key := run.tool + "/" + run.codec
			res := results[key]
			if res == nil {
				res = &backupResult{}
				results[key] = res
			}
			bucket, drop := st.bucket(t, "backup-"+run.tool+"-"+run.codec)
			sampler.reset()
			bu, restore := run.backup(t, bucket)
			res.backupPSS = max(res.backupPSS, sampler.peak())
			res.stored = st.storedBytes(bucket)
			dir := emptyDir(t, work, uid, gid)
			sampler.reset()
			ru := restore(dir)
			res.restorePSS = max(res.restorePSS, sampler.peak())
			res.restored, res.files = treeSize(dir, "")
			_ = os.RemoveAll(dir)
			drop()
			res.backup, res.restore = append(res.backup, bu), append(res.restore, ru)
			t.Logf("rep %d %-12s %-4s backup %.1f s (%.0f MB/s, CPU %.1f s, RSS %s MiB), restore %.1f s (%.0f MB/s, CPU %.1f s, RSS %s MiB), stored %d MiB, restored %d MiB",
				rep, run.tool, run.codec, bu.Wall.Seconds(), mbps(size, bu.Wall), bu.CPU.Seconds(), mib(bu.MaxRSS),
				ru.Wall.Seconds(), mbps(size, ru.Wall), ru.CPU.Seconds(), mib(ru.MaxRSS), res.stored>>20, res.restored>>20)
		}
	}
	printBackup(out, runs, results, size, n)
}

// only keeps the runs whose label contains one of the comma-separated
// substrings of $BENCH_ONLY, or all of them.
func only[T any](runs []T, label func(T) string) []T {
	f := os.Getenv("BENCH_ONLY")
	if f == "" {
		return runs
	}
	var kept []T
	for _, run := range runs {
		for _, sub := range strings.Split(f, ",") {
			if strings.Contains(label(run), sub) {
				kept = append(kept, run)
				break
			}
		}
	}
	return kept
}

// buildDataset starts PostgreSQL 15 and fills it with pgbench data at
// scale $BENCH_SCALE (default 100) plus $BENCH_MD5_ROWS (default 4e6)
// rows of random md5 text, which compress about 2:1, and returns the
// server and the size of what a base backup copies (PGDATA without
// pg_wal).
func buildDataset(t *testing.T, out io.Writer) (*testenv.PG, int64) {
	t.Helper()
	scale := envInt("BENCH_SCALE", 100)
	rows := envInt("BENCH_MD5_ROWS", 4_000_000)
	pg := testenv.Postgres(t, testenv.PGOptions{Fast: true, Conf: map[string]string{
		"wal_level":            "replica",
		"archive_mode":         "on",
		"archive_command":      "true", // WAL archiving is not measured here
		"max_wal_size":         "4GB",
		"checkpoint_timeout":   "30min",
		"shared_buffers":       "256MB",
		"maintenance_work_mem": "256MB",
	}})
	start := time.Now()
	// Server-side generation (G) is the fastest way to load pgbench data.
	pg.Pgbench(t, "-i", "-I", "dtGvp", "-s", strconv.Itoa(scale), "-q")
	pg.Exec(t, "CREATE TABLE bench_md5 (id bigint, payload text)")
	for done := 0; done < rows; done += 500_000 {
		pg.Exec(t, fmt.Sprintf(`INSERT INTO bench_md5 SELECT g, md5(random()::text) || md5(random()::text) ||
			md5(random()::text) || md5(random()::text) FROM generate_series(%d, %d) g`, done+1, min(done+500_000, rows)))
	}
	pg.Exec(t, "VACUUM ANALYZE bench_md5")
	pg.Exec(t, "CHECKPOINT")
	size, files := treeSize(pg.DataDir, "pg_wal")
	fmt.Fprintf(out, "Dataset: pgbench scale %d plus %d rows of random md5 text (table bench_md5); %.2f GiB in %d files to back up "+
		"(PGDATA without pg_wal), built in %s.\n\n", scale, rows, float64(size)/(1<<30), files, time.Since(start).Round(time.Second))
	return pg, size
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// treeSize returns the bytes and number of regular files under dir,
// leaving out the top-level directory skip.
func treeSize(dir, skip string) (bytes, files int64) {
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		if skip != "" && fi.IsDir() && p == filepath.Join(dir, skip) {
			return filepath.SkipDir
		}
		if fi.Mode().IsRegular() {
			bytes += fi.Size()
			files++
		}
		return nil
	})
	return bytes, files
}

// emptyDir returns a new empty directory owned by the postgres user.
func emptyDir(t *testing.T, parent string, uid, gid int) string {
	t.Helper()
	dir, err := os.MkdirTemp(parent, "restore-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	chownAll(t, dir, uid, gid)
	return dir
}

// latestBarmanBackup returns the ID of the newest backup at dest, as
// barman-cloud-backup-list reports it.
func latestBarmanBackup(t *testing.T, r runner, list, endpoint, dest string) string {
	t.Helper()
	u := r
	u.sample = nil
	_, o, err := u.run(t.Context(), list, "--endpoint-url", endpoint, "--format", "json", dest, "bench")
	if err != nil {
		t.Fatalf("%v\n%s", err, tail(o, 20))
	}
	var doc struct {
		Backups []struct {
			ID string `json:"backup_id"`
		} `json:"backups_list"`
	}
	if err := json.Unmarshal([]byte(o[strings.Index(o, "{"):]), &doc); err != nil || len(doc.Backups) == 0 {
		t.Fatalf("barman-cloud-backup-list: %v\n%s", err, tail(o, 20))
	}
	return doc.Backups[len(doc.Backups)-1].ID
}

// treeSampler records the largest total PSS of a process tree: the
// measured tool and every process it started (pgBackRest's and
// barman-cloud's workers), which rusage's per-process peak leaves out.
type treeSampler struct {
	mu  sync.Mutex
	max int64
}

func (s *treeSampler) reset() {
	s.mu.Lock()
	s.max = 0
	s.mu.Unlock()
}

func (s *treeSampler) peak() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.max
}

// sample adds up the PSS (KiB) of every descendant of root.
func (s *treeSampler) sample(root int) {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The fields after the command name (which may hold spaces).
		rest := string(b[strings.LastIndexByte(string(b), ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
	}
	var total int64
	queue := append([]int(nil), children[root]...)
	for len(queue) > 0 {
		pid := queue[0]
		queue = append(queue[1:], children[pid]...)
		total += pss(pid)
	}
	s.mu.Lock()
	s.max = max(s.max, total)
	s.mu.Unlock()
}

// pss returns the proportional set size of pid in KiB, or 0.
func pss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// mbps is the throughput of size bytes in d, in MB/s (10^6 bytes).
func mbps(size int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(size) / 1e6 / d.Seconds()
}

// printBackup prints the backup and restore tables and the ratios.
func printBackup(out io.Writer, runs []backupRun, results map[string]*backupResult, size int64, n int) {
	wall := func(us []usage) float64 {
		xs := make([]float64, len(us))
		for i, u := range us {
			xs[i] = u.Wall.Seconds()
		}
		return median(xs)
	}
	cpu := func(us []usage) float64 {
		xs := make([]float64, len(us))
		for i, u := range us {
			xs[i] = u.CPU.Seconds()
		}
		return median(xs)
	}
	rss := func(us []usage) int64 {
		var m int64
		for _, u := range us {
			m = max(m, u.MaxRSS)
		}
		return m
	}
	split := func(us []usage) string {
		var a, f int64
		for _, u := range us {
			a, f = max(a, u.Anon), max(f, u.File)
		}
		return anonFile(a, f)
	}
	get := func(tool, codec string, restore bool) float64 {
		r := results[tool+"/"+codec]
		if r == nil {
			return 0
		}
		if restore {
			return wall(r.restore)
		}
		return wall(r.backup)
	}
	for _, phase := range []string{"backup", "restore"} {
		restore := phase == "restore"
		var rows [][]string
		for _, run := range runs {
			r := results[run.tool+"/"+run.codec]
			if r == nil {
				continue
			}
			us, pssPeak := r.backup, r.backupPSS
			extra := fmt.Sprintf("%.0f", float64(r.stored)/(1<<20))
			if restore {
				us, pssPeak = r.restore, r.restorePSS
				extra = fmt.Sprintf("%.0f", float64(r.restored)/(1<<20))
			}
			w := wall(us)
			rows = append(rows, []string{run.tool, run.codec, fmt.Sprintf("%.1f", w),
				fmt.Sprintf("%.0f", float64(size)/1e6/w), fmt.Sprintf("%.1f", cpu(us)),
				mib(rss(us)), split(us), mib(pssPeak), extra, ratio(w, get("bcloud", run.codec, restore))})
		}
		last := "stored MiB"
		if restore {
			last = "restored MiB"
		}
		fmt.Fprintf(out, "### %s (median of %d; MB/s = dataset bytes / wall time)\n\n", phase, n)
		table(out, []string{"tool", "codec", "wall s", "MB/s", "CPU s", "peak RSS MiB (largest process)",
			"anon / file MiB (main process)", "peak PSS MiB (all processes, sampled)", last, "time vs bcloud"}, rows)
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "Ratios (wall time):\n\n")
	for _, codec := range []string{"none", "gzip", "lz4", "zstd"} {
		fmt.Fprintf(out, "- %s: backup barman-cloud / bcloud %s (target with gzip >= 4x), pgbackrest / bcloud %s (target >= 1x); "+
			"restore barman-cloud / bcloud %s, pgbackrest / bcloud %s (target >= 1x)\n", codec,
			ratio(get("barman-cloud", codec, false), get("bcloud", codec, false)),
			ratio(get("pgbackrest", codec, false), get("bcloud", codec, false)),
			ratio(get("barman-cloud", codec, true), get("bcloud", codec, true)),
			ratio(get("pgbackrest", codec, true), get("bcloud", codec, true)))
	}
	var peak int64
	for _, run := range runs {
		if r := results[run.tool+"/"+run.codec]; r != nil && run.tool == "bcloud" {
			peak = max(peak, rss(r.backup), rss(r.restore))
		}
	}
	fmt.Fprintf(out, "- bcloud peak RSS, backup and restore, all codecs: %s MiB (target < 128 MiB)\n", mib(peak))
}
