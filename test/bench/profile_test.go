//go:build bench

package bench

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/bcloud-dev/bcloud/internal/testenv"
)

// profileWAL archives the segments again with bcloudprof (bcloud with
// profiling), uncompressed and gzip, keeps one CPU and one allocation
// profile per process in dir, and prints the merged CPU profile, the
// allocations and the Go runtime's memory figures: where the time and the
// memory of one wal-archive process go.
func profileWAL(t *testing.T, out io.Writer, r runner, st *store, dir string, segs []string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o777)
	prof := filepath.Join(filepath.Dir(r.wrap), "bcloudprof")
	build := exec.Command("go", "build", "-tags", "bench", "-trimpath", "-o", prof, "./test/bench/bcloudprof")
	build.Dir = testenv.RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build bcloudprof: %v\n%s", err, b)
	}
	fmt.Fprintf(out, "\n## Profile of bcloud wal-archive (bcloudprof, %d processes per codec)\n", len(segs))
	for _, codec := range []string{"none", "gzip"} {
		bucket, drop := st.bucket(t, "profile-"+codec)
		var cpus, allocs []string
		var stats []string
		var total usage
		for i, seg := range segs {
			cpu := filepath.Join(dir, fmt.Sprintf("cpu-%s-%02d.pprof", codec, i))
			mem := filepath.Join(dir, fmt.Sprintf("allocs-%s-%02d.pprof", codec, i))
			ms := filepath.Join(dir, fmt.Sprintf("memstats-%s-%02d.txt", codec, i))
			pr := r
			pr.env = append(append([]string(nil), r.env...),
				"BCLOUD_CPUPROFILE="+cpu, "BCLOUD_MEMPROFILE="+mem, "BCLOUD_MEMSTATS="+ms)
			args := []string{"wal-archive", "--endpoint-url", st.srv.Endpoint}
			if codec == "gzip" {
				args = append(args, "--gzip")
			}
			args = append(args, "s3://"+bucket+"/wal", "bench", seg)
			u, o, err := pr.run(t.Context(), prof, args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, tail(o, 20))
			}
			total.add(u)
			cpus, allocs = append(cpus, cpu), append(allocs, mem)
			if b, err := os.ReadFile(ms); err == nil {
				stats = append(stats, strings.TrimSpace(string(b)))
			}
		}
		drop()
		fmt.Fprintf(out, "\n### %s: %.3f s/segment, CPU %.2f s, peak RSS %s MiB (anon / file %s MiB)\n\n",
			codec, total.Wall.Seconds()/float64(len(segs)), total.CPU.Seconds(), mib(total.MaxRSS), anonFile(total.Anon, total.File))
		fmt.Fprintf(out, "Go runtime at exit (KiB, largest of the processes): %s\n\n", maxStats(stats))
		fmt.Fprintf(out, "CPU, merged (go tool pprof -top):\n\n```\n%s```\n\n", pprofTop(cpus, "-top", "-nodecount=30"))
		fmt.Fprintf(out, "Allocated bytes, merged (go tool pprof -sample_index=alloc_space -top):\n\n```\n%s```\n",
			pprofTop(allocs, "-sample_index=alloc_space", "-top", "-nodecount=15"))
	}
}

// pprofTop runs go tool pprof with flags on the profiles and returns its
// report.
func pprofTop(profiles []string, flags ...string) string {
	cmd := exec.Command("go", append(append([]string{"tool", "pprof"}, flags...), profiles...)...)
	b, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Sprintf("go tool pprof: %v\n%s", err, b)
	}
	return string(b)
}

// maxStats returns the field-wise maximum of the bcloudprof memstats lines.
func maxStats(lines []string) string {
	var keys []string
	maxv := map[string]int64{}
	for _, l := range lines {
		for _, f := range strings.Fields(l) {
			k, v, _ := strings.Cut(f, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			if _, ok := maxv[k]; !ok {
				keys = append(keys, k)
			}
			maxv[k] = max(maxv[k], n)
		}
	}
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d ", k, maxv[k])
	}
	return strings.TrimSpace(b.String())
}
