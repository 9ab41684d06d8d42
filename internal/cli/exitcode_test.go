package cli

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bcloud-dev/bcloud/internal/testenv"
)

func runMain(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), append([]string{"bcloud"}, args...), &out, &errb)
	return code, out.String() + errb.String()
}

func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "http://" + addr
}

// TestExitCodes reproduces every exit code of barman-cloud-wal-archive,
// -wal-restore and -check-wal-archive (format notes §6, §7, §8.8).
func TestExitCodes(t *testing.T) {
	srv := testenv.VersityGW(t)
	bucket := srv.NewBucket(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.Secret)
	t.Setenv("AWS_DEFAULT_REGION", srv.Region)
	dir := t.TempDir()
	wal := filepath.Join(dir, "000000010000000000000001")
	if err := os.WriteFile(wal, segmentBytes(1), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "000000010000000000000001")
	_ = os.WriteFile(other, segmentBytes(2), 0o600)
	notWAL := filepath.Join(dir, "backup_label")
	_ = os.WriteFile(notWAL, []byte("x"), 0o600)
	good := "s3://" + bucket + "/p"
	missing := "s3://no-such-bucket-bcloud/p"
	down := closedPort(t)
	ep := []string{"--endpoint-url", srv.Endpoint}
	with := func(endpoint []string, args ...string) []string {
		return append(append([]string{args[0]}, endpoint...), args[1:]...)
	}
	dest := filepath.Join(dir, "RECOVERYXLOG")
	cases := []struct {
		name string
		args []string
		want int
	}{
		{"archive ok", with(ep, "wal-archive", good, "srv", wal), 0},
		{"archive again, same content", with(ep, "wal-archive", good, "srv", wal), 0},
		{"archive different content", with(ep, "wal-archive", good, "srv", other), 4},
		{"archive not a WAL name", with(ep, "wal-archive", good, "srv", notWAL), 3},
		{"archive missing argument", with(ep, "wal-archive", good, "srv"), 3},
		{"archive unknown option", with(ep, "wal-archive", "--no-such-flag", good, "srv", wal), 3},
		{"archive two codecs", with(ep, "wal-archive", "--gzip", "--lz4", good, "srv", wal), 3},
		{"archive bad URL", with(ep, "wal-archive", "nope://x", "srv", wal), 3},
		{"archive unreachable store", with([]string{"--endpoint-url", down}, "wal-archive", good, "srv", wal), 4},
		{"archive --test ok", with(ep, "wal-archive", "--test", good, "srv", wal), 0},
		{"archive --test unreachable", with([]string{"--endpoint-url", down}, "wal-archive", "--test", good, "srv", wal), 2},
		{"archive --test missing bucket", with(ep, "wal-archive", "--test", missing, "srv", wal), 1},
		{"restore found", with(ep, "wal-restore", good, "srv", "000000010000000000000001", dest), 0},
		{"restore not found", with(ep, "wal-restore", good, "srv", "000000010000000000000002", dest), 1},
		{"restore bad name", with(ep, "wal-restore", good, "srv", "RECOVERYHISTORY", dest), 3},
		{"restore unreachable", with([]string{"--endpoint-url", down}, "wal-restore", good, "srv", "000000010000000000000001", dest), 4},
		{"restore missing bucket", with(ep, "wal-restore", missing, "srv", "000000010000000000000001", dest), 4},
		{"check non-empty archive", with(ep, "check-wal-archive", good, "srv"), 1},
		{"check empty archive", with(ep, "check-wal-archive", good, "other"), 0},
		{"check newer timeline only", with(ep, "check-wal-archive", "--timeline", "2", good, "srv"), 0},
		{"check same timeline", with(ep, "check-wal-archive", "--timeline", "1", good, "srv"), 1},
		{"check unreachable", with([]string{"--endpoint-url", down}, "check-wal-archive", good, "srv"), 2},
		{"check --test", with(ep, "check-wal-archive", "--test", good, "srv"), 0},
		{"check bad timeline", with(ep, "check-wal-archive", "--timeline", "x", good, "srv"), 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out := runMain(t, c.args...)
			if code != c.want {
				t.Fatalf("exit %d, want %d; output:\n%s", code, c.want, out)
			}
			if c.want != 0 && c.want != 1 && strings.Count(strings.TrimSpace(out), "\n") > 0 && !strings.Contains(c.name, "unreachable") {
				t.Errorf("error output is not one line:\n%s", out)
			}
		})
	}
}

// TestBarmanLinkNames: invoked as barman-cloud-<cmd>, bcloud acts as bcloud <cmd>.
func TestBarmanLinkNames(t *testing.T) {
	for _, c := range BarmanCommands {
		args := dispatchArgv0([]string{"/usr/bin/barman-cloud-" + c, "a", "b"})
		if fmt.Sprint(args) != fmt.Sprint([]string{"bcloud", c, "a", "b"}) {
			t.Errorf("barman-cloud-%s dispatches to %v", c, args)
		}
	}
	if args := dispatchArgv0([]string{"barman-cloud-nonsense", "x"}); args[0] != "barman-cloud-nonsense" {
		t.Errorf("unknown link name rewritten: %v", args)
	}
}

// segmentBytes is a 1 MiB WAL segment 0/1 on timeline 1 whose first page
// header carries its address (wal-restore checks it); fill varies the body.
func segmentBytes(fill byte) []byte {
	data := make([]byte, 1<<20)
	binary.LittleEndian.PutUint16(data[0:2], 0xD110)
	binary.LittleEndian.PutUint32(data[4:8], 1)
	binary.LittleEndian.PutUint64(data[8:16], 1<<20)
	for i := 64; i < 4096; i++ {
		data[i] = fill
	}
	return data
}
