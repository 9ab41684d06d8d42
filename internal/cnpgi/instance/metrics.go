package instance

import (
	"context"
	"fmt"
	"strings"

	metricspb "github.com/cloudnative-pg/cnpg-i/pkg/metrics"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	apiv1 "github.com/bcloud-dev/bcloud/api/v1"
	"github.com/bcloud-dev/bcloud/internal/cnpgi"
)

// Metric names: the plugin name made a Prometheus namespace, as upstream.
var (
	metricPrefix              = strings.NewReplacer(".", "_", "-", "_").Replace(cnpgi.PluginName) + "_"
	MetricFirstRecoverability = metricPrefix + "first_recoverability_point"
	MetricLastAvailableBackup = metricPrefix + "last_available_backup_timestamp"
	MetricLastFailedBackup    = metricPrefix + "last_failed_backup_timestamp"
	metricHelp                = map[string]string{
		MetricFirstRecoverability: "The first point of recoverability for the cluster as a unix timestamp",
		MetricLastAvailableBackup: "The last available backup as a unix timestamp",
		MetricLastFailedBackup:    "The last failed backup as a unix timestamp",
	}
	metricOrder = []string{MetricFirstRecoverability, MetricLastAvailableBackup, MetricLastFailedBackup}
)

// MetricsService exports the recovery window of the Cluster's server, read
// from the ObjectStore status, through the instance manager's exporter.
type MetricsService struct {
	metricspb.UnimplementedMetricsServer
	Client client.Reader
}

// GetCapabilities advertises TYPE_METRICS.
func (s *MetricsService) GetCapabilities(context.Context, *metricspb.MetricsCapabilitiesRequest) (*metricspb.MetricsCapabilitiesResult, error) {
	return &metricspb.MetricsCapabilitiesResult{Capabilities: []*metricspb.MetricsCapability{{
		Type: &metricspb.MetricsCapability_Rpc{Rpc: &metricspb.MetricsCapability_RPC{Type: metricspb.MetricsCapability_RPC_TYPE_METRICS}},
	}}}, nil
}

// Define lists the three gauges.
func (s *MetricsService) Define(context.Context, *metricspb.DefineMetricsRequest) (*metricspb.DefineMetricsResult, error) {
	out := &metricspb.DefineMetricsResult{}
	for _, name := range metricOrder {
		out.Metrics = append(out.Metrics, &metricspb.Metric{FqName: name, Help: metricHelp[name],
			ValueType: &metricspb.MetricType{Type: metricspb.MetricType_TYPE_GAUGE}})
	}
	return out, nil
}

// Collect reports the gauges as unix timestamps, 0 when unknown.
func (s *MetricsService) Collect(ctx context.Context, req *metricspb.CollectMetricsRequest) (*metricspb.CollectMetricsResult, error) {
	cluster, err := cnpgi.DecodeCluster(req.GetClusterDefinition())
	if err != nil {
		return nil, cnpgi.Status(fmt.Errorf("%w: %w", cnpgi.ErrConfiguration, err))
	}
	cfg := cnpgi.ConfigFromCluster(cluster)
	var rw apiv1.RecoveryWindow
	if cfg.BarmanObjectName != "" {
		var os apiv1.ObjectStore
		key := types.NamespacedName{Namespace: cfg.Namespace, Name: cfg.BarmanObjectName}
		if err := s.Client.Get(ctx, key, &os); err != nil {
			return nil, cnpgi.Status(fmt.Errorf("read ObjectStore %s: %w", key, err))
		}
		rw = os.Status.ServerRecoveryWindow[cfg.ServerName]
	}
	values := map[string]*metav1.Time{
		MetricFirstRecoverability: rw.FirstRecoverabilityPoint,
		MetricLastAvailableBackup: rw.LastSuccessfulBackupTime,
		MetricLastFailedBackup:    rw.LastFailedBackupTime,
	}
	out := &metricspb.CollectMetricsResult{}
	for _, name := range metricOrder {
		var v float64
		if t := values[name]; t != nil {
			v = float64(t.Unix())
		}
		out.Metrics = append(out.Metrics, &metricspb.CollectMetric{FqName: name, Value: v})
	}
	return out, nil
}
