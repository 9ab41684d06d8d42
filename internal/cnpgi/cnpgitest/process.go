package cnpgitest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	walpb "github.com/cloudnative-pg/cnpg-i/pkg/wal"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	apiv1 "github.com/bcloud-dev/bcloud/api/v1"
)

// Environment of the helper roles the test binary takes when re-executed.
const (
	RoleEnv    = "BCLOUD_TEST_ROLE"    // "im" or "sidecar"
	SocketEnv  = "BCLOUD_TEST_SOCKET"  // im: the plugin socket
	ClusterEnv = "BCLOUD_TEST_CLUSTER" // im: file holding the Cluster JSON
	LogEnv     = "BCLOUD_TEST_IM_LOG"  // im: file the calls are logged to
	FixtureEnv = "BCLOUD_TEST_FIXTURE" // sidecar: file holding the API objects
	PluginEnv  = "BCLOUD_TEST_PLUGINS" // sidecar: socket directory
)

// SidecarFunc runs a sidecar against a fake API holding the fixture
// objects, until ctx is done.
type SidecarFunc func(ctx context.Context, c client.Client, pluginPath string) error

// Main is TestMain for packages whose tests re-execute the test binary:
// as the instance manager's wal-archive / wal-restore commands that
// PostgreSQL runs, or as a sidecar process.
func Main(m *testing.M, sidecar SidecarFunc) {
	switch os.Getenv(RoleEnv) {
	case "":
		os.Exit(m.Run())
	case "im":
		os.Exit(instanceManager(os.Args[1:]))
	case "sidecar":
		os.Exit(runSidecar(sidecar))
	}
	fmt.Fprintln(os.Stderr, "unknown role", os.Getenv(RoleEnv))
	os.Exit(2)
}

