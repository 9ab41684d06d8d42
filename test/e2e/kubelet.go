package e2e

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// podIP is the address every pod gets: pods share the host's network
// namespace, so at most one PostgreSQL instance runs at a time.
const podIP = "127.0.0.1"

// NodeName is the one Node the harness registers and binds pods to.
const NodeName = "e2e-node"

// Kubelet plays the node for the Pods and Jobs the operator creates in
// the watched namespaces: it runs their containers as local processes
// (each in its own mount namespace), reports Pod status, completes Jobs,
// binds PersistentVolumeClaims and honours deletions.
type Kubelet struct {
	h           *Harness
	node        string
	uid, gid    int
	images      map[string]string   // image entry point -> host binary
	entrypoints map[string][]string // image -> entry point, for containers without a command
	ns          map[string]bool

	mu    sync.Mutex
	runs  map[types.UID]*podRun
	over  map[types.UID]bool // runs that ended: never started again
	errs  []string
	execs []string

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// StartKubelet registers the Node and starts reconciling the pods and jobs
// of the given namespaces. It stops with the test.
func (h *Harness) StartKubelet(t *testing.T, namespaces ...string) *Kubelet {
	t.Helper()
	pg, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("the pods run as the postgres user: %v", err)
	}
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	k := &Kubelet{
		h: h, node: NodeName, uid: uid, gid: gid,
		images:      map[string]string{"/manager": h.Manager, sidecarBinary: h.Bcloud},
		entrypoints: map[string][]string{PluginImage: {sidecarBinary}},
		ns:          map[string]bool{}, runs: map[types.UID]*podRun{}, over: map[types.UID]bool{},
	}
	for _, n := range namespaces {
		k.ns[n] = true
	}
	ctx, cancel := context.WithCancel(context.Background())
	k.cancel = cancel
	if err := k.registerNode(ctx); err != nil {
		t.Fatal(err)
	}
	k.wg.Add(1)
	go k.loop(ctx)
	t.Cleanup(k.Stop)
	return k
}

// Stop stops every pod and the reconcile loop.
func (k *Kubelet) Stop() {
	k.cancel()
	k.wg.Wait()
}

// Errors returns what went wrong in the background, for test failures.
func (k *Kubelet) Errors() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string{}, k.errs...)
}

func (k *Kubelet) errorf(format string, args ...any) {
	k.mu.Lock()
	defer k.mu.Unlock()
	msg := fmt.Sprintf(format, args...)
	if !slices.Contains(k.errs, msg) {
		k.errs = append(k.errs, msg)
	}
}

func (k *Kubelet) claimDir(ns, claim string) string {
	return filepath.Join(k.h.Dir, "pv", ns, claim)
}

func (k *Kubelet) registerNode(ctx context.Context) error {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: k.node, Labels: map[string]string{
			"kubernetes.io/hostname": k.node, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}},
	}
	if err := k.h.Client.Create(ctx, n); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("register node: %w", err)
	}
	port, err := k.serveKubeletAPI(ctx)
	if err != nil {
		return err
	}
	n.Status = corev1.NodeStatus{
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
			LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now(), Reason: "KubeletReady"}},
		// No Hostname address: the API server reaches the kubelet API (exec)
		// at the first preferred address type it finds, here 127.0.0.1.
		Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: podIP}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(port)}},
		Capacity:        corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("8Gi"), corev1.ResourcePods: resource.MustParse("110")},
	}
	n.Status.Allocatable = n.Status.Capacity
	if err := k.h.Client.Status().Update(ctx, n); err != nil {
		return fmt.Errorf("report node status: %w", err)
	}
	return nil
}

func (k *Kubelet) loop(ctx context.Context) {
	defer k.wg.Done()
	tick := time.NewTicker(300 * time.Millisecond)
	defer tick.Stop()
	for {
		if err := k.sync(ctx); err != nil && ctx.Err() == nil {
			k.errorf("sync: %v", err)
		}
		select {
		case <-ctx.Done():
			k.mu.Lock()
			runs := make([]*podRun, 0, len(k.runs))
			for _, r := range k.runs {
				runs = append(runs, r)
			}
			k.mu.Unlock()
			for _, r := range runs {
				r.cancel()
				<-r.done
			}
			return
		case <-tick.C:
		}
	}
}

