package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	apiv1 "github.com/bcloud-dev/bcloud/api/v1"
)

// envtestDirPrefix names the work directories (etcd data, API server
// certificates) of one test binary: bcloud-envtest-<pid>-*.
const envtestDirPrefix = "bcloud-envtest-"

// cnpgAPIModule is the module whose types define the CloudNativePG CRDs.
const cnpgAPIModule = "github.com/cloudnative-pg/api"

// cnpgAPIVersion is the CloudNativePG API whose CRDs tests install when
// go.mod does not name the module: the version bcloud is tested against.
const cnpgAPIVersion = "v1.30.0"

type sharedEnvTest struct {
	mu        sync.Mutex
	env       *envtest.Environment
	cfg       *rest.Config
	client    client.Client
	installed []string // CRD directories already installed
	cnpg      bool     // the CloudNativePG CRDs are installed
	cnpgNote  string   // why they are not
	err       error
	started   time.Duration
}

var kube sharedEnvTest

// Scheme returns a scheme with the Kubernetes built-in types and the
// ObjectStore API.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := apiv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// EnvTest returns a real kube-apiserver and etcd (controller-runtime
// envtest) started once per test binary from the binaries scripts/deps.sh
// builds into .cache/envtest/current (or $KUBEBUILDER_ASSETS), with the
// ObjectStore CRD (config/crd/bases), the CloudNativePG clusters, backups and
// scheduledbackups CRDs when they can be had offline (see RequireCNPGCRDs),
// and the CRDs in crdDirs installed. The client is an admin client with
// Scheme(). The processes die with the test binary; tests must use their own
// namespaces.
func EnvTest(t testing.TB, crdDirs ...string) (*rest.Config, client.Client) {
	t.Helper()
	assets := envtestAssets()
	if assets == "" {
		Missing(t, "envtest (etcd and kube-apiserver in .cache/envtest/current)")
	}
	kube.mu.Lock()
	defer kube.mu.Unlock()
	if kube.err != nil {
		t.Fatalf("envtest: %v", kube.err)
	}
	if kube.env == nil {
		begin := time.Now()
		if err := kube.start(t, assets); err != nil {
			kube.err = err
			t.Fatalf("envtest: %v", err)
		}
		kube.started = time.Since(begin)
		t.Logf("envtest started in %s", kube.started.Round(time.Millisecond))
		if !kube.cnpg {
			t.Logf("envtest: CloudNativePG CRDs not installed: %s", kube.cnpgNote)
		}
	}
	var extra []string
	for _, d := range crdDirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(kube.installed, abs) {
			extra = append(extra, abs)
		}
	}
	if len(extra) > 0 {
		if _, err := envtest.InstallCRDs(kube.cfg, envtest.CRDInstallOptions{Paths: extra, ErrorIfPathMissing: true}); err != nil {
			t.Fatalf("envtest: install CRDs from %v: %v", extra, err)
		}
		kube.installed = append(kube.installed, extra...)
	}
	return rest.CopyConfig(kube.cfg), kube.client
}

// EnvTestStartTime reports how long the shared envtest took to start, zero
// before it has.
func EnvTestStartTime() time.Duration {
	kube.mu.Lock()
	defer kube.mu.Unlock()
	return kube.started
}

// RequireCNPGCRDs skips t (fails it in CI) unless the shared envtest holds
// the CloudNativePG CRDs. Call it after EnvTest.
func RequireCNPGCRDs(t testing.TB) {
	t.Helper()
	kube.mu.Lock()
	ok, note := kube.cnpg, kube.cnpgNote
	kube.mu.Unlock()
	if !ok {
		Missing(t, "the CloudNativePG CRDs ("+note+")")
	}
}

// StopEnvTest stops the shared envtest. A TestMain may call it after
// m.Run; without it the processes are killed when the binary exits and
// the next binary removes their directories.
func StopEnvTest() error {
	kube.mu.Lock()
	defer kube.mu.Unlock()
	if kube.env == nil {
		return nil
	}
	err := kube.env.Stop()
	kube.env, kube.err = nil, errors.New("stopped")
	return err
}