// instanceManager does what `/controller/manager wal-archive|wal-restore`
// does: one gRPC call to the plugin socket, exit 0 on success.
func instanceManager(args []string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cluster, err := os.ReadFile(os.Getenv(ClusterEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	conn, err := grpc.NewClient("unix://"+os.Getenv(SocketEnv), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = conn.Close() }()
	wc := walpb.NewWALClient(conn)
	var what string
	switch {
	case len(args) == 2 && args[0] == "wal-archive":
		p, _ := filepath.Abs(args[1])
		// CloudNativePG 1.30: check when the marker file exists.
		_, statErr := os.Stat(filepath.Join(filepath.Dir(filepath.Dir(p)), ".check-empty-wal-archive"))
		check := statErr == nil
		what = "archive " + filepath.Base(p)
		_, err = wc.Archive(ctx, &walpb.WALArchiveRequest{ClusterDefinition: cluster, SourceFileName: p, CheckEmptyWalArchive: &check})
	case len(args) == 3 && args[0] == "wal-restore":
		dest, _ := filepath.Abs(args[2])
		what = "restore " + args[1]
		_, err = wc.Restore(ctx, &walpb.WALRestoreRequest{ClusterDefinition: cluster, SourceWalName: args[1],
			DestinationFileName: dest, Mode: walpb.WALRestoreRequest_MODE_RECOVERY})
	default:
		fmt.Fprintln(os.Stderr, "usage: wal-archive PATH | wal-restore NAME DEST")
		return 2
	}
	logCall(what, err)
	if err != nil {
		fmt.Fprintln(os.Stderr, "plugin:", err)
		return 1
	}
	return 0
}

func logCall(what string, err error) {
	p := os.Getenv(LogEnv)
	if p == "" {
		return
	}
	f, ferr := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o666)
	if ferr != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s\n", what, status.Code(err))
}

func runSidecar(run SidecarFunc) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	objs, err := readFixture(os.Getenv(FixtureEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s, err := newScheme()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).
		WithStatusSubresource(&apiv1.ObjectStore{}).Build()
	if err := run(ctx, c, os.Getenv(PluginEnv)); err != nil {
		fmt.Fprintln(os.Stderr, "sidecar:", err)
		return 1
	}
	return 0
}

// WriteFixture writes API objects for a sidecar process.
func WriteFixture(t testing.TB, path string, objs ...client.Object) {
	t.Helper()
	s := Scheme(t)
	var raw []json.RawMessage
	for _, o := range objs {
		o = o.DeepCopyObject().(client.Object)
		gvk, err := apiutil.GVKForObject(o, s)
		if err != nil {
			t.Fatal(err)
		}
		o.GetObjectKind().SetGroupVersionKind(gvk)
		raw = append(raw, mustJSON(t, o))
	}
	if err := os.WriteFile(path, mustJSON(t, raw), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFixture(path string) ([]client.Object, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	s, err := newScheme()
	if err != nil {
		return nil, err
	}
	dec := serializer.NewCodecFactory(s).UniversalDeserializer()
	var out []client.Object
	for _, r := range raw {
		obj, _, err := dec.Decode(r, nil, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, obj.(client.Object))
	}
	return out, nil
}

// InstallBinary copies the test binary into dir (which the postgres user
// can read) so that PostgreSQL's archive and restore commands and a
// sidecar run as postgres can execute it.
func InstallBinary(t testing.TB, dir string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dst := filepath.Join(dir, "plugin-test.bin")
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// IMEnv is the environment PostgreSQL needs to run the fake instance
// manager: archive_command = '<bin> wal-archive %p', restore_command =
// '<bin> wal-restore %f %p'.
func IMEnv(socket, clusterFile, logFile string) []string {
	return []string{RoleEnv + "=im", SocketEnv + "=" + socket, ClusterEnv + "=" + clusterFile, LogEnv + "=" + logFile}
}

// Sidecar is a sidecar running in its own process.
type Sidecar struct {
	Cmd    *exec.Cmd
	Socket string
	Log    string
}

// StartSidecar runs the test binary as a sidecar process (as the postgres
// user when asPostgres, like the container's uid 26) and waits for its
// socket.
func StartSidecar(t testing.TB, bin, pluginDir, fixture string, asPostgres bool, env ...string) *Sidecar {
	t.Helper()
	logPath := filepath.Join(pluginDir, "sidecar.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{bin}
	if asPostgres && os.Geteuid() == 0 {
		args = append([]string{"runuser", "-u", "postgres", "--"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), append([]string{RoleEnv + "=sidecar", FixtureEnv + "=" + fixture, PluginEnv + "=" + pluginDir}, env...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &Sidecar{Cmd: cmd, Socket: filepath.Join(pluginDir, PluginName), Log: logPath}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = logf.Close()
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		// The socket file exists from bind(); it accepts after listen().
		if c, err := net.Dial("unix", s.Socket); err == nil {
			_ = c.Close()
			return s
		}
		select {
		case <-done:
			data, _ := os.ReadFile(logPath)
			t.Fatalf("sidecar exited:\n%s", data)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatal("sidecar socket did not appear")
	return nil
}

// PID returns the sidecar's process id: its own, not runuser's.
func (s *Sidecar) PID(t testing.TB) int {
	t.Helper()
	pid := s.Cmd.Process.Pid
	// Under runuser the sidecar is its child.
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err == nil {
		if f := strings.Fields(string(data)); len(f) == 1 {
			if child, err := strconv.Atoi(f[0]); err == nil {
				return child
			}
		}
	}
	return pid
}

// RSS returns the resident set size and its peak (VmRSS, VmHWM) of a
// process, in bytes.
func RSS(t testing.TB, pid int) (rss, peak int64) {
	t.Helper()
	m := Memory(t, pid)
	return m["VmRSS"], m["VmHWM"]
}

// Memory returns the memory lines of /proc/<pid>/status (VmRSS, VmHWM,
// RssAnon, RssFile...), in bytes.
func Memory(t testing.TB, pid int) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		if n, err := strconv.ParseInt(f[1], 10, 64); err == nil && strings.HasSuffix(f[0], ":") {
			out[strings.TrimSuffix(f[0], ":")] = n << 10
		}
	}
	return out
}
