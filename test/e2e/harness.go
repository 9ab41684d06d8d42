package e2e

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bcloud-dev/bcloud/internal/testenv"
)

// OperatorNamespace is where the CloudNativePG operator and the plugin's
// Service, Secrets and operator-side process live.
const OperatorNamespace = "cnpg-system"

// Harness is the control plane, the real CloudNativePG operator and the
// bcloud plugin's operator-side process, shared by the scenarios.
type Harness struct {
	Dir    string // work directory: kubeconfigs, certificates, logs, pods
	Cfg    *rest.Config
	Client client.Client
	CS     kubernetes.Interface

	AdminKubeconfig string
	Manager         string // the CloudNativePG manager binary
	Bcloud          string // the bcloud binary

	Operator *proc

	modDir    string // the cloudnative-pg module (CRDs, webhook manifests)
	hostsFile string // /etc/hosts seen by the operator (plugin Service names)
	timings   []timing
}

type timing struct {
	name string
	d    time.Duration
}

// Scheme returns the harness scheme: Kubernetes, ObjectStore and the
// CloudNativePG API types.
func Scheme() *kruntime.Scheme {
	s := testenv.Scheme()
	if err := cnpgv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// requireRoot skips (fails in CI) unless the harness can make mount
// namespaces and switch users.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root (mount namespaces for the pods, PostgreSQL as an unprivileged user)")
	}
	if _, err := exec.LookPath("mount"); err != nil {
		testenv.Missing(t, "mount")
	}
}

// cnpgManager returns the CloudNativePG manager binary built by
// scripts/deps.sh cnpg.
func cnpgManager(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("CNPG_MANAGER"); p != "" {
		return p
	}
	p := filepath.Join(testenv.CacheDir(), "cnpg", cnpgVersion, "manager")
	if _, err := os.Stat(p); err != nil {
		testenv.Missing(t, "the CloudNativePG "+cnpgVersion+" manager (scripts/deps.sh cnpg)")
	}
	return p
}

// bcloudBinary builds bcloud from the repository into .cache/e2e (not
// under /tmp, which a pod may mount an emptyDir over), or takes $BCLOUD.
func bcloudBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("BCLOUD"); p != "" {
		return p
	}
	out := filepath.Join(testenv.CacheDir(), "e2e", "bcloud")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/bcloud")
	cmd.Dir = testenv.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build bcloud: %v\n%s", err, b)
	}
	return out
}

// step times a setup or scenario step, for the summary.
func (h *Harness) step(name string, begin time.Time) {
	h.timings = append(h.timings, timing{name, time.Since(begin)})
}

// Summary returns the step timings, one per line.
func (h *Harness) Summary() string {
	s := ""
	for _, tm := range h.timings {
		s += fmt.Sprintf("  %-55s %8s\n", tm.name, tm.d.Round(10*time.Millisecond))
	}
	return s
}

