package catalog

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseBackupInfo: any bytes parse or fail with an error that names
// the problem; what parses re-marshals to something that parses again to
// the same file.
func FuzzParseBackupInfo(f *testing.F) {
	golden, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.info"))
	for _, g := range golden {
		if data, err := os.ReadFile(g); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("status=DONE\n"))
	f.Add([]byte("begin_time=2024-01-15 10:30:00+00:00\ntablespaces=[('a', 1, '/x')]\n"))
	f.Add([]byte("no equals sign\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ParseBackupInfo(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err)
			}
			return
		}
		out := info.Marshal()
		again, err := ParseBackupInfo(out)
		if err != nil {
			t.Fatalf("re-parse of marshalled output failed: %v\n%s", err, out)
		}
		if !bytes.Equal(again.Marshal(), out) {
			t.Fatalf("marshal is not stable:\n%s\n---\n%s", out, again.Marshal())
		}
	})
}