func envtestAssets() string {
	for _, dir := range []string{os.Getenv("KUBEBUILDER_ASSETS"), filepath.Join(CacheDir(), "envtest", "current")} {
		if dir == "" {
			continue
		}
		if isExec(filepath.Join(dir, "kube-apiserver")) && isExec(filepath.Join(dir, "etcd")) {
			return dir
		}
	}
	return ""
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

func (k *sharedEnvTest) start(t testing.TB, assets string) error {
	removeStaleEnvtestDirs()
	work, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", envtestDirPrefix, os.Getpid()))
	if err != nil {
		return fmt.Errorf("create work directory: %w", err)
	}
	bin, err := deathBoundBinaries(work, assets)
	if err != nil {
		return err
	}
	dirs := []string{filepath.Join(RepoRoot(), "config", "crd", "bases")}
	cnpgDir, note := cnpgCRDDir(t)
	if cnpgDir != "" {
		dirs = append(dirs, cnpgDir)
	}
	k.cnpg, k.cnpgNote = cnpgDir != "", note
	env := &envtest.Environment{
		BinaryAssetsDirectory:    bin,
		CRDDirectoryPaths:        dirs,
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  30 * time.Second,
		Scheme:                   Scheme(),
	}
	env.ControlPlane.Etcd = &envtest.Etcd{DataDir: filepath.Join(work, "etcd")}
	env.ControlPlane.APIServer = &envtest.APIServer{CertDir: filepath.Join(work, "apiserver")}
	for _, d := range []string{env.ControlPlane.Etcd.DataDir, env.ControlPlane.APIServer.CertDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop()
		return fmt.Errorf("start control plane from %s: %w", assets, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		_ = env.Stop()
		return fmt.Errorf("create client: %w", err)
	}
	k.env, k.cfg, k.client, k.installed = env, cfg, c, dirs
	return nil
}

// deathBoundBinaries writes etcd and kube-apiserver wrappers that exec the
// real binaries with a parent-death signal, so they die with the test
// binary even when nothing stops them. Without setpriv it returns assets.
func deathBoundBinaries(work, assets string) (string, error) {
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		return assets, nil
	}
	bin := filepath.Join(work, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", fmt.Errorf("create wrapper directory: %w", err)
	}
	for _, name := range []string{"etcd", "kube-apiserver"} {
		script := fmt.Sprintf("#!/bin/sh\nexec %s --pdeathsig KILL -- %s \"$@\"\n",
			strconv.Quote(setpriv), strconv.Quote(filepath.Join(assets, name)))
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			return "", fmt.Errorf("write %s wrapper: %w", name, err)
		}
	}
	return bin, nil
}

// removeStaleEnvtestDirs deletes the work directories of earlier test
// binaries that are no longer running.
func removeStaleEnvtestDirs() {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), envtestDirPrefix+"*"))
	for _, m := range matches {
		rest := strings.TrimPrefix(filepath.Base(m), envtestDirPrefix)
		pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid))); os.IsNotExist(err) {
			_ = os.RemoveAll(m)
		}
	}
}

// cnpgCRDDir returns a directory holding the CloudNativePG CRDs at the
// version of the api module in go.mod, or "" and the reason there is none.
// In order: CRDs generated earlier into .cache/envtest/cnpg-crds-<version>;
// the operator module's config/crd/bases if it is in the module cache; or a
// fresh generation with controller-gen from the api module's Go types in a
// wrapper module (the api module ships no YAML, and its dependencies are not
// all in our go.sum).
func cnpgCRDDir(t testing.TB) (string, string) {
	version, err := moduleVersion(cnpgAPIModule)
	if err != nil {
		// The main module does not import the CNPG API types (the plugin
		// decodes Clusters itself): use the pinned version.
		version = cnpgAPIVersion
	}
	cache := filepath.Join(CacheDir(), "envtest", "cnpg-crds-"+version)
	if hasCNPGCRDs(cache) {
		return cache, ""
	}
	if modCache, err := goEnv("GOMODCACHE"); err == nil {
		dir := filepath.Join(modCache, "github.com", "cloudnative-pg", "cloudnative-pg@"+version, "config", "crd", "bases")
		if hasCNPGCRDs(dir) {
			return dir, ""
		}
	}
	gen := filepath.Join(CacheDir(), "bin", "controller-gen")
	if !isExec(gen) {
		return "", "controller-gen is not installed: run scripts/deps.sh controller-gen"
	}
	begin := time.Now()
	if err := generateCNPGCRDs(gen, version, cache); err != nil {
		return "", err.Error()
	}
	t.Logf("envtest: generated the CloudNativePG %s CRDs in %s", version, time.Since(begin).Round(time.Millisecond))
	return cache, ""
}

