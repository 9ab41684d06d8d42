// Package controller holds the operator-side controllers of the plugin.
package controller

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	apiv1 "github.com/bcloud-dev/bcloud/api/v1"
	"github.com/bcloud-dev/bcloud/internal/cnpgi"
	"github.com/bcloud-dev/bcloud/internal/cnpgi/rbac"
)

// ObjectStoreReconciler keeps the per-Cluster Roles in step with the
// ObjectStores they grant: when an ObjectStore's spec changes (a
// credential moved to another Secret) or it is deleted, every Role that
// names it gets its rules recomputed from the ObjectStores that exist.
type ObjectStoreReconciler struct {
	Client client.Client
	// Reader reads ObjectStores; it defaults to Client. Using the API
	// server directly avoids acting on a cache older than the event.
	Reader client.Reader
}

// Reconcile refreshes the Roles naming req's ObjectStore.
func (r *ObjectStoreReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var roles rbacv1.RoleList
	if err := r.Client.List(ctx, &roles, client.InNamespace(req.Namespace), client.HasLabels{cnpgi.ClusterLabel}); err != nil {
		return ctrl.Result{}, fmt.Errorf("list roles in %s: %w", req.Namespace, err)
	}
	for i := range roles.Items {
		role := &roles.Items[i]
		names := rbac.ObjectStoreNames(role)
		if !slices.Contains(names, req.Name) {
			continue
		}
		stores, err := r.existing(ctx, req.Namespace, names)
		if err != nil {
			return ctrl.Result{}, err
		}
		slog.InfoContext(ctx, "refreshing role after an ObjectStore change", "role", role.Name, "objectStore", req.String())
		if err := rbac.EnsureRoleRules(ctx, r.Client, client.ObjectKeyFromObject(role), stores); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{}, nil
}

// existing reads the named ObjectStores that still exist.
func (r *ObjectStoreReconciler) existing(ctx context.Context, namespace string, names []string) ([]apiv1.ObjectStore, error) {
	reader := r.Reader
	if reader == nil {
		reader = r.Client
	}
	var out []apiv1.ObjectStore
	for _, name := range names {
		var os apiv1.ObjectStore
		err := reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, &os)
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return nil, fmt.Errorf("read ObjectStore %s/%s: %w", namespace, name, err)
		}
		out = append(out, os)
	}
	return out, nil
}

// SetupWithManager watches ObjectStores; status-only updates (the recovery
// window) do not change the generation and are ignored.
func (r *ObjectStoreReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("objectstore").
		For(&apiv1.ObjectStore{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Complete(r)
}
