package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// sidecarBinary is the entry point of the plugin image (Dockerfile).
const sidecarBinary = "/usr/local/bin/bcloud"

// podRun is one Pod (or the one pod of a Job) being played.
type podRun struct {
	k                   *Kubelet
	kind, ns, name      string
	uid                 types.UID
	labels, annotations map[string]string
	spec                corev1.PodSpec
	dir                 string
	vols                map[string]string
	saDir               string
	cancel              context.CancelFunc
	done                chan struct{}

	startedAt   metav1.Time
	initialized bool
	inits       []*ctr
	mains       []*ctr
	lastStatus  string
}

// ctr is one container: its process and what the kubelet reports.
type ctr struct {
	spec      *corev1.Container
	p         *proc
	sidecar   bool
	restarts  int32
	ready     bool
	startedAt metav1.Time
	exitCode  *int32
	endedAt   metav1.Time
}

func (r *podRun) run(ctx context.Context) error {
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return fmt.Errorf("create pod directory: %w", err)
	}
	r.startedAt = metav1.Now()
	defer r.stopAll()
	if r.kind == "Pod" {
		if err := r.bind(ctx); err != nil {
			return err
		}
		defer r.k.finalizeDeletion(context.Background(), r.ns, r.name)
	} else if err := r.updateJob(ctx, nil); err != nil {
		return err
	}
	if err := r.prepareVolumes(ctx); err != nil {
		return r.fail(ctx, err)
	}
	for i := range r.spec.InitContainers {
		c := &r.spec.InitContainers[i]
		sidecar := c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
		cs := &ctr{spec: c, sidecar: sidecar}
		r.inits = append(r.inits, cs)
		if err := r.start(ctx, cs); err != nil {
			return r.fail(ctx, err)
		}
		r.report(ctx)
		if sidecar {
			if err := r.waitStartup(ctx, cs); err != nil {
				return r.fail(ctx, err)
			}
			continue
		}
		if err := cs.p.wait(10 * time.Minute); err != nil {
			r.ended(cs)
			return r.fail(ctx, fmt.Errorf("init container %s: %w:\n%s", c.Name, err, cs.p.tail(20)))
		}
		r.ended(cs)
	}
	r.initialized = true
	for i := range r.spec.Containers {
		cs := &ctr{spec: &r.spec.Containers[i]}
		r.mains = append(r.mains, cs)
		if err := r.start(ctx, cs); err != nil {
			return r.fail(ctx, err)
		}
	}
	r.report(ctx)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for _, cs := range r.containers() {
			if done, _ := cs.p.exited(); !done || cs.exitCode != nil {
				continue
			}
			r.ended(cs)
			if r.kind == "Job" && !cs.sidecar {
				continue
			}
			// Pods (restartPolicy Always) and native sidecars: the kubelet
			// restarts the container after a back-off that doubles up to
			// 20s (CrashLoopBackOff).
			r.report(ctx)
			backoff := min(time.Second<<min(cs.restarts, 5), 20*time.Second)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			cs.restarts++
			cs.exitCode = nil
			if err := r.start(ctx, cs); err != nil {
				return r.fail(ctx, err)
			}
			cs.ready = !cs.sidecar || cs.spec.StartupProbe == nil
		}
		for _, cs := range r.inits {
			if cs.sidecar && !cs.ready && cs.exitCode == nil {
				cs.ready = r.probe(ctx, cs, cs.spec.StartupProbe)
			}
		}
		if r.kind == "Job" && r.allEnded() {
			r.stopAll()
			var failed error
			for _, cs := range r.mains {
				if *cs.exitCode != 0 {
					failed = fmt.Errorf("container %s exited with %d:\n%s", cs.spec.Name, *cs.exitCode, cs.p.tail(20))
				}
			}
			return r.updateJob(ctx, &failed)
		}
		for _, cs := range r.mains {
			cs.ready = cs.exitCode == nil && r.probe(ctx, cs, cs.spec.ReadinessProbe)
		}
		r.report(ctx)
	}
}

// containers returns the native sidecars and the main containers: those
// that keep running.
func (r *podRun) containers() []*ctr {
	var out []*ctr
	for _, cs := range r.inits {
		if cs.sidecar {
			out = append(out, cs)
		}
	}
	return append(out, r.mains...)
}

func (r *podRun) allEnded() bool {
	for _, cs := range r.mains {
		if cs.exitCode == nil {
			return false
		}
	}
	return true
}

