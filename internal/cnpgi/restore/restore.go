// Package restore is the plugin sidecar of CloudNativePG's recovery Job
// (`bcloud plugin restore`): RestoreJobHooks.Restore extracts the base
// backup into PGDATA with internal/restore, and the WAL service feeds
// PostgreSQL's recovery.
package restore

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"

	"github.com/cloudnative-pg/cnpg-i/pkg/identity"
	jobpb "github.com/cloudnative-pg/cnpg-i/pkg/restore/job"
	walpb "github.com/cloudnative-pg/cnpg-i/pkg/wal"
	"google.golang.org/grpc"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/bcloud-dev/bcloud/internal/cnpgi"
	"github.com/bcloud-dev/bcloud/internal/cnpgi/walservice"
	"github.com/bcloud-dev/bcloud/internal/restore"
	"github.com/bcloud-dev/bcloud/internal/wal"
)

// DefaultWALDir is where CloudNativePG mounts spec.walStorage.
const DefaultWALDir = "/var/lib/postgresql/wal/pg_wal"

// JobHooks implements RestoreJobHooks.
type JobHooks struct {
	jobpb.UnimplementedRestoreJobHooksServer
	Stores *cnpgi.Stores
	// PGData is the data directory to fill (PGDATA).
	PGData string
	// WALDir is the WAL volume used with spec.walStorage.
	WALDir string
	// ScratchDir holds the begin-WAL check download.
	ScratchDir string
}

// GetCapabilities advertises KIND_RESTORE.
func (h *JobHooks) GetCapabilities(context.Context, *jobpb.RestoreJobHooksCapabilitiesRequest) (*jobpb.RestoreJobHooksCapabilitiesResult, error) {
	return &jobpb.RestoreJobHooksCapabilitiesResult{Capabilities: []*jobpb.RestoreJobHooksCapability{
		{Kind: jobpb.RestoreJobHooksCapability_KIND_RESTORE},
	}}, nil
}

// Restore restores the base backup the recovery target needs into PGDATA,
// after checking that the Cluster's own archive is empty (when asked) and
// that the backup's first WAL file can be fetched. Anything a previous
// attempt left in PGDATA is removed first.
func (h *JobHooks) Restore(ctx context.Context, req *jobpb.RestoreRequest) (*jobpb.RestoreResponse, error) {
	cluster, err := cnpgi.DecodeCluster(req.GetClusterDefinition())
	if err != nil {
		return nil, cnpgi.Status(fmt.Errorf("%w: %w", cnpgi.ErrConfiguration, err))
	}
	cfg := cnpgi.ConfigFromCluster(cluster)
	if err := h.checkTarget(ctx, cluster, cfg, req.CheckEmptyWalArchive); err != nil {
		return nil, cnpgi.Status(err)
	}
	src, err := h.Stores.Get(ctx, cfg.Namespace, cfg.RecoveryBarmanObjectName)
	if err != nil {
		return nil, cnpgi.Status(err)
	}
	defer h.Stores.Release(src)
	entry, err := selectBackup(ctx, src.Data, cfg.RecoveryServerName, cluster.Spec.Bootstrap.Recovery.RecoveryTarget)
	if err != nil {
		return nil, cnpgi.Status(err)
	}
	if err := checkBeginWAL(ctx, src.WAL, cfg.RecoveryServerName, entry, h.ScratchDir); err != nil {
		return nil, cnpgi.Status(err)
	}
	if err := h.clean(cluster); err != nil {
		return nil, cnpgi.Status(err)
	}
	slog.InfoContext(ctx, "restoring base backup", "backupID", entry.ID, "serverName", cfg.RecoveryServerName, "pgdata", h.PGData)
	if err := restore.Restore(ctx, restore.Options{Bucket: src.Data, Server: cfg.RecoveryServerName,
		Backup: entry, Dest: h.PGData, Jobs: src.Config.Jobs}); err != nil {
		return nil, cnpgi.Status(fmt.Errorf("restore backup %s: %w", entry.ID, err))
	}
	if cluster.Spec.WalStorage != nil {
		if err := linkWALDir(h.PGData, h.walDir()); err != nil {
			return nil, cnpgi.Status(err)
		}
	}
	return &jobpb.RestoreResponse{RestoreConfig: restoreConfig()}, nil
}

// checkTarget runs the empty-archive check on the store the new Cluster
// will archive to, so that it never mixes its WAL with another server's.
func (h *JobHooks) checkTarget(ctx context.Context, c *cnpgi.Cluster, cfg cnpgi.Config, requested *bool) error {
	if cfg.RecoveryBarmanObjectName == "" {
		return fmt.Errorf("%w: the recovery source names no ObjectStore: set barmanObjectName in the external cluster's plugin parameters", cnpgi.ErrConfiguration)
	}
	check := c.EmptyWALArchiveCheckEnabled()
	if requested != nil {
		check = *requested
	}
	if cfg.BarmanObjectName == "" || !check {
		return nil
	}
	dst, err := h.Stores.Get(ctx, cfg.Namespace, cfg.BarmanObjectName)
	if err != nil {
		return err
	}
	defer h.Stores.Release(dst)
	return wal.CheckEmpty(ctx, dst.WAL, cfg.ServerName, 0)
}

func (h *JobHooks) clean(c *cnpgi.Cluster) error {
	if err := emptyDir(h.PGData); err != nil {
		return err
	}
	if c.Spec.WalStorage != nil {
		return emptyDir(h.walDir())
	}
	return nil
}

func (h *JobHooks) walDir() string {
	if h.WALDir == "" {
		return DefaultWALDir
	}
	return h.WALDir
}

// Options configure the restore sidecar.
type Options struct {
	Client     client.Reader
	PodName    string
	PGData     string
	SpoolDir   string
	PluginPath string
	CertDir    string
	WALDir     string
	// MemoryLimit is as in instance.Options.
	MemoryLimit int64
	Ready       func(net.Addr)
}

// Start serves the restore sidecar until ctx is done.
func Start(ctx context.Context, o Options) error {
	stores := &cnpgi.Stores{Client: o.Client, CertDir: o.CertDir}
	defer stores.Close()
	spool := o.SpoolDir
	if spool == "" {
		spool = cnpgi.DefaultSpoolDir
	}
	hooks := &JobHooks{Stores: stores, PGData: o.PGData, WALDir: o.WALDir, ScratchDir: filepath.Join(spool, "check")}
	walSvc := &walservice.Service{Stores: stores, PodName: o.PodName, SpoolDir: spool, PGData: o.PGData}
	srv := &cnpgi.Server{
		Identity: &cnpgi.Identity{Services: []identity.PluginCapability_Service_Type{
			identity.PluginCapability_Service_TYPE_RESTORE_JOB,
			identity.PluginCapability_Service_TYPE_WAL_SERVICE,
		}},
		Register: []func(*grpc.Server){func(s *grpc.Server) {
			jobpb.RegisterRestoreJobHooksServer(s, hooks)
			walpb.RegisterWALServer(s, walSvc)
		}},
		PluginPath: o.PluginPath,
		Ready:      cnpgi.ReadyProcess(o.MemoryLimit, o.Ready),
	}
	return srv.Serve(ctx)
}
