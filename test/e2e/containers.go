package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// pgBinDir holds the PostgreSQL binaries the instance manager finds on
// PATH, as in the postgres image.
const pgBinDir = "/usr/lib/postgresql/15/bin"

// saMountPath is where a pod finds its ServiceAccount token, CA and
// namespace (rest.InClusterConfig reads /var/run/secrets/..., and /var/run
// is /run on the host).
const saMountPath = "/run/secrets/kubernetes.io/serviceaccount"

// prepareVolumes makes a host directory for each volume of the pod:
// PersistentVolumeClaims live in the harness across pods (the claim is
// the volume), emptyDirs in the pod's directory, and Secret, ConfigMap and
// projected volumes are written from the API objects. It also prepares the
// ServiceAccount token directory.
func (r *podRun) prepareVolumes(ctx context.Context) error {
	r.vols = map[string]string{}
	for _, v := range r.spec.Volumes {
		var dir string
		switch {
		case v.PersistentVolumeClaim != nil:
			dir = r.k.claimDir(r.ns, v.PersistentVolumeClaim.ClaimName)
		default:
			dir = filepath.Join(r.dir, "volumes", v.Name)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create volume %s: %w", v.Name, err)
		}
		var err error
		switch {
		case v.Secret != nil:
			err = r.writeSecret(ctx, dir, v.Secret.SecretName, v.Secret.Items)
		case v.ConfigMap != nil:
			err = r.writeConfigMap(ctx, dir, v.ConfigMap.Name, v.ConfigMap.Items)
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				switch {
				case src.Secret != nil:
					err = r.writeSecret(ctx, dir, src.Secret.Name, src.Secret.Items)
				case src.ConfigMap != nil:
					err = r.writeConfigMap(ctx, dir, src.ConfigMap.Name, src.ConfigMap.Items)
				}
				if err != nil {
					break
				}
			}
		}
		if err != nil {
			return fmt.Errorf("volume %s: %w", v.Name, err)
		}
		// The kubelet gives volumes to the pod's fsGroup; the harness runs
		// every container as one unprivileged user, which owns them.
		if err := chownTree(dir, r.k.uid, r.k.gid); err != nil {
			return err
		}
		r.vols[v.Name] = dir
	}
	if r.spec.ServiceAccountName != "" {
		sa := filepath.Join(r.dir, "serviceaccount")
		if err := os.MkdirAll(sa, 0o755); err != nil {
			return fmt.Errorf("create token directory: %w", err)
		}
		token, err := serviceAccountToken(ctx, r.k.h.CS, r.ns, r.spec.ServiceAccountName)
		if err != nil {
			return err
		}
		files := map[string][]byte{"token": []byte(token), "ca.crt": r.k.h.Cfg.CAData, "namespace": []byte(r.ns)}
		for name, b := range files {
			if err := os.WriteFile(filepath.Join(sa, name), b, 0o644); err != nil {
				return fmt.Errorf("write %s: %w", name, err)
			}
		}
		r.saDir = sa
	}
	return nil
}

func (r *podRun) writeSecret(ctx context.Context, dir, name string, items []corev1.KeyToPath) error {
	var s corev1.Secret
	if err := r.k.h.Client.Get(ctx, types.NamespacedName{Namespace: r.ns, Name: name}, &s); err != nil {
		return fmt.Errorf("get secret %s: %w", name, err)
	}
	return writeKeys(dir, s.Data, items)
}

func (r *podRun) writeConfigMap(ctx context.Context, dir, name string, items []corev1.KeyToPath) error {
	var cm corev1.ConfigMap
	if err := r.k.h.Client.Get(ctx, types.NamespacedName{Namespace: r.ns, Name: name}, &cm); err != nil {
		return fmt.Errorf("get config map %s: %w", name, err)
	}
	data := map[string][]byte{}
	for k, v := range cm.Data {
		data[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		data[k] = v
	}
	return writeKeys(dir, data, items)
}

func writeKeys(dir string, data map[string][]byte, items []corev1.KeyToPath) error {
	write := func(key, path string) error {
		p := filepath.Join(dir, path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("create %s: %w", filepath.Dir(p), err)
		}
		if err := os.WriteFile(p, data[key], 0o600); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	}
	if len(items) == 0 {
		for k := range data {
			if err := write(k, k); err != nil {
				return err
			}
		}
		return nil
	}
	for _, it := range items {
		if err := write(it.Key, it.Path); err != nil {
			return err
		}
	}
	return nil
}

func chownTree(dir string, uid, gid int) error {
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return fmt.Errorf("chown %s: %w", p, err)
		}
		return nil
	})
}

