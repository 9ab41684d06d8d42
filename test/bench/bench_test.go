//go:build bench

// Package bench measures bcloud side by side with barman-cloud 3.4 and
// pgBackRest 2.45 on one local versitygw. These are measurements, not
// tests: nothing here fails on a slow number. The build tag keeps the
// package out of `go test ./...`; scripts/bench-wal.sh and
// scripts/bench-backup.sh run it (make bench-wal, make bench-backup).
package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	s3api "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/bcloud-dev/bcloud/internal/testenv"
)

// usage is what one or more child processes used, from their rusage.
type usage struct {
	Wall   time.Duration
	CPU    time.Duration // user + system
	MaxRSS int64         // KiB, the largest of the processes
	// Anon and File are the largest RssAnon and RssFile sampled (KiB):
	// the program's own memory, and its mapped executable and libraries.
	Anon, File int64
	Procs      int
}

// add accumulates o: times add up, peak RSS is the maximum.
func (u *usage) add(o usage) {
	u.Wall += o.Wall
	u.CPU += o.CPU
	u.MaxRSS = max(u.MaxRSS, o.MaxRSS)
	u.Anon = max(u.Anon, o.Anon)
	u.File = max(u.File, o.File)
	u.Procs += o.Procs
}

// runner starts the measured tools with one environment, as the postgres
// user when the benchmark runs as root (as PostgreSQL would run them),
// each through the rusage wrapper (see rusage/main.go for why).
type runner struct {
	env  []string
	cred *syscall.Credential
	// dir is the working directory: a private directory the postgres
	// user owns, where the wrapper writes its measurements.
	dir  string
	wrap string
	// sample, when set, is called every 100 ms with the wrapper's pid
	// while the command runs (see treePSS).
	sample func(pid int)
}

var runSeq atomic.Int64

// run runs one command to completion and returns what it used. The output
// is returned for error messages only.
func (r runner) run(ctx context.Context, name string, args ...string) (usage, string, error) {
	measure := filepath.Join(r.dir, fmt.Sprintf("rusage-%d.out", runSeq.Add(1)))
	defer os.Remove(measure)
	cmd := exec.CommandContext(ctx, r.wrap, append([]string{measure, name}, args...)...)
	cmd.Env = r.env
	cmd.Dir = r.dir
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if r.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: r.cred}
	}
	start := time.Now()
	err := cmd.Start()
	if err == nil && r.sample != nil {
		done := make(chan struct{})
		go func(pid int) {
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
					r.sample(pid)
				}
			}
		}(cmd.Process.Pid)
		err = cmd.Wait()
		close(done)
	} else if err == nil {
		err = cmd.Wait()
	}
	u := usage{Wall: time.Since(start), Procs: 1}
	if b, rerr := os.ReadFile(measure); rerr == nil {
		var wall, cpu, rss, anon, file int64
		if _, serr := fmt.Sscan(string(b), &wall, &cpu, &rss, &anon, &file); serr == nil {
			u.Wall, u.CPU, u.MaxRSS = time.Duration(wall), time.Duration(cpu), rss
			u.Anon, u.File = anon, file
		}
	}
	if err != nil {
		return u, out.String(), fmt.Errorf("run %s %s: %w", filepath.Base(name), strings.Join(args, " "), err)
	}
	return u, out.String(), nil
}

// must runs a command and fails the benchmark on error.
func (r runner) must(t testing.TB, name string, args ...string) usage {
	t.Helper()
	u, out, err := r.run(t.Context(), name, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, tail(out, 40))
	}
	return u
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// pgCredential returns the credential of the postgres user when running as
// root, nil otherwise, and the uid/gid files must be owned by.
func pgCredential(t testing.TB) (cred *syscall.Credential, uid, gid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil, os.Geteuid(), os.Getegid()
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		testenv.Missing(t, "user postgres")
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, uid, gid
}

// chownAll gives path and everything below it to uid:gid.
func chownAll(t testing.TB, path string, uid, gid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	err := filepath.Walk(path, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatalf("chown %s: %v", path, err)
	}
}

// binaries returns a bcloud binary and the rusage wrapper, both in a
// directory the postgres user can read. bcloud is $BCLOUD_BIN (make
// build's bin/bcloud) copied there, or a fresh build with the Makefile's
// flags.
func binaries(t testing.TB) (bcloud, wrap string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "bcloud-bench-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bcloud = filepath.Join(dir, "bcloud")
	wrap = filepath.Join(dir, "rusage")
	build := func(dst, pkg string, flags ...string) {
		args := append(append([]string{"build"}, flags...), "-o", dst, pkg)
		cmd := exec.Command("go", args...)
		cmd.Dir = testenv.RepoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", pkg, err, out)
		}
	}
	build(wrap, "./test/bench/rusage", "-tags", "bench", "-trimpath", "-ldflags", "-s -w")
	if src := os.Getenv("BCLOUD_BIN"); src != "" {
		if err := copyFile(src, bcloud, 0o755); err != nil {
			t.Fatalf("copy %s: %v", src, err)
		}
		return bcloud, wrap
	}
	build(bcloud, "./cmd/bcloud", "-trimpath", "-ldflags", "-s -w")
	return bcloud, wrap
}

