//go:build bench

package bench

import (
	"bytes"
	"context"
	cryptomd5 "crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"

	"github.com/bcloud-dev/bcloud/internal/config"
	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/storage/all"
	"github.com/bcloud-dev/bcloud/internal/testenv"
)

// walSegments is how many 16 MiB segments every tool archives.
const walSegments = 32

// walRun is one configuration of the WAL benchmark: a tool and a codec.
type walRun struct {
	tool, codec string
	// prepare readies a fresh bucket (untimed) and returns the command
	// that archives one segment.
	prepare func(t *testing.T, bucket string) func(seg string) (string, []string)
	// parallel marks bcloud --max-parallel: the segments are marked
	// .ready in archive_status and .done after each call, as PostgreSQL
	// does.
	parallel bool
	// inProcess, when set, replaces the per-segment processes: it uploads
	// all segments from this process and returns the time taken.
	inProcess func(t *testing.T, bucket string, segs []string) usage
}

// walResult collects the repetitions of one configuration.
type walResult struct {
	perSeg []float64 // seconds per segment, one per repetition
	cpu    []float64 // CPU seconds for all segments, one per repetition
	maxRSS int64
	anon   int64
	file   int64
	stored int64
}

// TestBenchWAL archives the same 32 real WAL segments with bcloud,
// barman-cloud-wal-archive and pgbackrest archive-push, one process per
// segment as PostgreSQL runs archive_command, to the same versitygw.
func TestBenchWAL(t *testing.T) {
	bcloud, wrap := binaries(t)
	barman := testenv.Tool(t, "barman-cloud-wal-archive")
	testenv.Tool(t, "pgbackrest")
	cred, uid, gid := pgCredential(t)
	work := testenv.NewDir(t)
	home := filepath.Join(work, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	st := newStore(t, work)
	out := report(t)
	fmt.Fprintf(out, "## WAL archiving: %d x 16 MiB segments, one process per segment\n\n", walSegments)
	fmt.Fprintf(out, "Machine: %s\n\n", machine())

	pg, segs := produceWAL(t, work)
	chownAll(t, work, uid, gid)
	r := runner{env: st.env(home), cred: cred, dir: work, wrap: wrap}
	describeSegments(t, out, segs)

	endpoint := st.srv.Endpoint
	bcloudCmd := func(flags ...string) func(*testing.T, string) func(string) (string, []string) {
		return func(_ *testing.T, bucket string) func(string) (string, []string) {
			return func(seg string) (string, []string) {
				args := append([]string{"wal-archive", "--endpoint-url", endpoint}, flags...)
				return bcloud, append(args, "s3://"+bucket+"/wal", "bench", seg)
			}
		}
	}
	barmanCmd := func(flags ...string) func(*testing.T, string) func(string) (string, []string) {
		return func(_ *testing.T, bucket string) func(string) (string, []string) {
			return func(seg string) (string, []string) {
				args := append([]string{"--endpoint-url", endpoint}, flags...)
				return barman, append(args, "s3://"+bucket+"/wal", "bench", seg)
			}
		}
	}
	pgbrCmd := func(compress string) func(*testing.T, string) func(string) (string, []string) {
		return func(t *testing.T, bucket string) func(string) (string, []string) {
			p := newPgBackRest(t, r, st, bucket, pg, map[string]string{"compress-type": compress})
			return func(seg string) (string, []string) {
				return p.bin, p.args("archive-push", seg)
			}
		}
	}
	spoolSeq := 0
	bcloudParallel := func(flags ...string) func(*testing.T, string) func(string) (string, []string) {
		return func(t *testing.T, bucket string) func(string) (string, []string) {
			spoolSeq++
			spool := filepath.Join(work, fmt.Sprintf("spool-%d", spoolSeq))
			if err := os.Mkdir(spool, 0o700); err != nil {
				t.Fatal(err)
			}
			chownAll(t, spool, uid, gid)
			return bcloudCmd(append([]string{"--max-parallel", "4", "--spool-dir", spool}, flags...)...)(t, bucket)
		}
	}
	runs := []walRun{
		{tool: rawTool, codec: "none", inProcess: rawPut(st, false)},
		{tool: "raw PUT + Content-MD5 (in-process)", codec: "none", inProcess: rawPut(st, true)},
		{tool: "bcloud --version (process start only)", codec: "none", prepare: func(*testing.T, string) func(string) (string, []string) {
			return func(string) (string, []string) { return bcloud, []string{"--version"} }
		}},
		{tool: "bcloud S3 driver Put (in-process)", codec: "none", inProcess: driverPut(st)},
		{tool: "bcloud", codec: "none", prepare: bcloudCmd()},
		{tool: "bcloud", codec: "gzip", prepare: bcloudCmd("--gzip")},
		{tool: "bcloud", codec: "gzip-9", prepare: bcloudCmd("--gzip", "--compression-level", "9")},
		{tool: "bcloud --max-parallel 4", codec: "none", prepare: bcloudParallel(), parallel: true},
		{tool: "bcloud --max-parallel 4", codec: "gzip", prepare: bcloudParallel("--gzip"), parallel: true},
		{tool: "barman-cloud", codec: "none", prepare: barmanCmd()},
		{tool: "barman-cloud", codec: "gzip", prepare: barmanCmd("--gzip")},
		{tool: "pgbackrest", codec: "none", prepare: pgbrCmd("none")},
		{tool: "pgbackrest", codec: "gzip", prepare: pgbrCmd("gz")},
	}
	runs = only(runs, func(r walRun) string { return r.tool + " " + r.codec })

	results := map[string]*walResult{}
	n := reps(3)
	for rep := 1; rep <= n; rep++ {
		// Interleaved, so that a change of load on the machine spreads
		// over every configuration instead of hitting one.
		for _, run := range runs {
			key := run.tool + "/" + run.codec
			bucket, drop := st.bucket(t, run.tool+"-"+run.codec)
			var u usage
			if run.inProcess != nil {
				u = run.inProcess(t, bucket, segs)
			} else {
				u = archiveAll(t, r, run, bucket, segs)
			}
			res := results[key]
			if res == nil {
				res = &walResult{}
				results[key] = res
			}
			res.perSeg = append(res.perSeg, u.Wall.Seconds()/float64(len(segs)))
			res.cpu = append(res.cpu, u.CPU.Seconds())
			res.maxRSS = max(res.maxRSS, u.MaxRSS)
			res.anon, res.file = max(res.anon, u.Anon), max(res.file, u.File)
			res.stored = st.storedBytes(bucket)
			t.Logf("rep %d %-50s %-6s %.3f s/segment, CPU %.2f s, peak RSS %s MiB",
				rep, run.tool, run.codec, u.Wall.Seconds()/float64(len(segs)), u.CPU.Seconds(), mib(u.MaxRSS))
			drop()
		}
	}
	printWAL(out, runs, results, n)
	if dir := os.Getenv("BENCH_PROFILE"); dir != "" {
		profileWAL(t, out, r, st, dir, segs)
	}
}

// archiveAll archives every segment with one process each, in order, and
// returns the summed usage.
func archiveAll(t *testing.T, r runner, run walRun, bucket string, segs []string) usage {
	t.Helper()
	command := run.prepare(t, bucket)
	statusDir := filepath.Join(filepath.Dir(segs[0]), "archive_status")
	if run.parallel {
		resetStatus(t, statusDir, segs)
	}
	var total usage
	for _, seg := range segs {
		name, args := command(seg)
		u, out, err := r.run(t.Context(), name, args...)
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", run.tool, run.codec, err, tail(out, 30))
		}
		total.add(u)
		if run.parallel {
			base := filepath.Join(statusDir, filepath.Base(seg))
			if err := os.Rename(base+".ready", base+".done"); err != nil {
				t.Fatal(err)
			}
		}
	}
	return total
}

