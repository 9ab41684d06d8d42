package operator

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cloudnative-pg/cnpg-i/pkg/lifecycle"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	apiv1 "github.com/bcloud-dev/bcloud/api/v1"
	"github.com/bcloud-dev/bcloud/internal/cnpgi"
)

// Lifecycle injects the plugin sidecar into the instance Pods and the
// recovery Jobs CloudNativePG creates.
type Lifecycle struct {
	lifecycle.UnimplementedOperatorLifecycleServer
	Client client.Reader
	// SidecarImage is the image of the injected container (SIDECAR_IMAGE).
	SidecarImage string
}

// GetCapabilities asks for Pod CREATE and EVALUATE (the operator's dry run
// that detects drift) and Job CREATE, as upstream.
func (l *Lifecycle) GetCapabilities(context.Context, *lifecycle.OperatorLifecycleCapabilitiesRequest) (*lifecycle.OperatorLifecycleCapabilitiesResponse, error) {
	op := func(t lifecycle.OperatorOperationType_Type) *lifecycle.OperatorOperationType {
		return &lifecycle.OperatorOperationType{Type: t}
	}
	return &lifecycle.OperatorLifecycleCapabilitiesResponse{LifecycleCapabilities: []*lifecycle.OperatorLifecycleCapabilities{
		{Group: "", Kind: "Pod", OperationTypes: []*lifecycle.OperatorOperationType{
			op(lifecycle.OperatorOperationType_TYPE_CREATE), op(lifecycle.OperatorOperationType_TYPE_EVALUATE)}},
		{Group: batchv1.GroupName, Kind: "Job", OperationTypes: []*lifecycle.OperatorOperationType{
			op(lifecycle.OperatorOperationType_TYPE_CREATE)}},
	}}, nil
}

// LifecycleHook returns the JSON patch injecting the sidecar, or an empty
// one when the object is not for this plugin.
func (l *Lifecycle) LifecycleHook(ctx context.Context, req *lifecycle.OperatorLifecycleRequest) (*lifecycle.OperatorLifecycleResponse, error) {
	cluster, err := cnpgi.DecodeCluster(req.GetClusterDefinition())
	if err != nil {
		return nil, cnpgi.Status(fmt.Errorf("%w: %w", cnpgi.ErrConfiguration, err))
	}
	cfg := cnpgi.ConfigFromCluster(cluster)
	if !cfg.Configured() {
		return &lifecycle.OperatorLifecycleResponse{}, nil
	}
	var meta struct{ Kind string }
	if err := json.Unmarshal(req.GetObjectDefinition(), &meta); err != nil {
		return nil, cnpgi.Status(fmt.Errorf("%w: decode object: %w", cnpgi.ErrConfiguration, err))
	}
	var patch []byte
	switch meta.Kind {
	case "Pod":
		patch, err = l.pod(ctx, cluster, cfg, req.GetObjectDefinition())
	case "Job":
		patch, err = l.job(ctx, cluster, cfg, req.GetObjectDefinition())
	default:
		return &lifecycle.OperatorLifecycleResponse{}, nil
	}
	if err != nil {
		return nil, cnpgi.Status(err)
	}
	return &lifecycle.OperatorLifecycleResponse{JsonPatch: patch}, nil
}

// pod mutates instance Pods of Clusters that archive or follow a replica
// source through this plugin; a recovery-only reference needs no sidecar.
func (l *Lifecycle) pod(ctx context.Context, cluster *cnpgi.Cluster, cfg cnpgi.Config, data []byte) ([]byte, error) {
	if cfg.BarmanObjectName == "" && cfg.ReplicaSourceBarmanObjectName == "" {
		return nil, nil
	}
	var pod corev1.Pod
	if err := json.Unmarshal(data, &pod); err != nil {
		return nil, fmt.Errorf("%w: decode pod: %w", cnpgi.ErrConfiguration, err)
	}
	stores, err := l.stores(ctx, cfg)
	if err != nil {
		return nil, err
	}
	// Resources and arguments: the backup store, else recovery, else
	// the replica source.
	first := firstStore(stores, cfg.BarmanObjectName, cfg.RecoveryBarmanObjectName, cfg.ReplicaSourceBarmanObjectName)
	sc := Sidecar{Image: l.SidecarImage, Args: []string{"instance"}, Env: envOf(stores), Certificates: certificates(stores)}
	if first != nil {
		isc := first.Spec.InstanceSidecarConfiguration
		sc.Resources = isc.Resources
		sc.Args = append(sc.Args, isc.AdditionalContainerArgs...)
		if isc.LogLevel != "" {
			sc.Args = append(sc.Args, "--log-level="+isc.LogLevel)
		}
	}
	mutated := pod.DeepCopy()
	if err := inject(&mutated.Spec, cluster, "postgres", sc); err != nil {
		return nil, fmt.Errorf("inject sidecar into pod %s: %w", pod.Name, err)
	}
	return cnpgi.CreatePatch(&pod, mutated)
}

// job mutates the full-recovery and snapshot-recovery Jobs of Clusters
// bootstrapping from this plugin.
func (l *Lifecycle) job(ctx context.Context, cluster *cnpgi.Cluster, cfg cnpgi.Config, data []byte) ([]byte, error) {
	if cluster.RecoverySourcePlugin() == nil {
		return nil, nil
	}
	var job batchv1.Job
	if err := json.Unmarshal(data, &job); err != nil {
		return nil, fmt.Errorf("%w: decode job: %w", cnpgi.ErrConfiguration, err)
	}
	role := ""
	for k, v := range job.Spec.Template.Labels {
		if strings.HasSuffix(k, "/jobRole") {
			role = v
		}
	}
	if role != "full-recovery" && role != "snapshot-recovery" {
		return nil, nil
	}
	stores, err := l.stores(ctx, cfg)
	if err != nil {
		return nil, err
	}
	sc := Sidecar{Image: l.SidecarImage, Args: []string{"restore"}, Env: envOf(stores), Certificates: certificates(stores)}
	if rec := firstStore(stores, cfg.RecoveryBarmanObjectName); rec != nil {
		sc.Resources = rec.Spec.InstanceSidecarConfiguration.Resources
	}
	mutated := job.DeepCopy()
	if err := inject(&mutated.Spec.Template.Spec, cluster, role, sc); err != nil {
		return nil, fmt.Errorf("inject sidecar into job %s: %w", job.Name, err)
	}
	return cnpgi.CreatePatch(&job, mutated)
}

// stores reads the ObjectStores the Cluster names, in the order backup,
// recovery, replica source.
func (l *Lifecycle) stores(ctx context.Context, cfg cnpgi.Config) ([]apiv1.ObjectStore, error) {
	var out []apiv1.ObjectStore
	for _, name := range cfg.ObjectStoreNames() {
		var os apiv1.ObjectStore
		key := types.NamespacedName{Namespace: cfg.Namespace, Name: name}
		if err := l.Client.Get(ctx, key, &os); err != nil {
			return nil, fmt.Errorf("%w: read ObjectStore %s: %w", cnpgi.ErrConfiguration, key, err)
		}
		out = append(out, os)
	}
	return out, nil
}

func firstStore(stores []apiv1.ObjectStore, names ...string) *apiv1.ObjectStore {
	for _, n := range names {
		for i := range stores {
			if n != "" && stores[i].Name == n {
				return &stores[i]
			}
		}
	}
	return nil
}

func envOf(stores []apiv1.ObjectStore) []corev1.EnvVar {
	var out []corev1.EnvVar
	for _, os := range stores {
		out = append(out, os.Spec.InstanceSidecarConfiguration.Env...)
	}
	return out
}
