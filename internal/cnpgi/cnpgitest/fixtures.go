package cnpgitest

import (
	"encoding/json"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PluginName is the plugin's name as Clusters spell it.
const PluginName = "barman-cloud.cloudnative-pg.io"

// Cluster is a CloudNativePG Cluster as the operator marshals it, built
// as plain JSON so that tests do not share the plugin's own types.
type Cluster struct {
	Name, Namespace, UID string
	// TypeMeta adds kind and apiVersion; objects from the operator's
	// cache often lack them.
	TypeMeta bool
	// Archive: spec.plugins entry with these parameters (nil = none).
	Archive map[string]string
	// Enabled false disables the spec.plugins entry.
	Enabled *bool
	// Recovery: bootstrap.recovery from an external cluster "origin"
	// using this plugin with these parameters (nil = none).
	Recovery       map[string]string
	RecoveryTarget map[string]any
	// Replica: spec.replica from an external cluster "source" with these
	// plugin parameters; ReplicaConn adds connectionParameters.
	Replica        map[string]string
	ReplicaConn    bool
	CurrentPrimary string
	Annotations    map[string]string
	WALStorage     bool
	PullPolicy     string
}

// JSON returns the Cluster's JSON.
func (c Cluster) JSON(t testing.TB) []byte {
	t.Helper()
	meta := map[string]any{"name": c.Name, "namespace": c.Namespace, "uid": c.UID,
		"resourceVersion": "4242", "generation": 3, "creationTimestamp": "2026-01-02T03:04:05Z"}
	if len(c.Annotations) > 0 {
		meta["annotations"] = c.Annotations
	}
	spec := map[string]any{
		"instances": 3, "imageName": "ghcr.io/cloudnative-pg/postgresql:15",
		"storage":               map[string]any{"size": "1Gi"},
		"postgresql":            map[string]any{"parameters": map[string]any{"max_connections": "100"}},
		"primaryUpdateStrategy": "unsupervised",
		"enableSuperuserAccess": false,
		"logLevel":              "info",
		"smartShutdownTimeout":  180,
		"switchoverDelay":       3600,
		"failoverDelay":         0,
		"maxSyncReplicas":       0,
		"minSyncReplicas":       0,
		"startDelay":            3600,
		"stopDelay":             1800,
		"postgresUID":           26,
		"postgresGID":           26,
		"enablePDB":             true,
		"primaryUpdateMethod":   "restart",
		"monitoring":            map[string]any{"enablePodMonitor": false},
		"affinity":              map[string]any{"podAntiAffinityType": "preferred"},
		"bootstrap":             map[string]any{"initdb": map[string]any{"database": "app", "owner": "app"}},
		"resources":             map[string]any{},
		"replicationSlots":      map[string]any{"highAvailability": map[string]any{"enabled": true}},
		"probes":                map[string]any{},
	}
	if c.PullPolicy != "" {
		spec["imagePullPolicy"] = c.PullPolicy
	}
	if c.WALStorage {
		spec["walStorage"] = map[string]any{"size": "1Gi"}
	}
	if c.Archive != nil {
		p := map[string]any{"name": PluginName, "isWALArchiver": true, "parameters": c.Archive}
		if c.Enabled != nil {
			p["enabled"] = *c.Enabled
		}
		spec["plugins"] = []any{p}
	}
	var external []any
	if c.Recovery != nil {
		external = append(external, map[string]any{"name": "origin",
			"plugin": map[string]any{"name": PluginName, "parameters": c.Recovery}})
		rec := map[string]any{"source": "origin", "database": "app", "owner": "app"}
		if c.RecoveryTarget != nil {
			rec["recoveryTarget"] = c.RecoveryTarget
		}
		spec["bootstrap"] = map[string]any{"recovery": rec}
	}
	if c.Replica != nil {
		ec := map[string]any{"name": "source", "plugin": map[string]any{"name": PluginName, "parameters": c.Replica}}
		if c.ReplicaConn {
			ec["connectionParameters"] = map[string]any{"host": "source-rw", "user": "streaming_replica"}
		}
		external = append(external, ec)
		spec["replica"] = map[string]any{"enabled": true, "source": "source"}
	}
	if external != nil {
		spec["externalClusters"] = external
	}
	status := map[string]any{
		"instances": 3, "readyInstances": 3, "phase": "Cluster in healthy state",
		"pluginStatus": []any{map[string]any{"name": PluginName, "version": "0.0.1",
			"capabilities": []any{"TYPE_RECONCILER_HOOKS", "TYPE_LIFECYCLE_SERVICE", "TYPE_INSTANCE_SIDECAR_INJECTION"}}},
	}
	if c.CurrentPrimary != "" {
		status["currentPrimary"] = c.CurrentPrimary
		status["targetPrimary"] = c.CurrentPrimary
	}
	obj := map[string]any{"metadata": meta, "spec": spec, "status": status}
	if c.TypeMeta {
		obj["apiVersion"] = "postgresql.cnpg.io/v1"
		obj["kind"] = "Cluster"
	}
	return mustJSON(t, obj)
}

// PostgresEnv is the env CloudNativePG gives the postgres container.
func PostgresEnv(c Cluster, pod string) []corev1.EnvVar {
	return []corev1.EnvVar{
		{Name: "PGDATA", Value: "/var/lib/postgresql/data/pgdata"},
		{Name: "POD_NAME", Value: pod},
		{Name: "NAMESPACE", Value: c.Namespace},
		{Name: "CLUSTER_NAME", Value: c.Name},
		{Name: "PSQL_HISTORY", Value: "/controller/tmp/.psql_history"},
		{Name: "PGPORT", Value: "5432"},
		{Name: "PGHOST", Value: "/controller/run"},
		{Name: "TMPDIR", Value: "/controller/tmp"},
	}
}

func postgresMounts() []corev1.VolumeMount {
	return []corev1.VolumeMount{
		{Name: "pgdata", MountPath: "/var/lib/postgresql/data"},
		{Name: "scratch-data", MountPath: "/run"},
		{Name: "scratch-data", MountPath: "/controller"},
		{Name: "shm", MountPath: "/dev/shm"},
		{Name: "app-secret", MountPath: "/etc/app-secret"},
	}
}

func podVolumes(c Cluster) []corev1.Volume {
	return []corev1.Volume{
		{Name: "pgdata", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c.Name + "-1"}}},
		{Name: "scratch-data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "shm", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
		{Name: "app-secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: c.Name + "-app"}}},
	}
}

// InstancePod returns an instance Pod as the operator sends it to
// LifecycleHook: kind and apiVersion set, a bootstrap init container and
// the postgres container.
func InstancePod(t testing.TB, c Cluster, name string) []byte {
	t.Helper()
	pod := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{Kind: "Pod", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.Namespace,
			Labels: map[string]string{"cnpg.io/cluster": c.Name, "cnpg.io/instanceName": name, "cnpg.io/podRole": "instance"}},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "bootstrap-controller", Image: "ghcr.io/cloudnative-pg/cloudnative-pg:1.30.0",
				Command:      []string{"/manager", "bootstrap", "/controller/manager"},
				VolumeMounts: []corev1.VolumeMount{{Name: "scratch-data", MountPath: "/controller"}}}},
			Containers: []corev1.Container{{
				Name: "postgres", Image: "ghcr.io/cloudnative-pg/postgresql:15",
				Command: []string{"/controller/manager", "instance", "run", "--log-level=info"},
				Env:     PostgresEnv(c, name), VolumeMounts: postgresMounts(),
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")}},
			}},
			Volumes:            podVolumes(c),
			ServiceAccountName: c.Name,
		},
	}
	return mustJSON(t, pod)
}

