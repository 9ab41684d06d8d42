package instance

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bcloud-dev/bcloud/internal/catalog"
	"github.com/bcloud-dev/bcloud/internal/cnpgi"
	"github.com/bcloud-dev/bcloud/internal/retention"
	"github.com/bcloud-dev/bcloud/internal/storage"
)

// DefaultMaintenanceInterval is the pause between cycles when the
// ObjectStore sets no retentionPolicyIntervalSeconds, or after an error.
const DefaultMaintenanceInterval = 5 * time.Minute

// Maintenance is the catalog maintenance loop of the primary's sidecar:
// apply the ObjectStore's retention policy, refresh the recovery window in
// its status and delete Backup objects whose backup left the catalog.
type Maintenance struct {
	Client client.Client
	Stores *cnpgi.Stores
	Window *Window
	// Cluster is the Cluster this sidecar belongs to; its GVK may be a
	// fork's (CUSTOM_CNPG_GROUP / CUSTOM_CNPG_VERSION).
	Cluster    types.NamespacedName
	ClusterGVK schema.GroupVersionKind
	PodName    string
	Now        func() time.Time
}

// Run runs cycles until ctx is done.
func (m *Maintenance) Run(ctx context.Context) {
	for {
		wait, err := m.Cycle(ctx)
		if err != nil && ctx.Err() == nil {
			slog.ErrorContext(ctx, "catalog maintenance failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Cycle runs one maintenance pass and returns how long to wait before
// the next one.
func (m *Maintenance) Cycle(ctx context.Context) (time.Duration, error) {
	cluster, err := m.readCluster(ctx)
	if err != nil {
		return DefaultMaintenanceInterval, err
	}
	p, ok := cluster.Plugin()
	if !ok || !p.IsEnabled() {
		return DefaultMaintenanceInterval, nil
	}
	cfg := cnpgi.ConfigFromCluster(cluster)
	if cfg.BarmanObjectName == "" {
		return DefaultMaintenanceInterval, fmt.Errorf("%w: the plugin has no barmanObjectName parameter", cnpgi.ErrConfiguration)
	}
	st, err := m.Stores.Get(ctx, cfg.Namespace, cfg.BarmanObjectName)
	if err != nil {
		return DefaultMaintenanceInterval, err
	}
	defer m.Stores.Release(st)
	wait := time.Duration(st.Object.Spec.InstanceSidecarConfiguration.RetentionPolicyIntervalSeconds) * time.Second
	if wait <= 0 {
		wait = DefaultMaintenanceInterval
	}
	// Only the primary maintains the catalog. A sidecar starts before
	// PostgreSQL is primary, so it looks again after the configured
	// interval (as upstream does), not after the long default.
	if cluster.Status.CurrentPrimary != m.PodName {
		return wait, nil
	}
	if rp := st.Object.Spec.RetentionPolicy; rp != "" {
		if err := m.applyPolicy(ctx, rp, st, cfg.ServerName); err != nil {
			m.event(ctx, cluster, "RetentionPolicyFailed", "Retention policy failed: "+err.Error())
			slog.ErrorContext(ctx, "retention policy failed", "serverName", cfg.ServerName, "error", err)
		}
	}
	key := types.NamespacedName{Namespace: cfg.Namespace, Name: cfg.BarmanObjectName}
	if _, err := m.Window.Refresh(ctx, key, cfg.ServerName, st.Data); err != nil {
		return wait, err
	}
	if err := m.deleteBackupsNotInCatalog(ctx, cluster, st.Data, cfg.ServerName); err != nil {
		return wait, err
	}
	return wait, nil
}

func (m *Maintenance) applyPolicy(ctx context.Context, spec string, st *cnpgi.Store, server string) error {
	policy, err := retention.ParsePolicy(spec)
	if err != nil {
		return err
	}
	d := &retention.Deleter{Bucket: st.Data, Server: server}
	if err := d.Load(ctx); err != nil {
		return err
	}
	deleted, err := d.ApplyPolicy(ctx, policy, 0, m.now())
	if len(deleted) > 0 {
		slog.InfoContext(ctx, "retention policy applied", "serverName", server, "policy", policy.String(), "deleted", deleted)
	}
	return err
}

// deleteBackupsNotInCatalog removes the Backup objects of this Cluster
// taken by this plugin whose backup is no longer in the catalog.
func (m *Maintenance) deleteBackupsNotInCatalog(ctx context.Context, cluster *cnpgi.Cluster, b storage.Bucket, server string) error {
	entries, err := (&catalog.Catalog{Bucket: b, Server: server}).List(ctx)
	if err != nil {
		return fmt.Errorf("list backups of %s: %w", server, err)
	}
	inCatalog := map[string]bool{}
	for _, e := range entries {
		inCatalog[e.ID] = true
	}
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(m.gvk().GroupVersion().WithKind("BackupList"))
	if err := m.Client.List(ctx, list, client.InNamespace(cluster.Namespace)); err != nil {
		return fmt.Errorf("list Backup objects: %w", err)
	}
	for i := range list.Items {
		bk := &list.Items[i]
		if !pluginBackupOf(bk, cluster) {
			continue
		}
		id, _, _ := unstructured.NestedString(bk.Object, "status", "backupId")
		if id == "" || inCatalog[id] {
			continue
		}
		slog.InfoContext(ctx, "deleting Backup whose backup left the catalog", "backup", bk.GetName(), "backupID", id)
		if err := m.Client.Delete(ctx, bk); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("delete Backup %s: %w", bk.GetName(), err)
		}
	}
	return nil
}

// pluginBackupOf reports whether bk is a completed plugin backup of
// cluster taken by this plugin.
func pluginBackupOf(bk *unstructured.Unstructured, cluster *cnpgi.Cluster) bool {
	name, _, _ := unstructured.NestedString(bk.Object, "spec", "cluster", "name")
	method, _, _ := unstructured.NestedString(bk.Object, "spec", "method")
	phase, _, _ := unstructured.NestedString(bk.Object, "status", "phase")
	meta, _, _ := unstructured.NestedStringMap(bk.Object, "status", "pluginMetadata")
	return name == cluster.Name && method == "plugin" && phase == "completed" &&
		meta["clusterUID"] == string(cluster.UID) && meta["pluginName"] == cnpgi.PluginName
}

func (m *Maintenance) readCluster(ctx context.Context) (*cnpgi.Cluster, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(m.gvk())
	if err := m.Client.Get(ctx, m.Cluster, u); err != nil {
		return nil, fmt.Errorf("read Cluster %s: %w", m.Cluster, err)
	}
	data, err := json.Marshal(u.Object)
	if err != nil {
		return nil, fmt.Errorf("read Cluster %s: %w", m.Cluster, err)
	}
	return cnpgi.DecodeCluster(data)
}

// event records a warning on the Cluster; failures are only logged.
func (m *Maintenance) event(ctx context.Context, cluster *cnpgi.Cluster, reason, msg string) {
	now := metav1.NewTime(m.now())
	gvk := m.gvk()
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: cluster.Name + ".", Namespace: cluster.Namespace},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind,
			Name: cluster.Name, Namespace: cluster.Namespace, UID: cluster.UID,
		},
		Reason: reason, Message: msg, Type: corev1.EventTypeWarning,
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		Source: corev1.EventSource{Component: cnpgi.SidecarName},
	}
	if err := m.Client.Create(ctx, ev); err != nil {
		slog.WarnContext(ctx, "could not record an event on the Cluster", "reason", reason, "error", err)
	}
}

func (m *Maintenance) gvk() schema.GroupVersionKind {
	gvk := m.ClusterGVK
	if gvk.Group == "" {
		gvk.Group = cnpgi.CNPGGroup
	}
	if gvk.Version == "" {
		gvk.Version = cnpgi.CNPGVersion
	}
	gvk.Kind = "Cluster"
	return gvk
}

func (m *Maintenance) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}
