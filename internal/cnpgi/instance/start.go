// Package instance is the plugin sidecar of the PostgreSQL instance pods
// (`bcloud plugin instance`): WAL archive and restore, base backups and
// metrics over the unix socket the instance manager dials, plus catalog
// maintenance on the primary.
package instance

import (
	"context"
	"net"

	backuppb "github.com/cloudnative-pg/cnpg-i/pkg/backup"
	"github.com/cloudnative-pg/cnpg-i/pkg/identity"
	metricspb "github.com/cloudnative-pg/cnpg-i/pkg/metrics"
	walpb "github.com/cloudnative-pg/cnpg-i/pkg/wal"
	"google.golang.org/grpc"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bcloud-dev/bcloud/internal/cnpgi"
	"github.com/bcloud-dev/bcloud/internal/cnpgi/walservice"
)

// Options configure the instance sidecar; the command line fills them
// from the environment the operator injects.
type Options struct {
	// Client talks to the API server as the Cluster's ServiceAccount.
	Client      client.Client
	Namespace   string
	ClusterName string
	PodName     string
	// ClusterGVK is the Cluster's API (a fork may use its own group).
	ClusterGVK schema.GroupVersionKind
	// ConnInfo is the libpq connection string to the local PostgreSQL.
	ConnInfo string
	// PGData is the data directory (PGDATA), "" to derive it from the
	// archived files' paths.
	PGData     string
	SpoolDir   string
	PluginPath string
	// CertDir holds the projected endpoint CAs (default /barman-certificates).
	CertDir string
	// NoMaintenance turns the catalog maintenance loop off.
	NoMaintenance bool
	// MemoryLimit is the process's soft memory limit: 0 for
	// cnpgi.DefaultMemoryLimit, negative to leave the Go runtime and the
	// process mappings alone (a sidecar served inside another process).
	MemoryLimit int64
	// Ready is called once the socket accepts connections.
	Ready func(net.Addr)
}

// Start serves the sidecar until ctx is done.
func Start(ctx context.Context, o Options) error {
	stores := &cnpgi.Stores{Client: o.Client, CertDir: o.CertDir}
	defer stores.Close()
	win := &Window{Client: o.Client}
	walSvc := &walservice.Service{Stores: stores, PodName: o.PodName, SpoolDir: o.SpoolDir, PGData: o.PGData}
	backupSvc := &BackupService{Stores: stores, Window: win, PodName: o.PodName, ConnInfo: o.ConnInfo}
	metricsSvc := &MetricsService{Client: o.Client}
	srv := &cnpgi.Server{
		Identity: &cnpgi.Identity{Services: []identity.PluginCapability_Service_Type{
			identity.PluginCapability_Service_TYPE_WAL_SERVICE,
			identity.PluginCapability_Service_TYPE_BACKUP_SERVICE,
			identity.PluginCapability_Service_TYPE_METRICS,
		}},
		Register: []func(*grpc.Server){func(s *grpc.Server) {
			walpb.RegisterWALServer(s, walSvc)
			backuppb.RegisterBackupServer(s, backupSvc)
			metricspb.RegisterMetricsServer(s, metricsSvc)
		}},
		PluginPath: o.PluginPath,
		Ready:      cnpgi.ReadyProcess(o.MemoryLimit, o.Ready),
	}
	if !o.NoMaintenance {
		m := &Maintenance{Client: o.Client, Stores: stores, Window: win, PodName: o.PodName,
			Cluster: types.NamespacedName{Namespace: o.Namespace, Name: o.ClusterName}, ClusterGVK: o.ClusterGVK}
		go m.Run(ctx)
	}
	return srv.Serve(ctx)
}
