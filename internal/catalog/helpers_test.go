package catalog

import (
	"bytes"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/bcloud-dev/bcloud/internal/testenv"
)

var (
	pythonOnce sync.Once
	pythonPath string
)

// pythonBarman returns a python3 interpreter that can import barman 3.x,
// or skips the test (fails it in CI) when there is none. Debian's
// python3-barman lives in the system interpreter, which a pyenv shim on
// PATH may hide, so /usr/bin/python3 is tried first.
func pythonBarman(t testing.TB) string {
	t.Helper()
	pythonOnce.Do(func() {
		for _, c := range []string{"/usr/bin/python3", "python3"} {
			p, err := exec.LookPath(c)
			if err != nil {
				continue
			}
			out, err := exec.Command(p, "-c", "import barman; print(barman.__version__)").Output()
			if err == nil && strings.HasPrefix(string(out), "3.") {
				pythonPath = p
				return
			}
		}
	})
	if pythonPath == "" {
		testenv.Missing(t, "python3 with barman (Debian python3-barman)")
	}
	return pythonPath
}

// runPython runs a Python script with stdin and returns its stdout.
func runPython(t testing.TB, script string, stdin []byte, args ...string) []byte {
	t.Helper()
	py := pythonBarman(t)
	cmd := exec.Command(py, append([]string{"-c", script}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	return out
}
