package instance

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	backuppb "github.com/cloudnative-pg/cnpg-i/pkg/backup"
	"k8s.io/apimachinery/pkg/types"

	"github.com/bcloud-dev/bcloud/internal/backup"
	"github.com/bcloud-dev/bcloud/internal/catalog"
	"github.com/bcloud-dev/bcloud/internal/cnpgi"
)

// BackupService takes base backups (Backup with method: plugin) in-process
// with internal/backup.
type BackupService struct {
	backuppb.UnimplementedBackupServer
	Stores *cnpgi.Stores
	Window *Window
	// PodName is reported as the backup's instance ID.
	PodName string
	// ConnInfo is the libpq connection string to the local PostgreSQL.
	ConnInfo string
	// Now names the backup (default time.Now).
	Now func() time.Time
}

// GetCapabilities advertises TYPE_BACKUP.
func (s *BackupService) GetCapabilities(context.Context, *backuppb.BackupCapabilitiesRequest) (*backuppb.BackupCapabilitiesResult, error) {
	return &backuppb.BackupCapabilitiesResult{Capabilities: []*backuppb.BackupCapability{{
		Type: &backuppb.BackupCapability_Rpc{Rpc: &backuppb.BackupCapability_RPC{Type: backuppb.BackupCapability_RPC_TYPE_BACKUP}},
	}}}, nil
}

// Backup takes a backup of this instance into the Cluster's ObjectStore.
// Backup.spec.pluginConfiguration.parameters are ignored, as upstream.
func (s *BackupService) Backup(ctx context.Context, req *backuppb.BackupRequest) (*backuppb.BackupResult, error) {
	cluster, err := cnpgi.DecodeCluster(req.GetClusterDefinition())
	if err != nil {
		return nil, cnpgi.Status(fmt.Errorf("%w: %w", cnpgi.ErrConfiguration, err))
	}
	cfg := cnpgi.ConfigFromCluster(cluster)
	st, err := s.Stores.Get(ctx, cfg.Namespace, cfg.BarmanObjectName)
	if err != nil {
		return nil, cnpgi.Status(err)
	}
	defer s.Stores.Release(st)
	key := types.NamespacedName{Namespace: cfg.Namespace, Name: cfg.BarmanObjectName}
	now := s.now()
	entry, err := backup.Take(ctx, backup.Options{
		Bucket: st.Data, Server: cfg.ServerName, ConnInfo: s.ConnInfo,
		Name:        "backup-" + now.Format("20060102150405"),
		Compression: st.Config.DataCompression, Jobs: st.Config.Jobs,
		ImmediateCheckpoint: st.Config.ImmediateCheckpoint, Tags: st.Config.Tags,
		Now: func() time.Time { return now },
	})
	if err != nil {
		if werr := s.Window.Failed(context.WithoutCancel(ctx), key, cfg.ServerName, s.now()); werr != nil {
			slog.ErrorContext(ctx, "could not record the failed backup", "error", werr)
		}
		return nil, cnpgi.Status(err)
	}
	if _, err := s.Window.Refresh(ctx, key, cfg.ServerName, st.Data); err != nil {
		slog.ErrorContext(ctx, "could not refresh the recovery window", "error", err)
	}
	return backupResult(entry, string(cluster.UID), s.PodName), nil
}

func (s *BackupService) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// backupResult fills the fields CloudNativePG copies into the Backup's
// status, with upstream's pluginMetadata keys.
func backupResult(e catalog.Entry, clusterUID, pod string) *backuppb.BackupResult {
	info := e.Info
	r := &backuppb.BackupResult{
		BackupId:   e.ID,
		BackupName: catalog.Str(info.BackupName),
		BeginWal:   catalog.Str(info.BeginWAL),
		EndWal:     catalog.Str(info.EndWAL),
		BeginLsn:   catalog.Str(info.BeginXlog),
		EndLsn:     catalog.Str(info.EndXlog),
		InstanceId: pod,
		Online:     true,
		Metadata: map[string]string{
			"version":     cnpgi.Version,
			"name":        cnpgi.PluginName,
			"displayName": cnpgi.DisplayName,
			"clusterUID":  clusterUID,
			"pluginName":  cnpgi.PluginName,
		},
	}
	if info.BeginTime != nil {
		r.StartedAt = info.BeginTime.Unix()
	}
	if info.EndTime != nil {
		r.StoppedAt = info.EndTime.Unix()
	}
	if info.Timeline != nil {
		r.Metadata["timeline"] = strconv.Itoa(*info.Timeline)
	}
	return r
}
