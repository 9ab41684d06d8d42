package instance_test

import (
	"bytes"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	walpb "github.com/cloudnative-pg/cnpg-i/pkg/wal"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	apiv1 "github.com/bcloud-dev/bcloud/api/v1"
	"github.com/bcloud-dev/bcloud/internal/cnpgi"
	"github.com/bcloud-dev/bcloud/internal/cnpgi/cnpgitest"
	"github.com/bcloud-dev/bcloud/internal/cnpgi/rbac"
	"github.com/bcloud-dev/bcloud/internal/testenv"
	"github.com/bcloud-dev/bcloud/internal/wal"
)

// TestSidecarMemory measures the resident memory of the real sidecar
// process (`bcloud plugin instance`, built as the Dockerfile builds it),
// running as the Cluster's ServiceAccount against a real API server
// (envtest), idle and while it archives 1,000 WAL segments of 16 MiB into
// versitygw, called as PostgreSQL's archive_command calls it.
func TestSidecarMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("memory measurement: not in -short")
	}
	// make test measures 100 segments; BCLOUD_MEMORY_SEGMENTS=1000 is the
	// full benchmark reported in the issue notes.
	segments := 100
	if n, err := strconv.Atoi(os.Getenv("BCLOUD_MEMORY_SEGMENTS")); err == nil {
		segments = n
	}
	cfg, admin := testenv.EnvTest(t)
	gw := testenv.VersityGW(t)
	bucket := gw.NewBucket(t)
	ctx := tctx(t)
	ns := fmt.Sprintf("mem-%d", time.Now().UnixNano()%1e9)
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bcloud")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./cmd/bcloud")
	build.Dir = testenv.RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build bcloud: %v\n%s", err, out)
	}

	for _, tc := range []struct {
		name        string
		maxParallel int
		count       int
	}{
		{"maxParallel=1", 1, segments},
		{"maxParallel=4", 4, segments / 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("store-%d", tc.maxParallel)
			secret := cnpgitest.Secret(ns, "minio-"+name, map[string]string{"ACCESS_KEY_ID": gw.AccessKey, "ACCESS_SECRET_KEY": gw.Secret, "REGION": gw.Region})
			store := cnpgitest.S3ObjectStore(ns, name, "s3://"+bucket+"/"+name, gw.Endpoint, "minio-"+name)
			store.Spec.Configuration.AWS.RegionReference = cnpgitest.Ref("minio-"+name, "REGION")
			store.Spec.Configuration.Wal = &apiv1.WalBackupConfiguration{Compression: apiv1.CompressionTypeSnappy, MaxParallel: tc.maxParallel}
			if err := admin.Create(ctx, secret); err != nil {
				t.Fatal(err)
			}
			if err := admin.Create(ctx, store); err != nil {
				t.Fatal(err)
			}
			clusterName := "pg" + strconv.Itoa(tc.maxParallel)
			fixture := cnpgitest.Cluster{Name: clusterName, Namespace: ns, UID: "3c0c4b7e-0000-4000-8000-00000000000" + strconv.Itoa(tc.maxParallel),
				CurrentPrimary: clusterName + "-1", Archive: map[string]string{"barmanObjectName": name}}
			cluster, err := cnpgi.DecodeCluster(fixture.JSON(t))
			if err != nil {
				t.Fatal(err)
			}
			if err := rbac.EnsureRole(ctx, admin, cluster, []apiv1.ObjectStore{*store}); err != nil {
				t.Fatal(err)
			}
			if err := rbac.EnsureRoleBinding(ctx, admin, cluster); err != nil {
				t.Fatal(err)
			}
			plugins := filepath.Join(dir, name)
			if err := os.Mkdir(plugins, 0o700); err != nil {
				t.Fatal(err)
			}
			kubeconfig := writeKubeconfig(t, cfg, filepath.Join(dir, name+".kubeconfig"), "system:serviceaccount:"+ns+":"+clusterName)
			pid, socket := startBinary(t, bin, plugins, "KUBECONFIG="+kubeconfig, "NAMESPACE="+ns, "CLUSTER_NAME="+clusterName,
				"POD_NAME="+clusterName+"-1", "SPOOL_DIRECTORY="+filepath.Join(dir, name+"-spool"), "GOMEMLIMIT="+os.Getenv("BCLOUD_TEST_GOMEMLIMIT"))
			conn := cnpgitest.DialUnix(t, socket)
			if _, err := cnpgitest.Load(tctx(t), conn); err != nil {
				data, _ := os.ReadFile(filepath.Join(plugins, "sidecar.log"))
				t.Fatalf("%v\n%s", err, data)
			}
			// Idle: once the start-up pages are released a second time.
			time.Sleep(cnpgi.SettleTime + time.Second)
			idle := cnpgitest.Memory(t, pid)

			pgwal := makeSegments(t, filepath.Join(dir, name+"-pgdata", "pg_wal"), tc.count)
			var peak atomic.Int64
			stop, sampled := make(chan struct{}), make(chan struct{})
			go func() {
				defer close(sampled)
				for {
					if m := cnpgitest.Memory(t, pid); m["VmRSS"] > peak.Load() {
						peak.Store(m["VmRSS"])
					}
					select {
					case <-stop:
						return
					case <-time.After(10 * time.Millisecond):
					}
				}
			}()
			clusterJSON := fixture.JSON(t)
			wc := walpb.NewWALClient(conn)
			no := false
			start := time.Now()
			for _, seg := range pgwal.names {
				if _, err := wc.Archive(tctx(t), &walpb.WALArchiveRequest{ClusterDefinition: clusterJSON,
					SourceFileName: filepath.Join(pgwal.dir, seg), CheckEmptyWalArchive: &no}); err != nil {
					t.Fatalf("archive %s: %v", seg, err)
				}
				ready := filepath.Join(pgwal.dir, "archive_status", seg)
				if err := os.Rename(ready+".ready", ready+".done"); err != nil {
					t.Fatal(err)
				}
			}
			elapsed := time.Since(start)
			close(stop)
			<-sampled
			after := cnpgitest.Memory(t, pid)
			t.Logf("%s: idle RSS %.1f MiB (anonymous %.1f, file %.1f); %d x 16 MiB segments archived (snappy, versitygw) in %s: peak RSS %.1f MiB (VmHWM %.1f), after: anonymous %.1f, file %.1f",
				tc.name, mib(idle["VmRSS"]), mib(idle["RssAnon"]), mib(idle["RssFile"]), tc.count, elapsed.Round(time.Millisecond),
				mib(peak.Load()), mib(after["VmHWM"]), mib(after["RssAnon"]), mib(after["RssFile"]))
			if idle["VmRSS"] > 30<<20 {
				t.Errorf("idle RSS %.1f MiB, above the 30 MiB bound", mib(idle["VmRSS"]))
			}
			// The archiving bound needs internal/wal to stream segments
			// instead of holding each one (and its compressed copy) in
			// memory; until then it is reported, and enforced on request.
			if tc.maxParallel == 1 && peak.Load() > 64<<20 {
				msg := fmt.Sprintf("archiving peak RSS %.1f MiB, above the 64 MiB bound", mib(peak.Load()))
				if os.Getenv("BCLOUD_MEMORY_STRICT") == "1" {
					t.Error(msg)
				} else {
					t.Log("NOTE: " + msg)
				}
			}
		})
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// writeKubeconfig writes a kubeconfig for cfg that impersonates user.
func writeKubeconfig(t *testing.T, cfg *rest.Config, path, user string) string {
	t.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["envtest"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData,
		Token: cfg.BearerToken, Impersonate: user,
		ImpersonateGroups: []string{"system:serviceaccounts", "system:authenticated"}}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "envtest"}
	kc.CurrentContext = "envtest"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// startBinary runs `bcloud plugin instance` and waits for its socket.