// copyFile copies src to dst with mode perm.
func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("open %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

// store is the versitygw (TLS: pgBackRest speaks only TLS to S3) all
// tools write to, and the environment they read its credentials from.
type store struct {
	srv    testenv.S3Server
	caFile string
	host   string
	port   string
	seq    int
}

// newStore starts (or reuses) the TLS versitygw and writes its CA where
// the postgres user can read it.
func newStore(t testing.TB, dir string) *store {
	t.Helper()
	srv := testenv.VersityGWTLS(t)
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, srv.CAPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	hostport := strings.TrimPrefix(srv.Endpoint, "https://")
	host, port, _ := strings.Cut(hostport, ":")
	return &store{srv: srv, caFile: ca, host: host, port: port}
}

// env is the environment of every measured tool. Both bcloud and
// barman-cloud (boto3) read AWS_*; checksums are set to when_required as
// in the integration tests, so that neither sends the newer checksum
// headers (bcloud's default for a custom endpoint anyway).
func (s *store) env(home string) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"LANG=C.UTF-8",
		"AWS_ACCESS_KEY_ID=" + s.srv.AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s.srv.Secret,
		"AWS_DEFAULT_REGION=" + s.srv.Region,
		"AWS_CA_BUNDLE=" + s.caFile,
		"AWS_REQUEST_CHECKSUM_CALCULATION=when_required",
		"AWS_RESPONSE_CHECKSUM_VALIDATION=when_required",
		// pgBackRest takes its S3 keys from the environment, so that
		// they are in no file or command line.
		"PGBACKREST_REPO1_S3_KEY=" + s.srv.AccessKey,
		"PGBACKREST_REPO1_S3_KEY_SECRET=" + s.srv.Secret,
	}
}

// bucket creates a fresh bucket and returns its name and a function that
// deletes its content from the versitygw posix root (much faster than
// deleting object by object, and the disk is reused between runs).
func (s *store) bucket(t testing.TB, label string) (string, func()) {
	t.Helper()
	s.seq++
	label = sanitize(label)
	if len(label) > 30 {
		label = strings.Trim(label[:30], "-")
	}
	name := fmt.Sprintf("bench-%s-%d-%d", label, os.Getpid()%100000, s.seq)
	if _, err := s.srv.Client().CreateBucket(t.Context(), &s3api.CreateBucketInput{Bucket: &name}); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
	drop := func() {
		_, _ = s.srv.Client().DeleteBucket(context.Background(), &s3api.DeleteBucketInput{Bucket: &name})
		_ = os.RemoveAll(filepath.Join(s.srv.Root, name))
	}
	t.Cleanup(drop)
	return name, drop
}

// storedBytes returns the bytes stored in bucket under prefix, read from
// the posix root of versitygw.
func (s *store) storedBytes(bucket string) int64 {
	var n int64
	_ = filepath.Walk(filepath.Join(s.srv.Root, bucket), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// sanitize keeps what a bucket name may hold.
func sanitize(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String(), "-")
}

// reps returns how many times each configuration runs ($BENCH_REPS).
func reps(def int) int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_REPS")); err == nil && n > 0 {
		return n
	}
	return def
}

// median returns the median of xs (the mean of the middle two for an even
// count).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// machine describes where the numbers were measured.
func machine() string {
	load, _ := os.ReadFile("/proc/loadavg")
	fields := strings.Fields(string(load))
	if len(fields) > 3 {
		fields = fields[:3]
	}
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	cpus := 0
	if b, err := os.ReadFile("/sys/fs/cgroup/cpu.max"); err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 && f[0] != "max" {
			q, _ := strconv.Atoi(f[0])
			p, _ := strconv.Atoi(f[1])
			if p > 0 {
				cpus = q / p
			}
		}
	}
	if cpus == 0 {
		cpus = runtime.NumCPU()
	}
	return fmt.Sprintf("%d CPUs (%s), load average at start %s", cpus, model, strings.Join(fields, " "))
}

// table prints a markdown table with aligned columns to w.
func table(w io.Writer, header []string, rows [][]string) {
	width := make([]int, len(header))
	for i, h := range header {
		width[i] = len(h)
	}
	for _, r := range rows {
		for i, c := range r {
			width[i] = max(width[i], len(c))
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		b.WriteString("|")
		for i, c := range cells {
			fmt.Fprintf(&b, " %-*s |", width[i], c)
		}
		fmt.Fprintln(w, b.String())
	}
	line(header)
	sep := make([]string, len(header))
	for i := range sep {
		sep[i] = strings.Repeat("-", width[i])
	}
	line(sep)
	for _, r := range rows {
		line(r)
	}
}

// report is where results go: stdout, and $BENCH_OUT when set.
func report(t testing.TB) io.Writer {
	t.Helper()
	path := os.Getenv("BENCH_OUT")
	if path == "" {
		return os.Stdout
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("create %s: %v", path, err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return io.MultiWriter(os.Stdout, f)
}

// ratio formats a/b, or "-" when either is missing.
func ratio(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

// mib formats KiB as MiB, or "-".
func mib(kib int64) string {
	if kib <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", float64(kib)/1024)
}
