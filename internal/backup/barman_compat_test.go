package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bcloud-dev/bcloud/internal/testenv"
)

var (
	pythonOnce sync.Once
	pythonPath string
)

// pythonBarman returns a python3 that imports barman, or skips the test.
func pythonBarman(t *testing.T) string {
	t.Helper()
	pythonOnce.Do(func() {
		for _, c := range []string{"/usr/bin/python3", "python3"} {
			p, err := exec.LookPath(c)
			if err != nil {
				continue
			}
			if exec.Command(p, "-c", "import barman.fs, barman.utils").Run() == nil {
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

func runPython(t *testing.T, script string, input any) []byte {
	t.Helper()
	in, err := json.Marshal(input)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(pythonBarman(t), "-c", script)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	return out
}

// TestWalkMatchesBarman builds a data directory shaped tree and checks
// that the members archived are exactly those barman's upload_directory
// (os.walk + path_allowed) archives.
func TestWalkMatchesBarman(t *testing.T) {
	pythonBarman(t)
	root := t.TempDir()
	files := []string{
		"PG_VERSION", "postgresql.auto.conf", "postgresql.auto.conf.tmp", "postmaster.pid",
		"postmaster.opts", "recovery.conf", "standby.signal", "backup_label.old", "current_logfiles.tmp",
		"global/pg_control", "global/1262", "global/pg_internal.init",
		"base/1/1259", "base/1/pg_internal.init", "base/16384/t3_1234", "base/16384/16390",
		"base/pgsql_tmp/pgsql_tmp1.0", "base/16384/pgsql_tmp77",
		"pg_wal/000000010000000000000001", "pg_wal/archive_status/000000010000000000000001.done",
		"log/postgresql.log", "pg_log/old.log", "pg_replslot/s1/state", "pg_stat_tmp/global.stat",
		"pg_notify/0000", "pg_subtrans/0000", "pg_xact/0000", "pg_multixact/offsets/0000",
		"ts_inside/x", "ts_inside/PG_15_1/16384/1", "deep/a/b/c/postmaster.pid", "[0-9]x/t1_2",
	}
	for _, f := range files {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"pg_tblspc", "pg_dynshmem", "pg_serial", "pg_snapshots", "empty"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	tsDir := t.TempDir()
	if err := os.Symlink(tsDir, filepath.Join(root, "pg_tblspc", "16385")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(tsDir, filepath.Join(root, "linked_dir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("PG_VERSION", filepath.Join(root, "linked_file")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nonexistent", filepath.Join(root, "broken_link")); err != nil {
		t.Fatal(err)
	}

	f, err := PGDataFilter([]uint32{16385}, []string{"/ts_inside"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = walk(context.Background(), root, f, func(m *member) error {
		got = append(got, m.name)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	exclude := append(append(append([]string{}, PGDataExclude...), CommonExclude...), "/ts_inside", "/pg_tblspc/16385")
	script := `
import json, os, sys
from barman.fs import path_allowed
args = json.load(sys.stdin)
src, exclude = args["root"], args["exclude"]
out = []
for root, dirs, files in os.walk(src):
    tar_root = os.path.relpath(root, src)
    if not path_allowed(exclude, None, tar_root, True):
        continue
    out.append(tar_root)
    for item in files:
        tar_item = os.path.join(tar_root, item)
        if path_allowed(exclude, None, tar_item, False):
            out.append(tar_item)
print(json.dumps(out))
`
	var want []string
	out := runPython(t, script, map[string]any{"root": root, "exclude": exclude})
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatalf("parse python output %q: %v", out, err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("members differ from barman:\n got  %s\n want %s", strings.Join(got, " "), strings.Join(want, " "))
	}
}

// TestParseSizeMatchesBarman runs check_size on every case that barman
// answers with a value or a clean error.
func TestParseSizeMatchesBarman(t *testing.T) {
	var inputs []string
	for _, c := range sizeCases {
		switch c.in {
		case "", "B", "iB", "infKB", "100YB":
			// barman crashes (IndexError, OverflowError) or returns a
			// value beyond int64: bcloud reports an error instead.
			continue
		}
		inputs = append(inputs, c.in)
	}
	script := `
import json, sys
from barman.utils import check_size
out = []
for v in json.load(sys.stdin):
    try:
        out.append(check_size(v))
    except Exception:
        out.append(0)
print(json.dumps(out))
`
	var want []int64
	if err := json.Unmarshal(runPython(t, script, inputs), &want); err != nil {
		t.Fatal(err)
	}
	for i, in := range inputs {
		got, err := ParseSize(in)
		if err != nil {
			got = 0
		}
		if got != want[i] {
			t.Errorf("ParseSize(%q) = %d, barman check_size = %d", in, got, want[i])
		}
	}
}
