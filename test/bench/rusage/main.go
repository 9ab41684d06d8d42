//go:build bench

// Command rusage runs a command and writes its wall time, CPU time and
// peak RSS to a file. The benchmarks start every measured tool through it
// because Linux carries the peak RSS of the address space a process had
// before execve into the rusage of the new program: a tool started
// straight from the large benchmark binary (vfork shares its memory) would
// report the benchmark's own RSS. This program resets its own peak first
// (/proc/self/clear_refs), so the floor it adds is its own few MiB.
//
// It also samples the command's /proc/PID/status every 5 ms and records
// the largest RssAnon and RssFile seen: how much of the peak is the
// program's own memory and how much is its mapped executable and
// libraries (page cache, shared between processes).
//
// Usage: rusage OUTFILE COMMAND [ARG...]. OUTFILE gets one line,
// "wall_ns cpu_ns maxrss_kib anon_kib file_kib"; the exit code is the
// command's.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: rusage OUTFILE COMMAND [ARG...]")
		os.Exit(2)
	}
	// Best effort: without it the floor is this program's peak so far.
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	cmd := exec.Command(os.Args[2], os.Args[3:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "rusage: run %s: %v\n", os.Args[2], err)
		os.Exit(127)
	}
	done := make(chan struct{})
	sampled := make(chan [2]int64)
	go sample(cmd.Process.Pid, done, sampled)
	err := cmd.Wait()
	wall := time.Since(start)
	close(done)
	peaks := <-sampled
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		fmt.Fprintf(os.Stderr, "rusage: run %s: %v\n", os.Args[2], err)
		os.Exit(127)
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		fmt.Fprintln(os.Stderr, "rusage: no rusage for the command")
		os.Exit(127)
	}
	cpu := ru.Utime.Nano() + ru.Stime.Nano()
	line := fmt.Sprintf("%d %d %d %d %d\n", wall.Nanoseconds(), cpu, ru.Maxrss, peaks[0], peaks[1])
	if err := os.WriteFile(os.Args[1], []byte(line), 0o600); err != nil {
		fmt.Fprintf(os.Stderr, "rusage: write %s: %v\n", os.Args[1], err)
		os.Exit(127)
	}
	os.Exit(code)
}

// sample records the largest RssAnon and RssFile of pid until done is
// closed, then sends them (KiB).
func sample(pid int, done <-chan struct{}, out chan<- [2]int64) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	var peak [2]int64
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				k, v, ok := strings.Cut(line, ":")
				if !ok {
					continue
				}
				n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				switch k {
				case "RssAnon":
					peak[0] = max(peak[0], n)
				case "RssFile":
					peak[1] = max(peak[1], n)
				}
			}
		}
		select {
		case <-done:
			out <- peak
			return
		case <-tick.C:
		}
	}
}
