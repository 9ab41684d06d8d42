package operator

import (
	"errors"
	"path"

	corev1 "k8s.io/api/core/v1"

	apiv1 "github.com/bcloud-dev/bcloud/api/v1"
	"github.com/bcloud-dev/bcloud/internal/cnpgi"
)

// BinaryPath is where the image (Dockerfile) holds the bcloud binary; the injected
// container runs it with the plugin sub-commands.
const BinaryPath = "/usr/local/bin/bcloud"

const (
	pluginsVolume      = "plugins"
	certificatesVolume = "barman-certificates"
)

// Sidecar describes the container injected into a Pod spec.
type Sidecar struct {
	Image string
	// Args follow `bcloud plugin`: "instance" or "restore", then extras.
	Args      []string
	Resources corev1.ResourceRequirements
	// Env comes after the main container's env and the plugin's own
	// variables; the first definition of a name wins.
	Env []corev1.EnvVar
	// Certificates project the endpoint CA of each ObjectStore.
	Certificates []corev1.VolumeProjection
}

// inject adds the sidecar to spec as a native sidecar (an init container
// with restartPolicy Always, so its socket exists before PostgreSQL
// starts), with the main container's env and mounts, the plugins socket
// volume and the certificates volume, as upstream's lifecycle hook does.
func inject(spec *corev1.PodSpec, cluster *cnpgi.Cluster, main string, sc Sidecar) error {
	mi := -1
	for i := range spec.Containers {
		if spec.Containers[i].Name == main {
			mi = i
		}
	}
	if mi < 0 {
		return errors.New("the pod has no container named " + main)
	}
	gvk := cluster.GroupVersionKind()
	no, yes := false, true
	always := corev1.ContainerRestartPolicyAlways
	c := corev1.Container{
		Name:            cnpgi.SidecarName,
		Image:           sc.Image,
		ImagePullPolicy: cluster.Spec.ImagePullPolicy,
		Command:         []string{BinaryPath},
		Args:            append([]string{"plugin"}, sc.Args...),
		Resources:       sc.Resources,
		RestartPolicy:   &always,
		StartupProbe: &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{
				Command: []string{BinaryPath, "plugin", "healthcheck", "unix"},
			}},
			PeriodSeconds: 1, FailureThreshold: 30, TimeoutSeconds: 5,
		},
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: &no, RunAsNonRoot: &yes, Privileged: &no, ReadOnlyRootFilesystem: &yes,
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
	own := []corev1.EnvVar{
		{Name: "NAMESPACE", Value: cluster.Namespace},
		{Name: "CLUSTER_NAME", Value: cluster.Name},
		{Name: "SPOOL_DIRECTORY", Value: cnpgi.DefaultSpoolDir},
		{Name: "CUSTOM_CNPG_GROUP", Value: gvk.Group},
		{Name: "CUSTOM_CNPG_VERSION", Value: gvk.Version},
	}
	for _, group := range [][]corev1.EnvVar{spec.Containers[mi].Env, own, sc.Env} {
		for _, e := range group {
			if !hasEnv(c.Env, e.Name) {
				c.Env = append(c.Env, e)
			}
		}
	}

	spec.Volumes = setVolume(spec.Volumes, corev1.Volume{Name: pluginsVolume,
		VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}, true)
	plugins := corev1.VolumeMount{Name: pluginsVolume, MountPath: cnpgi.DefaultPluginPath}
	spec.Containers[mi].VolumeMounts = setMount(spec.Containers[mi].VolumeMounts, plugins)
	c.VolumeMounts = append(c.VolumeMounts, spec.Containers[mi].VolumeMounts...)

	certs := corev1.Volume{Name: certificatesVolume, VolumeSource: corev1.VolumeSource{
		Projected: &corev1.ProjectedVolumeSource{Sources: sc.Certificates}}}
	if len(sc.Certificates) > 0 {
		spec.Volumes = setVolume(spec.Volumes, certs, false)
		c.VolumeMounts = setMount(c.VolumeMounts, corev1.VolumeMount{Name: certificatesVolume, MountPath: cnpgi.CertificatesDir})
	} else {
		spec.Volumes = dropVolume(spec.Volumes, certificatesVolume)
	}

	for i := range spec.InitContainers {
		if spec.InitContainers[i].Name == c.Name {
			spec.InitContainers[i] = c
			return nil
		}
	}
	spec.InitContainers = append(spec.InitContainers, c)
	return nil
}

// certificates projects the endpointCA Secret key of each ObjectStore to
// <name>/barman-ca.crt, where the sidecar looks for it.
func certificates(stores []apiv1.ObjectStore) []corev1.VolumeProjection {
	var out []corev1.VolumeProjection
	for _, os := range stores {
		ca := os.Spec.Configuration.EndpointCA
		if ca == nil {
			continue
		}
		out = append(out, corev1.VolumeProjection{Secret: &corev1.SecretProjection{
			LocalObjectReference: corev1.LocalObjectReference{Name: ca.Name},
			Items:                []corev1.KeyToPath{{Key: ca.Key, Path: path.Join(os.Name, cnpgi.CertificateFile)}},
		}})
	}
	return out
}

func hasEnv(env []corev1.EnvVar, name string) bool {
	for _, e := range env {
		if e.Name == name {
			return true
		}
	}
	return false
}

// setVolume adds v, or replaces a volume of the same name unless keep.
func setVolume(vols []corev1.Volume, v corev1.Volume, keep bool) []corev1.Volume {
	for i := range vols {
		if vols[i].Name == v.Name {
			if !keep {
				vols[i] = v
			}
			return vols
		}
	}
	return append(vols, v)
}

func setMount(mounts []corev1.VolumeMount, m corev1.VolumeMount) []corev1.VolumeMount {
	for i := range mounts {
		if mounts[i].Name == m.Name {
			mounts[i] = m
			return mounts
		}
	}
	return append(mounts, m)
}

func dropVolume(vols []corev1.Volume, name string) []corev1.Volume {
	var out []corev1.Volume
	for _, v := range vols {
		if v.Name != name {
			out = append(out, v)
		}
	}
	return out
}