// resetStatus marks every segment .ready, as PostgreSQL does when the
// archiver is behind.
func resetStatus(t *testing.T, statusDir string, segs []string) {
	t.Helper()
	if err := os.RemoveAll(statusDir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(statusDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, seg := range segs {
		if err := os.WriteFile(filepath.Join(statusDir, filepath.Base(seg)+".ready"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, uid, gid := pgCredential(t)
	chownAll(t, statusDir, uid, gid)
}

// produceWAL runs pgbench on a PostgreSQL 15 that copies every finished
// segment into a directory, until there are enough, and returns the
// server (pgBackRest's stanza needs it) and the segments, copied into a
// pg_wal-like directory with an archive_status subdirectory. The first
// segment (initdb's) is left out.
func produceWAL(t *testing.T, work string) (*testenv.PG, []string) {
	t.Helper()
	_, uid, gid := pgCredential(t)
	archived := filepath.Join(work, "archived")
	walDir := filepath.Join(work, "pg_wal")
	for _, d := range []string{archived, walDir, filepath.Join(walDir, "archive_status")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		chownAll(t, d, uid, gid)
	}
	pg := testenv.Postgres(t, testenv.PGOptions{Fast: true, Conf: map[string]string{
		"wal_level":          "replica",
		"archive_mode":       "on",
		"archive_command":    "cp %p " + archived + "/%f",
		"checkpoint_timeout": "30s",
		"max_wal_size":       "256MB",
	}})
	start := time.Now()
	pg.Pgbench(t, "-i", "-s", "5", "-q")
	for len(segmentNames(t, archived)) < walSegments+2 {
		if time.Since(start) > 15*time.Minute {
			t.Fatalf("pgbench produced only %d segments in %s", len(segmentNames(t, archived)), time.Since(start))
		}
		pg.Pgbench(t, "-c", "4", "-j", "2", "-T", "15")
	}
	names := segmentNames(t, archived)[1 : walSegments+1]
	var segs []string
	for _, n := range names {
		dst := filepath.Join(walDir, n)
		if err := copyFile(filepath.Join(archived, n), dst, 0o600); err != nil {
			t.Fatal(err)
		}
		segs = append(segs, dst)
	}
	t.Logf("produced %d segments in %s", len(segmentNames(t, archived)), time.Since(start).Round(time.Second))
	return pg, segs
}

// segmentNames lists the WAL segment files in dir, sorted.
func segmentNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if len(e.Name()) == 24 && strings.Trim(e.Name(), "0123456789ABCDEF") == "" {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names
}

// describeSegments prints what the segments are made of, to show they are
// not all zero.
func describeSegments(t *testing.T, out io.Writer, segs []string) {
	t.Helper()
	var total, zero int64
	for _, s := range segs {
		data, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		total += int64(len(data))
		zero += int64(len(data) - len(bytes.ReplaceAll(data, []byte{0}, nil)))
	}
	fmt.Fprintf(out, "Segments: %s .. %s from pgbench (scale 5 init, then TPC-B at 4 clients), %d MiB, %.0f%% zero bytes.\n\n",
		filepath.Base(segs[0]), filepath.Base(segs[len(segs)-1]), total>>20, 100*float64(zero)/float64(total))
}

// rawTool names the raw PUT row, the limit the ratios refer to.
const rawTool = "raw PUT (AWS SDK, in-process)"

// rawPut uploads the segments from this process with the AWS SDK and the
// least work a client can do: one connection kept alive, no checksum,
// unsigned payload over TLS (the SDK's default over HTTPS anyway). It is
// the limit no archiver can beat. With md5, Content-MD5 is sent too, as
// bcloud's driver does on a custom endpoint: the difference is its cost.
func rawPut(st *store, md5 bool) func(*testing.T, string, []string) usage {
	return func(t *testing.T, bucket string, segs []string) usage {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(st.srv.CAPEM)
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		client := s3api.New(s3api.Options{
			Region:                     st.srv.Region,
			BaseEndpoint:               aws.String(st.srv.Endpoint),
			UsePathStyle:               true,
			Credentials:                credentials.NewStaticCredentialsProvider(st.srv.AccessKey, st.srv.Secret, ""),
			HTTPClient:                 &http.Client{Transport: tr},
			RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
			ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
			APIOptions:                 []func(*middleware.Stack) error{v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware},
		})
		return inProcess(t, segs, func(ctx context.Context, name string, data []byte) error {
			in := &s3api.PutObjectInput{
				Bucket:        aws.String(bucket),
				Key:           aws.String("raw/" + name),
				Body:          bytes.NewReader(data),
				ContentLength: aws.Int64(int64(len(data))),
			}
			if md5 {
				sum := cryptomd5.Sum(data)
				in.ContentMD5 = aws.String(base64.StdEncoding.EncodeToString(sum[:]))
			}
			_, err := client.PutObject(ctx, in)
			return err
		})
	}
}

// driverPut uploads the segments from this process through bcloud's own
// storage layer, as wal-archive does (conditional put, Content-MD5), but
// without starting a process per segment.
func driverPut(st *store) func(*testing.T, string, []string) usage {
	return func(t *testing.T, bucket string, segs []string) usage {
		vars := map[string]string{}
		for _, kv := range st.env("") {
			k, v, _ := strings.Cut(kv, "=")
			vars[k] = v
		}
		cfg, err := config.FromEnv("s3://"+bucket+"/driver", config.Options{EndpointURL: st.srv.Endpoint},
			func(k string) string { return vars[k] })
		if err != nil {
			t.Fatal(err)
		}
		b, err := all.Open(t.Context(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		return inProcess(t, segs, func(ctx context.Context, name string, data []byte) error {
			return b.Put(ctx, "bench/wals/"+name, bytes.NewReader(data), int64(len(data)), storage.PutOptions{IfNotExist: true})
		})
	}
}

// inProcess reads and uploads every segment with put and measures the
// wall time and this process's CPU time. Peak RSS is not meaningful for
// the test binary and is left out.
func inProcess(t *testing.T, segs []string, put func(context.Context, string, []byte) error) usage {
	t.Helper()
	var before, after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	start := time.Now()
	for _, s := range segs {
		data, err := os.ReadFile(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := put(t.Context(), filepath.Base(s), data); err != nil {
			t.Fatalf("put %s: %v", filepath.Base(s), err)
		}
	}
	wall := time.Since(start)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano() - before.Utime.Nano() + after.Stime.Nano() - before.Stime.Nano())
	return usage{Wall: wall, CPU: cpu, Procs: 0}
}

// printWAL prints the results table and the ratios the issue asks for.
func printWAL(out io.Writer, runs []walRun, results map[string]*walResult, n int) {
	get := func(tool, codec string) float64 {
		if r := results[tool+"/"+codec]; r != nil {
			return median(r.perSeg)
		}
		return 0
	}
	var rows [][]string
	for _, run := range runs {
		r := results[run.tool+"/"+run.codec]
		if r == nil {
			continue
		}
		ref := get("bcloud", run.codec)
		rows = append(rows, []string{run.tool, run.codec,
			fmt.Sprintf("%.3f", median(r.perSeg)),
			fmt.Sprintf("%.3f", minOf(r.perSeg)),
			fmt.Sprintf("%.2f", median(r.cpu)),
			mib(r.maxRSS),
			anonFile(r.anon, r.file),
			fmt.Sprintf("%.0f", float64(r.stored)/(1<<20)),
			ratio(median(r.perSeg), ref),
		})
	}
	fmt.Fprintf(out, "Median of %d runs (fresh bucket each); CPU is user+system of all %d processes; peak RSS the largest of them "+
		"(rusage); anon / file: the largest RssAnon (the program's own memory) and RssFile (its mapped executable and libraries) sampled every 5 ms.\n\n", n, walSegments)
	table(out, []string{"tool", "codec", "s/segment", "best s/segment", "CPU s (32 seg)", "peak RSS MiB", "anon / file MiB", "stored MiB", "time vs bcloud"}, rows)
	raw := get(rawTool, "none")
	fmt.Fprintf(out, "\nRatios (per segment, medians):\n\n")
	fmt.Fprintf(out, "- barman-cloud / bcloud: none %s, gzip %s (target >= 10x)\n",
		ratio(get("barman-cloud", "none"), get("bcloud", "none")), ratio(get("barman-cloud", "gzip"), get("bcloud", "gzip")))
	fmt.Fprintf(out, "- barman-cloud gzip (level 9) / bcloud gzip level 9: %s\n",
		ratio(get("barman-cloud", "gzip"), get("bcloud", "gzip-9")))
	fmt.Fprintf(out, "- pgbackrest / bcloud: none %s, gzip %s\n",
		ratio(get("pgbackrest", "none"), get("bcloud", "none")), ratio(get("pgbackrest", "gzip"), get("bcloud", "gzip")))
	fmt.Fprintf(out, "- bcloud / raw PUT: none %s (target <= 1.5x), gzip %s; bcloud --max-parallel 4 / raw PUT: none %s\n",
		ratio(get("bcloud", "none"), raw), ratio(get("bcloud", "gzip"), raw), ratio(get("bcloud --max-parallel 4", "none"), raw))
	fmt.Fprintf(out, "- where bcloud's time goes, per segment: raw PUT %.3f s; + Content-MD5 %.3f s; bcloud's S3 driver in-process %.3f s; "+
		"bcloud process start alone (--version) %.3f s; bcloud wal-archive %.3f s\n",
		raw, get("raw PUT + Content-MD5 (in-process)", "none"), get("bcloud S3 driver Put (in-process)", "none"),
		get("bcloud --version (process start only)", "none"), get("bcloud", "none"))
	var serial, parallel int64
	for _, run := range runs {
		r := results[run.tool+"/"+run.codec]
		switch {
		case r == nil || !strings.HasPrefix(run.tool, "bcloud") || run.inProcess != nil:
		case run.parallel:
			parallel = max(parallel, r.maxRSS)
		default:
			serial = max(serial, r.maxRSS)
		}
	}
	fmt.Fprintf(out, "- bcloud peak RSS, all codecs: %s MiB one segment per process, %s MiB with --max-parallel 4 (target < 64 MiB)\n",
		mib(serial), mib(parallel))
}

func minOf(xs []float64) float64 {
	m := 0.0
	for i, x := range xs {
		if i == 0 || x < m {
			m = x
		}
	}
	return m
}

// anonFile formats the sampled anonymous and file-backed peaks.
func anonFile(anon, file int64) string {
	if anon <= 0 && file <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f / %.1f", float64(anon)/1024, float64(file)/1024)
}