func startBinary(t *testing.T, bin, plugins string, env ...string) (int, string) {
	t.Helper()
	logPath := filepath.Join(plugins, "sidecar.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "plugin", "instance", "--plugin-path", plugins, "--log-level=warning")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		_ = logf.Close()
	})
	socket := filepath.Join(plugins, cnpgi.PluginName)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		// The socket file exists from bind(); it accepts after listen().
		if c, err := net.Dial("unix", socket); err == nil {
			_ = c.Close()
			return cmd.Process.Pid, socket
		}
	}
	data, _ := os.ReadFile(logPath)
	t.Fatalf("bcloud plugin instance did not start:\n%s", data)
	return 0, ""
}

type segmentDir struct {
	dir   string
	names []string
}

// makeSegments creates count 16 MiB segments, hard links of one file: a
// segment that a low-traffic server closes with archive_timeout, 1 MiB of
// records and zeros. Each gets its .ready file, as PostgreSQL does.
func makeSegments(t *testing.T, dir string, count int) segmentDir {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "archive_status"), 0o700); err != nil {
		t.Fatal(err)
	}
	seg := make([]byte, 16<<20)
	r := rand.New(rand.NewSource(1))
	var b bytes.Buffer
	for b.Len() < 1<<20 {
		fmt.Fprintf(&b, "rel %d blk %d off %d xid %d;", r.Intn(50000), r.Intn(1<<20), r.Intn(8192), r.Int31())
	}
	copy(seg, b.Bytes())
	tmpl := filepath.Join(dir, "template")
	if err := os.WriteFile(tmpl, seg, 0o600); err != nil {
		t.Fatal(err)
	}
	out := segmentDir{dir: dir}
	s := wal.Segment{TLI: 1, Log: 0, Seg: 1}
	for range count {
		name := s.Name()
		if err := os.Link(tmpl, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "archive_status", name+".ready"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		out.names = append(out.names, name)
		s = s.Next(16 << 20)
	}
	return out
}
