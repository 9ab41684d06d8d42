package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bcloud-dev/bcloud/internal/testenv"
)

// Names from the project's manifests (config/manager, config/certificates).
const (
	pluginName         = "barman-cloud.cloudnative-pg.io"
	pluginService      = "barman-cloud"
	pluginServerSecret = "barman-cloud-server-tls"
	pluginClientSecret = "barman-cloud-client-tls"
	// PluginImage is the image of config/manager/deployment.yaml, also
	// given as SIDECAR_IMAGE: the kubelet runs bcloud for it.
	PluginImage = "ghcr.io/bcloud-dev/bcloud:latest"
	// pluginPodName is the Pod standing in for the Deployment's ReplicaSet.
	pluginPodName = "barman-cloud-e2e"
)

// pluginHosts is the operator's /etc/hosts: the plugin Service's name,
// as the operator dials it (<service>.<namespace>.svc), on loopback.
func pluginHosts() string {
	return "127.0.0.1\tlocalhost\n127.0.0.1\t" + pluginService + "." + OperatorNamespace + ".svc\n"
}

// StartPlugin installs the plugin as config/ describes it, with the
// kubelet playing its Deployment's pod: the RBAC manifests, the two TLS
// Secrets cert-manager would issue, the pod (bcloud plugin operator,
// running as its ServiceAccount) and the annotated Service through which
// the operator discovers it. It waits until the operator has loaded it.
func (h *Harness) StartPlugin(ctx context.Context, k *Kubelet) error {
	begin := time.Now()
	defer h.step("start the plugin (bcloud plugin operator)", begin)
	root := testenv.RepoRoot()
	for _, f := range []string{"service_account.yaml", "role.yaml", "role_binding.yaml",
		"leader_election_role.yaml", "leader_election_role_binding.yaml"} {
		if err := h.applyFile(ctx, filepath.Join(root, "config", "rbac", f), nil); err != nil {
			return err
		}
	}
	server, err := selfSigned(pluginService, []string{pluginService}, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return err
	}
	clientKP, err := selfSigned(pluginService+"-client", nil, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return err
	}
	for name, kp := range map[string]keyPair{pluginServerSecret: server, pluginClientSecret: clientKP} {
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: OperatorNamespace, Name: name},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{corev1.TLSCertKey: kp.CertPEM, corev1.TLSPrivateKeyKey: kp.KeyPEM, "ca.crt": kp.CertPEM},
		}
		if err := h.Client.Create(ctx, s); err != nil {
			return fmt.Errorf("create secret %s: %w", name, err)
		}
	}
	port := freeTCPPort()
	pod, err := h.pluginPod(root, port)
	if err != nil {
		return err
	}
	if err := h.Client.Create(ctx, pod); err != nil {
		return fmt.Errorf("create plugin pod: %w", err)
	}
	if err := waitFor(ctx, time.Minute, func() (bool, error) {
		var p corev1.Pod
		if err := h.Client.Get(ctx, client.ObjectKeyFromObject(pod), &p); err != nil {
			return false, err
		}
		return podReady(&p), nil
	}); err != nil {
		return fmt.Errorf("plugin pod not ready: %w; kubelet: %v", err, k.Errors())
	}
	// The Service last: the operator loads the plugin as soon as it sees it.
	if err := h.applyFile(ctx, filepath.Join(root, "config", "manager", "service.yaml"), func(u *unstructured.Unstructured) {
		ann := u.GetAnnotations()
		ann["cnpg.io/pluginPort"] = strconv.Itoa(port)
		u.SetAnnotations(ann)
		_ = unstructured.SetNestedSlice(u.Object, []any{map[string]any{
			"name": "grpc", "port": int64(port), "protocol": "TCP", "targetPort": int64(port)}}, "spec", "ports")
	}); err != nil {
		return err
	}
	if err := waitFor(ctx, time.Minute, func() (bool, error) {
		return logContains(h.Operator.log, `"msg":"Registered plugin"`), nil
	}); err != nil {
		return fmt.Errorf("the operator did not register the plugin: %w", err)
	}
	return nil
}

// pluginPod turns config/manager/deployment.yaml's pod template into a
// Pod, with the gRPC server and the health probe on loopback ports (pods
// share the host network).
func (h *Harness) pluginPod(root string, port int) (*corev1.Pod, error) {
	raw, err := os.ReadFile(filepath.Join(root, "config", "manager", "deployment.yaml"))
	if err != nil {
		return nil, fmt.Errorf("read deployment manifest: %w", err)
	}
	var d appsv1.Deployment
	if err := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096).Decode(&d); err != nil {
		return nil, fmt.Errorf("decode deployment manifest: %w", err)
	}
	spec := d.Spec.Template.Spec
	c := &spec.Containers[0]
	var args []string
	for _, a := range c.Args {
		switch {
		case strings.HasPrefix(a, "--server-address="):
			a = "--server-address=127.0.0.1:" + strconv.Itoa(port)
		case strings.HasPrefix(a, "--log-level="):
			a = "--log-level=debug"
		}
		args = append(args, a)
	}
	c.Args = append(args, "--health-probe-bind-address=127.0.0.1:"+strconv.Itoa(freeTCPPort()))
	c.Ports = []corev1.ContainerPort{{Name: "grpc", ContainerPort: int32(port), Protocol: corev1.ProtocolTCP}}
	if c.ReadinessProbe != nil && c.ReadinessProbe.TCPSocket != nil {
		c.ReadinessProbe.TCPSocket.Port = intstr.FromInt32(int32(port))
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: OperatorNamespace, Name: pluginPodName, Labels: d.Spec.Template.Labels},
		Spec:       spec,
	}, nil
}

// applyFile creates the objects of a manifest file, after edit.
func (h *Harness) applyFile(ctx context.Context, path string, edit func(*unstructured.Unstructured)) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("decode %s: %w", path, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		if edit != nil {
			edit(&u)
		}
		if err := h.Client.Create(ctx, &u); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create %s %s from %s: %w", u.GetKind(), u.GetName(), filepath.Base(path), err)
		}
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// waitFor polls cond every 250ms until it holds, fails, or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			if last != nil {
				return fmt.Errorf("timed out after %s: %w", timeout, last)
			}
			return fmt.Errorf("timed out after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}
