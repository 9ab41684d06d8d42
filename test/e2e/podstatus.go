package e2e

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// report writes the Pod's status when it changed (Jobs report through the
// Job status only).
func (r *podRun) report(ctx context.Context) {
	if r.kind != "Pod" {
		return
	}
	st := r.podStatus()
	key := fmt.Sprintf("%s|%v", st.Phase, st.Conditions[len(st.Conditions)-1].Status)
	for _, cs := range append(append([]corev1.ContainerStatus{}, st.InitContainerStatuses...), st.ContainerStatuses...) {
		key += fmt.Sprintf("|%s:%v:%d:%v", cs.Name, cs.Ready, cs.RestartCount, cs.State.Terminated != nil)
	}
	if key == r.lastStatus {
		return
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var p corev1.Pod
		if err := r.k.h.Client.Get(ctx, client.ObjectKey{Namespace: r.ns, Name: r.name}, &p); err != nil {
			return err
		}
		st.QOSClass = p.Status.QOSClass // set by the API server at creation
		p.Status = st
		return r.k.h.Client.Status().Update(ctx, &p)
	})
	if err != nil {
		if !apierrors.IsNotFound(err) && ctx.Err() == nil {
			r.k.errorf("pod %s/%s: report status: %v", r.ns, r.name, err)
		}
		return
	}
	r.lastStatus = key
}

func (r *podRun) podStatus() corev1.PodStatus {
	now := metav1.Now()
	cond := func(t corev1.PodConditionType, ok bool) corev1.PodCondition {
		s := corev1.ConditionFalse
		if ok {
			s = corev1.ConditionTrue
		}
		return corev1.PodCondition{Type: t, Status: s, LastTransitionTime: now}
	}
	ready := r.initialized
	for _, cs := range r.mains {
		ready = ready && cs.ready
	}
	st := corev1.PodStatus{
		Phase:     corev1.PodPending,
		HostIP:    podIP,
		HostIPs:   []corev1.HostIP{{IP: podIP}},
		PodIP:     podIP,
		PodIPs:    []corev1.PodIP{{IP: podIP}},
		StartTime: &r.startedAt,
	}
	if r.initialized {
		st.Phase = corev1.PodRunning
	}
	st.Conditions = []corev1.PodCondition{
		cond(corev1.PodReadyToStartContainers, true),
		cond(corev1.PodInitialized, r.initialized),
		cond(corev1.PodScheduled, true),
		cond(corev1.ContainersReady, ready),
		cond(corev1.PodReady, ready),
	}
	for _, cs := range r.inits {
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs.status())
	}
	for _, cs := range r.mains {
		st.ContainerStatuses = append(st.ContainerStatuses, cs.status())
	}
	// Containers not started yet are Waiting.
	for i := len(r.mains); i < len(r.spec.Containers); i++ {
		c := r.spec.Containers[i]
		st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}})
	}
	return st
}

func (c *ctr) status() corev1.ContainerStatus {
	s := corev1.ContainerStatus{
		Name: c.spec.Name, Image: c.spec.Image, ImageID: c.spec.Image, Ready: c.ready,
		RestartCount: c.restarts, Started: ptrBool(c.exitCode == nil),
	}
	if c.p != nil {
		s.ContainerID = fmt.Sprintf("e2e://%d", c.p.cmd.Process.Pid)
	}
	switch {
	case c.exitCode != nil:
		reason := "Completed"
		if *c.exitCode != 0 {
			reason = "Error"
		}
		s.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: *c.exitCode, Reason: reason,
			StartedAt: c.startedAt, FinishedAt: c.endedAt, ContainerID: s.ContainerID}
	default:
		s.State.Running = &corev1.ContainerStateRunning{StartedAt: c.startedAt}
	}
	return s
}

func ptrBool(b bool) *bool { return &b }