// sync starts a run for each new Pod or Job, binds Pending claims, and
// stops the runs of deleted Pods.
func (k *Kubelet) sync(ctx context.Context) error {
	seen := map[types.UID]bool{}
	for ns := range k.ns {
		var pods corev1.PodList
		if err := k.h.Client.List(ctx, &pods, client.InNamespace(ns)); err != nil {
			return fmt.Errorf("list pods: %w", err)
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			seen[p.UID] = true
			if r := k.run(p.UID); r != nil {
				if p.DeletionTimestamp != nil {
					r.cancel()
				}
				continue
			}
			if p.DeletionTimestamp != nil {
				k.finalizeDeletion(ctx, p.Namespace, p.Name)
				continue
			}
			if k.ended(p.UID) {
				continue
			}
			k.startRun(ctx, "Pod", p.ObjectMeta, p.Spec)
		}
		var jobs batchv1.JobList
		if err := k.h.Client.List(ctx, &jobs, client.InNamespace(ns)); err != nil {
			return fmt.Errorf("list jobs: %w", err)
		}
		for i := range jobs.Items {
			j := &jobs.Items[i]
			seen[j.UID] = true
			if k.run(j.UID) != nil || k.ended(j.UID) || jobFinished(j) || j.DeletionTimestamp != nil {
				continue
			}
			meta := j.Spec.Template.ObjectMeta
			meta.Name, meta.Namespace, meta.UID = j.Name, j.Namespace, j.UID
			k.startRun(ctx, "Job", meta, j.Spec.Template.Spec)
		}
		if err := k.bindClaims(ctx, ns); err != nil {
			return err
		}
	}
	k.mu.Lock()
	for uid, r := range k.runs {
		if !seen[uid] {
			r.cancel()
		}
	}
	k.mu.Unlock()
	return nil
}

func (k *Kubelet) run(uid types.UID) *podRun {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.runs[uid]
}

func (k *Kubelet) ended(uid types.UID) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.over[uid]
}

func (k *Kubelet) startRun(parent context.Context, kind string, meta metav1.ObjectMeta, spec corev1.PodSpec) {
	ctx, cancel := context.WithCancel(parent)
	r := &podRun{
		k: k, kind: kind, ns: meta.Namespace, name: meta.Name, uid: meta.UID,
		labels: meta.Labels, annotations: meta.Annotations, spec: spec,
		dir:    filepath.Join(k.h.Dir, "pods", meta.Namespace+"_"+meta.Name+"_"+string(meta.UID)[:8]),
		cancel: cancel, done: make(chan struct{}),
	}
	k.mu.Lock()
	k.runs[meta.UID] = r
	k.mu.Unlock()
	go func() {
		defer close(r.done)
		defer func() {
			k.mu.Lock()
			delete(k.runs, meta.UID)
			k.over[meta.UID] = true
			k.mu.Unlock()
		}()
		if err := r.run(ctx); err != nil && ctx.Err() == nil {
			k.errorf("%s %s/%s: %v", kind, meta.Namespace, meta.Name, err)
		}
	}()
}

// finalizeDeletion removes a Pod whose containers have stopped, as the
// kubelet does once graceful termination is over.
func (k *Kubelet) finalizeDeletion(ctx context.Context, ns, name string) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := k.h.Client.Delete(ctx, p, client.GracePeriodSeconds(0)); err != nil && !apierrors.IsNotFound(err) {
		k.errorf("delete pod %s/%s: %v", ns, name, err)
	}
}

// bindClaims binds Pending PersistentVolumeClaims, as a volume provisioner
// would: the claim's directory under the harness is the volume.
func (k *Kubelet) bindClaims(ctx context.Context, ns string) error {
	var pvcs corev1.PersistentVolumeClaimList
	if err := k.h.Client.List(ctx, &pvcs, client.InNamespace(ns)); err != nil {
		return fmt.Errorf("list claims: %w", err)
	}
	for i := range pvcs.Items {
		c := &pvcs.Items[i]
		if c.Status.Phase == corev1.ClaimBound || c.DeletionTimestamp != nil {
			continue
		}
		if err := os.MkdirAll(k.claimDir(ns, c.Name), 0o700); err != nil {
			return fmt.Errorf("create volume of %s: %w", c.Name, err)
		}
		c.Status.Phase = corev1.ClaimBound
		c.Status.AccessModes = c.Spec.AccessModes
		c.Status.Capacity = c.Spec.Resources.Requests
		if err := k.h.Client.Status().Update(ctx, c); err != nil && !apierrors.IsConflict(err) {
			return fmt.Errorf("bind claim %s: %w", c.Name, err)
		}
	}
	return nil
}

func jobFinished(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}
