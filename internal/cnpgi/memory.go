package cnpgi

import (
	"bufio"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// DefaultMemoryLimit is the sidecars' soft memory limit (the Go runtime's
// GOMEMLIMIT) unless GOMEMLIMIT is set, e.g. through the ObjectStore's
// instanceSidecarConfiguration.env. The garbage collector works harder
// near it instead of letting the heap grow to twice the live data, which
// for a process handling 16 MiB WAL segments means hundreds of MiB.
const DefaultMemoryLimit = 48 << 20

// LimitMemory applies the sidecar's soft memory limit: limit bytes (0 =
// DefaultMemoryLimit, or 75% of a smaller cgroup limit), unless GOMEMLIMIT
// is set. A negative limit leaves the runtime alone.
func LimitMemory(limit int64) {
	if limit < 0 || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	if limit == 0 {
		limit = DefaultMemoryLimit
		if cg := cgroupMemoryMax(); cg > 0 && cg*3/4 < limit {
			limit = cg * 3 / 4
		}
	}
	debug.SetMemoryLimit(limit)
	slog.Debug("soft memory limit set", "bytes", limit)
}

// cgroupMemoryMax reads the container's memory limit (cgroup v2), 0 when
// there is none.
func cgroupMemoryMax() int64 {
	data, err := os.ReadFile("/sys/fs/cgroup/memory.max")
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// ReleaseStartupPages drops the pages of the executable that only
// start-up touched (MADV_PAGEOUT on its read-only mappings). Every package of the single bcloud binary, the
// operator side's included, runs its initialisation in every process;
// that maps most of the binary (tens of MiB) although a sidecar then uses
// a small part. The pages are clean and file-backed: whatever is needed
// later comes back from the page cache.
func ReleaseStartupPages() {
	exe, err := os.Executable()
	if err != nil {
		return
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer f.Close()
	var released uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// address perms offset dev inode path; only read-only or
		// executable mappings of the binary itself, never data.
		if len(fields) < 6 || fields[5] != exe || strings.Contains(fields[1], "w") {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		if pageOut(uintptr(start), uintptr(end-start)) == nil {
			released += end - start
		}
	}
	slog.Debug("released start-up pages of the executable", "bytes", released)
}

// SettleTime is how long after start-up the sidecar releases, a second
// time, the pages only its first calls needed.
const SettleTime = 5 * time.Second

// ReadyProcess applies LimitMemory(limit) and returns a Server.Ready
// callback that releases the start-up pages once the server listens, then
// calls ready. A negative limit does neither.
func ReadyProcess(limit int64, ready func(net.Addr)) func(net.Addr) {
	if limit < 0 {
		return ready
	}
	LimitMemory(limit)
	return func(a net.Addr) {
		ReleaseStartupPages()
		// Once more when the first calls (the instance manager loading the
		// plugin, the API discovery of the first maintenance cycle) are done.
		time.AfterFunc(SettleTime, ReleaseStartupPages)
		if ready != nil {
			ready(a)
		}
	}
}