// RecoveryJob returns the full-recovery (or another role's) Job, whose
// main container is named after the role.
func RecoveryJob(t testing.TB, c Cluster, role string) []byte {
	t.Helper()
	pod := corev1.PodSpec{
		Containers: []corev1.Container{{
			Name: role, Image: "ghcr.io/cloudnative-pg/postgresql:15",
			Command: []string{"/controller/manager", "instance", "restore"},
			Env:     PostgresEnv(c, c.Name+"-1-"+role), VolumeMounts: postgresMounts(),
		}},
		RestartPolicy: corev1.RestartPolicyNever, Volumes: podVolumes(c), ServiceAccountName: c.Name,
	}
	job := &batchv1.Job{
		TypeMeta:   metav1.TypeMeta{Kind: "Job", APIVersion: "batch/v1"},
		ObjectMeta: metav1.ObjectMeta{Name: c.Name + "-1-" + role, Namespace: c.Namespace, Labels: map[string]string{"cnpg.io/jobRole": role}},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"cnpg.io/jobRole": role, "cnpg.io/cluster": c.Name}},
			Spec:       pod,
		}},
	}
	return mustJSON(t, job)
}

// BackupJSON returns a Backup with method plugin, kind and apiVersion set.
func BackupJSON(t testing.TB, c Cluster, name string) []byte {
	t.Helper()
	return mustJSON(t, map[string]any{
		"apiVersion": "postgresql.cnpg.io/v1", "kind": "Backup",
		"metadata": map[string]any{"name": name, "namespace": c.Namespace},
		"spec": map[string]any{"cluster": map[string]any{"name": c.Name}, "method": "plugin",
			"pluginConfiguration": map[string]any{"name": PluginName}},
	})
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