// binds returns the bind mounts of a container: its volume mounts, then
// the ServiceAccount directory. A mount point inside an earlier mount is
// created in that volume (as a container runtime does); one on the host's
// root file system (/controller, /plugins...) is created there once, empty.
func (r *podRun) binds(c *corev1.Container) ([]bindMount, error) {
	var out []bindMount
	add := func(source, target string) error {
		host := target
		for i := len(out) - 1; i >= 0; i-- {
			if rel, ok := within(out[i].Target, target); ok {
				host = filepath.Join(out[i].Source, rel)
				break
			}
		}
		if err := os.MkdirAll(host, 0o755); err != nil {
			return fmt.Errorf("create mount point %s: %w", target, err)
		}
		out = append(out, bindMount{Source: source, Target: target})
		return nil
	}
	mounts := append([]corev1.VolumeMount{}, c.VolumeMounts...)
	// Parents first, so that nested mounts land inside their parent.
	sort.SliceStable(mounts, func(i, j int) bool { return depth(mounts[i].MountPath) < depth(mounts[j].MountPath) })
	for _, m := range mounts {
		src, ok := r.vols[m.Name]
		if !ok {
			return nil, fmt.Errorf("container %s mounts unknown volume %s", c.Name, m.Name)
		}
		if m.SubPath != "" {
			src = filepath.Join(src, m.SubPath)
		}
		if err := add(src, m.MountPath); err != nil {
			return nil, err
		}
	}
	if r.saDir != "" {
		if err := add(r.saDir, saMountPath); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func within(parent, p string) (string, bool) {
	rel, err := filepath.Rel(parent, p)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return "", false
	}
	return rel, true
}

func depth(p string) int { return strings.Count(filepath.Clean(p), "/") }

// containerEnv resolves a container's environment as the kubelet does,
// on top of the image's (PATH with the PostgreSQL binaries) and the
// in-cluster API server variables.
func (r *podRun) containerEnv(ctx context.Context, c *corev1.Container) ([]string, error) {
	vars := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	set("PATH", pgBinDir+":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	set("HOME", "/controller")
	set("LANG", "C.UTF-8")
	u := r.k.h.Cfg.Host
	u = strings.TrimPrefix(u, "https://")
	host, port, _ := strings.Cut(u, ":")
	set("KUBERNETES_SERVICE_HOST", host)
	set("KUBERNETES_SERVICE_PORT", port)
	for _, ef := range c.EnvFrom {
		var data map[string][]byte
		switch {
		case ef.SecretRef != nil:
			var s corev1.Secret
			if err := r.k.h.Client.Get(ctx, types.NamespacedName{Namespace: r.ns, Name: ef.SecretRef.Name}, &s); err != nil {
				return nil, fmt.Errorf("envFrom secret %s: %w", ef.SecretRef.Name, err)
			}
			data = s.Data
		case ef.ConfigMapRef != nil:
			var cm corev1.ConfigMap
			if err := r.k.h.Client.Get(ctx, types.NamespacedName{Namespace: r.ns, Name: ef.ConfigMapRef.Name}, &cm); err != nil {
				return nil, fmt.Errorf("envFrom config map %s: %w", ef.ConfigMapRef.Name, err)
			}
			data = map[string][]byte{}
			for k, v := range cm.Data {
				data[k] = []byte(v)
			}
		}
		for k, v := range data {
			set(ef.Prefix+k, string(v))
		}
	}
	for _, e := range c.Env {
		v, err := r.envValue(ctx, e)
		if err != nil {
			return nil, err
		}
		set(e.Name, v)
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		out = append(out, k+"="+vars[k])
	}
	return out, nil
}

func (r *podRun) envValue(ctx context.Context, e corev1.EnvVar) (string, error) {
	vf := e.ValueFrom
	switch {
	case vf == nil:
		return e.Value, nil
	case vf.SecretKeyRef != nil:
		var s corev1.Secret
		if err := r.k.h.Client.Get(ctx, types.NamespacedName{Namespace: r.ns, Name: vf.SecretKeyRef.Name}, &s); err != nil {
			return "", fmt.Errorf("env %s: get secret %s: %w", e.Name, vf.SecretKeyRef.Name, err)
		}
		return string(s.Data[vf.SecretKeyRef.Key]), nil
	case vf.ConfigMapKeyRef != nil:
		var cm corev1.ConfigMap
		if err := r.k.h.Client.Get(ctx, types.NamespacedName{Namespace: r.ns, Name: vf.ConfigMapKeyRef.Name}, &cm); err != nil {
			return "", fmt.Errorf("env %s: get config map %s: %w", e.Name, vf.ConfigMapKeyRef.Name, err)
		}
		return cm.Data[vf.ConfigMapKeyRef.Key], nil
	case vf.FieldRef != nil:
		switch p := vf.FieldRef.FieldPath; {
		case p == "metadata.name":
			return r.name, nil
		case p == "metadata.namespace":
			return r.ns, nil
		case p == "status.podIP", p == "status.hostIP":
			return podIP, nil
		case p == "spec.nodeName":
			return r.k.node, nil
		case p == "spec.serviceAccountName":
			return r.spec.ServiceAccountName, nil
		case strings.HasPrefix(p, "metadata.labels['"):
			return r.labels[strings.TrimSuffix(strings.TrimPrefix(p, "metadata.labels['"), "']")], nil
		case strings.HasPrefix(p, "metadata.annotations['"):
			return r.annotations[strings.TrimSuffix(strings.TrimPrefix(p, "metadata.annotations['"), "']")], nil
		}
		return "", fmt.Errorf("env %s: field %s is not supported by the harness", e.Name, vf.FieldRef.FieldPath)
	}
	return "", fmt.Errorf("env %s: resource field references are not supported by the harness", e.Name)
}

// argv maps a container's command to host binaries: the image entry points
// (/manager in the operator image, bcloud in the plugin image) become the
// binaries the harness runs; anything else (/controller/manager) is found
// inside the container's mounts.
func (r *podRun) argv(c *corev1.Container) ([]string, string, error) {
	cmd := append(append([]string{}, c.Command...), c.Args...)
	if len(c.Command) == 0 {
		ep, ok := r.k.entrypoints[c.Image]
		if !ok {
			return nil, "", fmt.Errorf("container %s has no command and the harness does not know the entry point of %s", c.Name, c.Image)
		}
		cmd = append(append([]string{}, ep...), c.Args...)
	}
	dir := c.WorkingDir
	if host, ok := r.k.images[cmd[0]]; ok {
		cmd[0] = host
		if dir == "" {
			// `manager bootstrap` copies ./manager, as from / in its image.
			dir = filepath.Dir(host)
		}
	}
	if dir == "" {
		dir = "/"
	}
	return cmd, dir, nil
}
