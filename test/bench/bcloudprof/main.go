//go:build bench

// Command bcloudprof is bcloud with profiling, for the benchmarks' "where
// does the time go" runs: it runs the same cli.Main as cmd/bcloud, with a
// CPU profile written to $BCLOUD_CPUPROFILE and, at exit, a heap profile
// to $BCLOUD_MEMPROFILE and a summary of the Go runtime's memory use to
// $BCLOUD_MEMSTATS (each only when set). Not built by `go build ./...`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"

	"github.com/bcloud-dev/bcloud/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var cpuFile *os.File
	if p := os.Getenv("BCLOUD_CPUPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				cpuFile = f
			} else {
				_ = f.Close()
			}
		}
	}
	code := cli.Main(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	if cpuFile != nil {
		pprof.StopCPUProfile()
		_ = cpuFile.Close()
	}
	if p := os.Getenv("BCLOUD_MEMPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
			_ = f.Close()
		}
	}
	if p := os.Getenv("BCLOUD_MEMSTATS"); p != "" {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		line := fmt.Sprintf("sys=%d heapSys=%d heapInuse=%d totalAlloc=%d numGC=%d stackSys=%d\n",
			m.Sys>>10, m.HeapSys>>10, m.HeapInuse>>10, m.TotalAlloc>>10, m.NumGC, m.StackSys>>10)
		_ = os.WriteFile(p, []byte(line), 0o600)
	}
	os.Exit(code)
}
