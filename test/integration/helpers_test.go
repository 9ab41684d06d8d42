// Package integration runs bcloud as PostgreSQL runs it: a real
// PostgreSQL 15 calling the built binary from archive_command and
// restore_command, and the real barman-cloud 3.4 for cross-compatibility.
package integration

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bcloud-dev/bcloud/internal/testenv"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// bcloudBin builds cmd/bcloud once per test binary into a directory the
// postgres user can read, and returns its path.
func bcloudBin(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bcloud-bin-")
		if err != nil {
			binErr = err
			return
		}
		_ = os.Chmod(dir, 0o755)
		binPath = filepath.Join(dir, "bcloud")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/bcloud")
		cmd.Dir = testenv.RepoRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = err
			binPath = string(out)
		}
	})
	if binErr != nil {
		t.Fatalf("build bcloud: %v\n%s", binErr, binPath)
	}
	return binPath
}

// waitFor polls cond until it is true or the timeout passes.
func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}

// run executes a command and fails the test with its output on error.
func run(t testing.TB, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// exitCode runs a command and returns its exit code and output.
func exitCode(t testing.TB, env []string, name string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return 0, string(out)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("%s: %v", name, err)
	return -1, ""
}