// start runs a container in its own mount namespace, as the pod's user.
func (r *podRun) start(ctx context.Context, cs *ctr) error {
	c := cs.spec
	argv, dir, err := r.argv(c)
	if err != nil {
		return err
	}
	env, err := r.containerEnv(ctx, c)
	if err != nil {
		return err
	}
	binds, err := r.binds(c)
	if err != nil {
		return err
	}
	cmd, err := nsCommand(nsSpec{Binds: binds, UID: r.k.uid, GID: r.k.gid, Argv: argv, Dir: dir}, env)
	if err != nil {
		return err
	}
	p, err := startProc(r.name+"/"+c.Name, cmd, filepath.Join(r.dir, c.Name+".log"))
	if err != nil {
		return err
	}
	cs.p, cs.startedAt = p, metav1.Now()
	return nil
}

func (r *podRun) ended(cs *ctr) {
	_, err := cs.p.exited()
	code := int32(exitCode(err))
	cs.exitCode, cs.endedAt, cs.ready = &code, metav1.Now(), false
}

// waitStartup runs a sidecar's startup probe until it passes.
func (r *podRun) waitStartup(ctx context.Context, cs *ctr) error {
	pr := cs.spec.StartupProbe
	if pr == nil {
		cs.ready = true
		return nil
	}
	period := time.Duration(max(pr.PeriodSeconds, 1)) * time.Second
	deadline := time.Now().Add(time.Duration(max(pr.FailureThreshold, 30)) * period)
	for time.Now().Before(deadline) {
		if done, err := cs.p.exited(); done {
			return fmt.Errorf("sidecar %s exited (%v):\n%s", cs.spec.Name, err, cs.p.tail(20))
		}
		if r.probe(ctx, cs, pr) {
			cs.ready = true
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(period):
		}
	}
	return fmt.Errorf("sidecar %s: startup probe failed:\n%s", cs.spec.Name, cs.p.tail(20))
}

// probe runs an HTTP, TCP or exec probe once; no probe means ready.
func (r *podRun) probe(ctx context.Context, cs *ctr, pr *corev1.Probe) bool {
	if pr == nil {
		return true
	}
	timeout := time.Duration(max(pr.TimeoutSeconds, 1)) * time.Second
	switch {
	case pr.HTTPGet != nil:
		port := r.port(cs.spec, pr.HTTPGet.Port.IntValue(), pr.HTTPGet.Port.StrVal)
		scheme := "http"
		if pr.HTTPGet.Scheme == corev1.URISchemeHTTPS {
			scheme = "https"
		}
		hc := &http.Client{Timeout: timeout, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // as the kubelet's probes
		resp, err := hc.Get(fmt.Sprintf("%s://%s:%d%s", scheme, podIP, port, pr.HTTPGet.Path))
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode >= 200 && resp.StatusCode < 400
	case pr.TCPSocket != nil:
		port := r.port(cs.spec, pr.TCPSocket.Port.IntValue(), pr.TCPSocket.Port.StrVal)
		c, err := net.DialTimeout("tcp", net.JoinHostPort(podIP, strconv.Itoa(port)), timeout)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	case pr.Exec != nil:
		probe := *cs.spec
		probe.Command, probe.Args = pr.Exec.Command, nil
		argv, dir, err := r.argv(&probe)
		if err != nil {
			return false
		}
		env, err := r.containerEnv(ctx, &probe)
		if err != nil {
			return false
		}
		binds, err := r.binds(&probe)
		if err != nil {
			return false
		}
		cmd, err := nsCommand(nsSpec{Binds: binds, UID: r.k.uid, GID: r.k.gid, Argv: argv, Dir: dir}, env)
		if err != nil {
			return false
		}
		p, err := startProc(r.name+"/"+cs.spec.Name+"-probe", cmd, filepath.Join(r.dir, cs.spec.Name+"-probe.log"))
		if err != nil {
			return false
		}
		return p.wait(timeout+5*time.Second) == nil
	}
	return true
}

func (r *podRun) port(c *corev1.Container, n int, name string) int {
	if name == "" {
		return n
	}
	for _, p := range c.Ports {
		if p.Name == name {
			return int(p.ContainerPort)
		}
	}
	return 0
}

// stopAll stops the main containers, then the sidecars, in reverse order.
func (r *podRun) stopAll() {
	grace := 30 * time.Second
	if g := r.spec.TerminationGracePeriodSeconds; g != nil && *g < 30 {
		grace = time.Duration(*g) * time.Second
	}
	for _, cs := range r.mains {
		cs.p.stop(grace)
	}
	for i := len(r.inits) - 1; i >= 0; i-- {
		r.inits[i].p.stop(grace)
	}
}

func (r *podRun) fail(ctx context.Context, err error) error {
	if r.kind == "Job" {
		if uerr := r.updateJob(ctx, &err); uerr != nil {
			return fmt.Errorf("%w (and %w)", err, uerr)
		}
	}
	return err
}

// bind schedules the Pod on the harness's Node.
func (r *podRun) bind(ctx context.Context) error {
	b := &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: r.name},
		Target:     corev1.ObjectReference{Kind: "Node", Name: r.k.node},
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: r.ns, Name: r.name}}
	if err := r.k.h.Client.SubResource("binding").Create(ctx, pod, b); err != nil && !apierrors.IsConflict(err) {
		return fmt.Errorf("bind pod to %s: %w", r.k.node, err)
	}
	return nil
}