// Start brings up the control plane and the CloudNativePG operator.
func Start(t *testing.T) *Harness {
	t.Helper()
	requireRoot(t)
	manager := cnpgManager(t)
	modDir := cnpgModuleDir()
	if modDir == "" {
		testenv.Missing(t, "the cloudnative-pg "+cnpgVersion+" module in the module cache (scripts/deps.sh cnpg)")
	}
	// Pods share the host network: the instance's fixed ports must be free.
	for _, port := range []int{5432, 8000, 9187} {
		if l, err := net.Listen("tcp", fmt.Sprintf(":%d", port)); err != nil {
			t.Fatalf("port %d is in use: the instance pods need it (pods share the host network): %v", port, err)
		} else {
			_ = l.Close()
		}
	}
	dir, err := os.MkdirTemp("", "bcloud-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() && os.Getenv("BCLOUD_E2E_KEEP") == "" {
			_ = os.RemoveAll(dir)
		}
	})
	// Pods run as the postgres user, which must reach the binaries here.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("work directory (kept on failure or with BCLOUD_E2E_KEEP=1): %s", dir)
	h := &Harness{Dir: dir, Manager: manager, modDir: modDir}

	begin := time.Now()
	h.Bcloud = bcloudBinary(t)
	h.step("build bcloud", begin)

	begin = time.Now()
	cfg, _ := testenv.EnvTest(t, filepath.Join(modDir, "config", "crd", "bases"))
	h.step("start envtest (kube-apiserver, etcd, CRDs)", begin)
	h.Cfg = cfg
	h.Client, err = client.New(cfg, client.Options{Scheme: Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	h.CS, err = kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.AdminKubeconfig = filepath.Join(dir, "admin.kubeconfig")
	if err := writeKubeconfig(h.AdminKubeconfig, cfg, ""); err != nil {
		t.Fatal(err)
	}
	ctx := testenv.Context(t)
	if err := h.ensureNamespace(ctx, OperatorNamespace); err != nil {
		t.Fatal(err)
	}
	begin = time.Now()
	if err := h.startOperator(ctx); err != nil {
		t.Fatal(err)
	}
	h.step("start the CloudNativePG operator", begin)
	return h
}

// Stop stops the operator. The kubelet stops its pods; the control plane is
// stopped by the test binary (testenv).
func (h *Harness) Stop() {
	h.Operator.stop(10 * time.Second)
}

func (h *Harness) ensureNamespace(ctx context.Context, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := h.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

// startOperator runs `manager controller` outside a cluster: KUBECONFIG
// with the envtest admin, the webhook server on a free port with a
// certificate made here (WEBHOOK_CERT_DIR, which also skips the operator's
// own PKI setup and webhook configuration patching), and a private
// /etc/hosts so that plugin Service names resolve to loopback.
func (h *Harness) startOperator(ctx context.Context) error {
	dir := filepath.Join(h.Dir, "operator")
	certDir := filepath.Join(dir, "webhook")
	sockets := filepath.Join(dir, "plugins")
	for _, d := range []string{certDir, sockets} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	kp, err := selfSigned("cnpg-webhook-service."+OperatorNamespace+".svc",
		[]string{"cnpg-webhook-service." + OperatorNamespace + ".svc"}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(certDir, "apiserver.crt"), kp.CertPEM, 0o600); err != nil {
		return fmt.Errorf("write webhook certificate: %w", err)
	}
	if err := os.WriteFile(filepath.Join(certDir, "apiserver.key"), kp.KeyPEM, 0o600); err != nil {
		return fmt.Errorf("write webhook key: %w", err)
	}
	// The operator image holds its binary per architecture in
	// operator/manager_<arch>, relative to its working directory; the
	// Cluster status records the one matching the node (hash included).
	if err := os.MkdirAll(filepath.Join(dir, "operator"), 0o755); err != nil {
		return fmt.Errorf("create operator binaries directory: %w", err)
	}
	if err := os.Symlink(h.Manager, filepath.Join(dir, "operator", "manager_"+runtime.GOARCH)); err != nil {
		return fmt.Errorf("link operator binary: %w", err)
	}
	h.hostsFile = filepath.Join(dir, "hosts")
	if err := os.WriteFile(h.hostsFile, []byte(pluginHosts()), 0o644); err != nil {
		return fmt.Errorf("write hosts file: %w", err)
	}
	webhookPort := freeTCPPort()
	spec := nsSpec{
		Binds: []bindMount{{Source: h.hostsFile, Target: "/etc/hosts"}},
		UID:   -1, GID: -1, Dir: dir,
		Argv: []string{h.Manager, "controller",
			"--leader-elect=false",
			"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(freeTCPPort()),
			"--webhook-port=" + strconv.Itoa(webhookPort),
			"--log-level=debug",
		},
	}
	env := append(baseEnv(),
		"KUBECONFIG="+h.AdminKubeconfig,
		"OPERATOR_NAMESPACE="+OperatorNamespace,
		"WEBHOOK_CERT_DIR="+certDir,
		"PLUGIN_SOCKET_DIR="+sockets,
	)
	cmd, err := nsCommand(spec, env)
	if err != nil {
		return err
	}
	p, err := startProc("operator", cmd, filepath.Join(h.Dir, "operator.log"))
	if err != nil {
		return err
	}
	h.Operator = p
	// Ready when its controllers have started.
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if done, err := p.exited(); done {
			return fmt.Errorf("operator exited (%v):\n%s", err, p.tail(40))
		}
		if logContains(p.log, `"Starting workers"`) && logContains(p.log, `"Serving webhook server"`) {
			return h.installWebhooks(ctx, h.modDir, webhookPort, kp.CertPEM)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("operator not ready after 2m:\n%s", p.tail(40))
}
