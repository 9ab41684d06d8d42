package operator

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/cloudnative-pg/cnpg-i/pkg/reconciler"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	apiv1 "github.com/bcloud-dev/bcloud/api/v1"
	"github.com/bcloud-dev/bcloud/internal/cnpgi"
	"github.com/bcloud-dev/bcloud/internal/cnpgi/rbac"
)

// RequeueAfter is how long the operator waits before reconciling a
// Cluster whose ObjectStore does not exist yet.
const RequeueAfter = 30

// Reconciler keeps each Cluster's Role and RoleBinding before the
// operator reconciles it.
type Reconciler struct {
	reconciler.UnimplementedReconcilerHooksServer
	Client client.Client
}

// GetCapabilities asks for Cluster and Backup reconciles, as upstream.
func (r *Reconciler) GetCapabilities(context.Context, *reconciler.ReconcilerHooksCapabilitiesRequest) (*reconciler.ReconcilerHooksCapabilitiesResult, error) {
	return &reconciler.ReconcilerHooksCapabilitiesResult{ReconcilerCapabilities: []*reconciler.ReconcilerHooksCapability{
		{Kind: reconciler.ReconcilerHooksCapability_KIND_CLUSTER},
		{Kind: reconciler.ReconcilerHooksCapability_KIND_BACKUP},
	}}, nil
}

// Pre ensures the Role and RoleBinding of a Cluster that names
// ObjectStores; a missing ObjectStore requeues the Cluster.
func (r *Reconciler) Pre(ctx context.Context, req *reconciler.ReconcilerHooksRequest) (*reconciler.ReconcilerHooksResult, error) {
	var meta struct{ Kind string }
	if err := json.Unmarshal(req.GetResourceDefinition(), &meta); err != nil {
		return nil, cnpgi.Status(fmt.Errorf("%w: decode resource: %w", cnpgi.ErrConfiguration, err))
	}
	if meta.Kind != "" && meta.Kind != "Cluster" {
		return proceed(), nil
	}
	cluster, err := cnpgi.DecodeCluster(req.GetClusterDefinition())
	if err != nil {
		return nil, cnpgi.Status(fmt.Errorf("%w: %w", cnpgi.ErrConfiguration, err))
	}
	cfg := cnpgi.ConfigFromCluster(cluster)
	var stores []apiv1.ObjectStore
	for _, name := range cfg.ObjectStoreNames() {
		var os apiv1.ObjectStore
		key := types.NamespacedName{Namespace: cfg.Namespace, Name: name}
		if err := r.Client.Get(ctx, key, &os); err != nil {
			if apierrors.IsNotFound(err) {
				slog.InfoContext(ctx, "ObjectStore not found: requeuing the cluster", "objectStore", key.String())
				return &reconciler.ReconcilerHooksResult{Behavior: reconciler.ReconcilerHooksResult_BEHAVIOR_REQUEUE, RequeueAfter: RequeueAfter}, nil
			}
			return nil, cnpgi.Status(fmt.Errorf("read ObjectStore %s: %w", key, err))
		}
		stores = append(stores, os)
	}
	if len(stores) == 0 {
		return proceed(), nil
	}
	if err := rbac.EnsureRole(ctx, r.Client, cluster, stores); err != nil {
		return nil, cnpgi.Status(err)
	}
	if err := rbac.EnsureRoleBinding(ctx, r.Client, cluster); err != nil {
		return nil, cnpgi.Status(err)
	}
	return proceed(), nil
}

// Post lets the reconcile go on.
func (r *Reconciler) Post(context.Context, *reconciler.ReconcilerHooksRequest) (*reconciler.ReconcilerHooksResult, error) {
	return proceed(), nil
}

func proceed() *reconciler.ReconcilerHooksResult {
	return &reconciler.ReconcilerHooksResult{Behavior: reconciler.ReconcilerHooksResult_BEHAVIOR_CONTINUE}
}