// updateJob reports a Job started (result nil), succeeded (*result nil)
// or failed.
func (r *podRun) updateJob(ctx context.Context, result *error) error {
	var j batchv1.Job
	if err := r.k.h.Client.Get(ctx, client.ObjectKey{Namespace: r.ns, Name: r.name}, &j); err != nil {
		return fmt.Errorf("get job: %w", err)
	}
	now := metav1.Now()
	if j.Status.StartTime == nil {
		j.Status.StartTime = &r.startedAt
	}
	j.Status.Ready, j.Status.Terminating = ptr.To[int32](0), ptr.To[int32](0)
	switch {
	case result == nil:
		j.Status.Active = 1
	case *result == nil:
		j.Status.Active, j.Status.Succeeded, j.Status.CompletionTime = 0, 1, &now
		j.Status.Conditions = append(j.Status.Conditions,
			batchv1.JobCondition{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, Reason: "CompletionsReached",
				Message: "Reached expected number of succeeded pods", LastProbeTime: now, LastTransitionTime: now},
			batchv1.JobCondition{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, Reason: "CompletionsReached",
				Message: "Reached expected number of succeeded pods", LastProbeTime: now, LastTransitionTime: now})
	default:
		j.Status.Active, j.Status.Failed = 0, 1
		j.Status.Conditions = append(j.Status.Conditions,
			batchv1.JobCondition{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded",
				Message: "Job has reached the specified backoff limit", LastProbeTime: now, LastTransitionTime: now},
			batchv1.JobCondition{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded",
				Message: "Job has reached the specified backoff limit", LastProbeTime: now, LastTransitionTime: now})
		r.k.errorf("job %s/%s failed: %v", r.ns, r.name, *result)
	}
	if err := r.k.h.Client.Status().Update(ctx, &j); err != nil {
		return fmt.Errorf("update job status: %w", err)
	}
	return nil
}

// command prepares a command in a container of a running Pod, as the
// kubelet's exec does: same mounts, environment and user.
func (k *Kubelet) command(ctx context.Context, ns, pod, container string, argv []string) (*exec.Cmd, error) {
	var r *podRun
	k.mu.Lock()
	for _, run := range k.runs {
		if run.ns == ns && run.name == pod && run.kind == "Pod" {
			r = run
		}
	}
	k.mu.Unlock()
	if r == nil {
		return nil, fmt.Errorf("pod %s/%s is not running", ns, pod)
	}
	var spec *corev1.Container
	for i := range r.spec.Containers {
		if r.spec.Containers[i].Name == container {
			spec = &r.spec.Containers[i]
		}
	}
	if spec == nil {
		return nil, fmt.Errorf("pod %s/%s has no container %s", ns, pod, container)
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("exec in %s/%s: empty command", ns, pod)
	}
	c := *spec
	c.Command, c.Args = argv, nil
	env, err := r.containerEnv(ctx, &c)
	if err != nil {
		return nil, err
	}
	binds, err := r.binds(&c)
	if err != nil {
		return nil, err
	}
	cmd, err := nsCommand(nsSpec{Binds: binds, UID: k.uid, GID: k.gid, Argv: argv, Dir: "/"}, env)
	if err != nil {
		return nil, err
	}
	cmd.SysProcAttr.Setpgid = false
	return cmd, nil
}

// Exec runs a command in a container of a running Pod, as `kubectl exec`
// does, and returns the combined output.
func (k *Kubelet) Exec(ctx context.Context, ns, pod, container string, argv ...string) (string, error) {
	cmd, err := k.command(ctx, ns, pod, container, argv)
	if err != nil {
		return "", err
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("exec %v in %s/%s: %w: %s", argv, ns, pod, err, out)
	}
	return string(out), nil
}

// PSQL runs SQL on the instance Pod's PostgreSQL as the postgres user,
// through its socket, and returns the unaligned output.
func (k *Kubelet) PSQL(ctx context.Context, ns, pod, sql string) (string, error) {
	return k.Exec(ctx, ns, pod, "postgres", "psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c", sql)
}