var cnpgCRDFiles = []string{"postgresql.cnpg.io_clusters.yaml", "postgresql.cnpg.io_backups.yaml", "postgresql.cnpg.io_scheduledbackups.yaml"}

func hasCNPGCRDs(dir string) bool {
	for _, f := range cnpgCRDFiles {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return false
		}
	}
	return true
}

func generateCNPGCRDs(controllerGen, version, dest string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// A wrapper module per call: test binaries may generate concurrently.
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(dest), err)
	}
	src, err := os.MkdirTemp(filepath.Dir(dest), ".cnpg-crds-src-")
	if err != nil {
		return fmt.Errorf("create wrapper module directory: %w", err)
	}
	defer os.RemoveAll(src)
	gomod := fmt.Sprintf("module example.local/cnpgcrds\n\ngo 1.26\n\nrequire %s %s\n", cnpgAPIModule, version)
	tools := fmt.Sprintf("//go:build tools\n\npackage tools\n\nimport _ %q\n", cnpgAPIModule+"/pkg/api/v1")
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte(gomod), 0o644); err != nil {
		return fmt.Errorf("write wrapper go.mod: %w", err)
	}
	if err := os.WriteFile(filepath.Join(src, "tools.go"), []byte(tools), 0o644); err != nil {
		return fmt.Errorf("write wrapper tools.go: %w", err)
	}
	run := func(name string, args ...string) error {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %s: %w: %s", filepath.Base(name), strings.Join(args, " "), err, lastLines(out, 5))
		}
		return nil
	}
	if err := run("go", "mod", "tidy"); err != nil {
		return fmt.Errorf("resolve the CloudNativePG api module: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dest), ".cnpg-crds-")
	if err != nil {
		return fmt.Errorf("create temporary CRD directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := run(controllerGen, "crd", "paths="+cnpgAPIModule+"/pkg/api/v1", "output:crd:dir="+tmp); err != nil {
		return fmt.Errorf("generate the CloudNativePG CRDs: %w", err)
	}
	keep := filepath.Join(tmp, "keep")
	if err := os.Mkdir(keep, 0o755); err != nil {
		return fmt.Errorf("create CRD directory: %w", err)
	}
	for _, f := range cnpgCRDFiles {
		if err := os.Rename(filepath.Join(tmp, f), filepath.Join(keep, f)); err != nil {
			return fmt.Errorf("collect %s: %w", f, err)
		}
	}
	// Another test binary may have won the race; its result is as good.
	if err := os.Rename(keep, dest); err != nil && !hasCNPGCRDs(dest) {
		return fmt.Errorf("store the CloudNativePG CRDs: %w", err)
	}
	return nil
}

// moduleVersion reads the version of module from the repository's go.mod.
func moduleVersion(module string) (string, error) {
	f, err := os.Open(filepath.Join(RepoRoot(), "go.mod"))
	if err != nil {
		return "", fmt.Errorf("read go.mod: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(fields) >= 2 && fields[0] == module {
			return fields[1], nil
		}
	}
	return "", fmt.Errorf("%s is not in go.mod", module)
}

func goEnv(name string) (string, error) {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	return strings.TrimSpace(string(out)), nil
}

func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
