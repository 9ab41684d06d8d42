// Package walservice is the CNPG-I WAL service of the instance and
// restore sidecars: PostgreSQL's archive_command and restore_command,
// relayed by the instance manager, served in-process by internal/wal.
package walservice

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	walpb "github.com/cloudnative-pg/cnpg-i/pkg/wal"

	"github.com/bcloud-dev/bcloud/internal/cnpgi"
	"github.com/bcloud-dev/bcloud/internal/wal"
)

// Service implements the WAL service. Status and SetFirstRequired are not
// advertised: CloudNativePG never calls them, and they answer Unimplemented.
type Service struct {
	walpb.UnimplementedWALServer
	Stores *cnpgi.Stores
	// PodName is this pod (POD_NAME): it decides which store a restore
	// reads (see RestoreSource).
	PodName string
	// SpoolDir holds parallel-archive records and restore prefetches.
	SpoolDir string
	// PGData is the data directory holding the empty-archive check
	// marker; "" means the parent of the archived file's pg_wal.
	PGData string

	spoolOnce sync.Once
	spool     *wal.Spool
	spoolErr  error
}

// GetCapabilities advertises archive and restore.
func (s *Service) GetCapabilities(context.Context, *walpb.WALCapabilitiesRequest) (*walpb.WALCapabilitiesResult, error) {
	rpc := func(t walpb.WALCapability_RPC_Type) *walpb.WALCapability {
		return &walpb.WALCapability{Type: &walpb.WALCapability_Rpc{Rpc: &walpb.WALCapability_RPC{Type: t}}}
	}
	return &walpb.WALCapabilitiesResult{Capabilities: []*walpb.WALCapability{
		rpc(walpb.WALCapability_RPC_TYPE_ARCHIVE_WAL),
		rpc(walpb.WALCapability_RPC_TYPE_RESTORE_WAL),
	}}, nil
}

// Archive archives one WAL file (archive_command), with up to
// wal.maxParallel-1 other ready files in the same call.
func (s *Service) Archive(ctx context.Context, req *walpb.WALArchiveRequest) (*walpb.WALArchiveResult, error) {
	cluster, err := cnpgi.DecodeCluster(req.GetClusterDefinition())
	if err != nil {
		return nil, cnpgi.Status(fmt.Errorf("%w: %w", cnpgi.ErrConfiguration, err))
	}
	cfg := cnpgi.ConfigFromCluster(cluster)
	if cfg.BarmanObjectName == "" {
		// CloudNativePG asks every enabled plugin; this Cluster does not
		// archive through this one.
		slog.DebugContext(ctx, "no barmanObjectName: not archiving", "walName", filepath.Base(req.GetSourceFileName()))
		return &walpb.WALArchiveResult{}, nil
	}
	st, err := s.Stores.Get(ctx, cfg.Namespace, cfg.BarmanObjectName)
	if err != nil {
		return nil, cnpgi.Status(err)
	}
	defer s.Stores.Release(st)
	walPath := req.GetSourceFileName()
	pgdata := s.PGData
	if pgdata == "" {
		pgdata = filepath.Dir(filepath.Dir(walPath))
	}
	marker := filepath.Join(pgdata, cnpgi.CheckEmptyWALArchiveFile)
	if checkEmpty(req.CheckEmptyWalArchive, cluster, marker) {
		if err := wal.CheckEmpty(ctx, st.WAL, cfg.ServerName, 0); err != nil {
			return nil, cnpgi.Status(err)
		}
	}
	spool, err := s.openSpool()
	if err != nil {
		return nil, cnpgi.Status(err)
	}
	a := &wal.Archiver{Bucket: st.WAL, Server: cfg.ServerName, Compression: st.Config.WALCompression,
		Tags: st.Config.Tags, HistoryTags: st.Config.HistoryTags}
	if err := a.Batch(ctx, walPath, st.Config.MaxParallel, spool); err != nil {
		return nil, cnpgi.Status(fmt.Errorf("archive %s: %w", filepath.Base(walPath), err))
	}
	if err := os.Remove(marker); err != nil && !errors.Is(err, fs.ErrNotExist) {
		slog.WarnContext(ctx, "could not remove the empty-archive check marker", "path", marker, "error", err)
	}
	return &walpb.WALArchiveResult{}, nil
}

// Restore restores one WAL file (restore_command). In MODE_REWIND
// (pg_rewind) it fetches only the file asked for and leaves the spool
// alone; otherwise it prefetches the following segments.
func (s *Service) Restore(ctx context.Context, req *walpb.WALRestoreRequest) (*walpb.WALRestoreResult, error) {
	cluster, err := cnpgi.DecodeCluster(req.GetClusterDefinition())
	if err != nil {
		return nil, cnpgi.Status(fmt.Errorf("%w: %w", cnpgi.ErrConfiguration, err))
	}
	src := RestoreSource(cluster, s.PodName)
	st, err := s.Stores.Get(ctx, cluster.Namespace, src.ObjectStore)
	if err != nil {
		return nil, cnpgi.Status(err)
	}
	defer s.Stores.Release(st)
	name, dest := req.GetSourceWalName(), req.GetDestinationFileName()
	r := &wal.Restorer{Bucket: st.WAL, Server: src.ServerName}
	spool, err := s.openSpool()
	if err != nil {
		return nil, cnpgi.Status(err)
	}
	rewind := req.GetMode() == walpb.WALRestoreRequest_MODE_REWIND
	if rewind || !src.EndOfWALFlag {
		// A missing-file record only short-cuts requests when PostgreSQL
		// can stream instead; otherwise ask the archive every time.
		forgetMissing(spool, name)
	}
	if rewind {
		err = r.Restore(ctx, name, dest)
	} else {
		endOfWAL := missingRecorded(spool, name)
		p := &wal.Prefetcher{Restorer: r, Spool: spool, MaxParallel: st.Config.MaxParallel}
		if err = p.Restore(ctx, name, dest); err != nil && endOfWAL && errors.Is(err, wal.ErrNotFound) {
			err = fmt.Errorf("%w: %w", cnpgi.ErrEndOfWAL, err)
		}
	}
	if err != nil {
		return nil, cnpgi.Status(err)
	}
	return &walpb.WALRestoreResult{}, nil
}

func (s *Service) openSpool() (*wal.Spool, error) {
	s.spoolOnce.Do(func() {
		dir := s.SpoolDir
		if dir == "" {
			dir = cnpgi.DefaultSpoolDir
		}
		s.spool, s.spoolErr = wal.OpenSpool(dir)
	})
	return s.spool, s.spoolErr
}

// checkEmpty decides the empty-archive check: the operator's answer when
// it sends one (CloudNativePG 1.30 does), else the Cluster annotation and
// the marker file, as older operators expect.
func checkEmpty(requested *bool, cluster *cnpgi.Cluster, marker string) bool {
	if requested != nil {
		return *requested
	}
	if !cluster.EmptyWALArchiveCheckEnabled() {
		return false
	}
	_, err := os.Stat(marker)
	return err == nil
}

// Source is where a restore reads WAL from.
type Source struct {
	ObjectStore string
	ServerName  string
	// EndOfWALFlag: PostgreSQL can stream, so a prefetch that found the
	// end of the archive may answer the next request at once.
	EndOfWALFlag bool
}

// RestoreSource picks the store as upstream does: the replica source for
// the designated primary of a replica cluster, the recovery source while
// bootstrapping (no current primary yet), else the Cluster's own store.
func RestoreSource(c *cnpgi.Cluster, podName string) Source {
	cfg := cnpgi.ConfigFromCluster(c)
	primary := c.Status.CurrentPrimary
	replica, isReplica := c.ReplicaSource()
	switch {
	case primary == podName && primary != "" && cfg.ReplicaSourceBarmanObjectName != "":
		return Source{ObjectStore: cfg.ReplicaSourceBarmanObjectName, ServerName: cfg.ReplicaSourceServerName,
			EndOfWALFlag: isReplica && len(replica.ConnectionParameters) > 0}
	case primary == "":
		return Source{ObjectStore: cfg.RecoveryBarmanObjectName, ServerName: cfg.RecoveryServerName}
	}
	return Source{ObjectStore: cfg.BarmanObjectName, ServerName: cfg.ServerName, EndOfWALFlag: primary != podName}
}

// The prefetcher records a file it found missing in the spool as
// prefetch/<name>.missing (see wal.Spool).
func missingPath(spool *wal.Spool, name string) string {
	return filepath.Join(spool.Dir(), "prefetch", filepath.Base(name)+".missing")
}

func missingRecorded(spool *wal.Spool, name string) bool {
	_, err := os.Stat(missingPath(spool, name))
	return err == nil
}

func forgetMissing(spool *wal.Spool, name string) {
	_ = os.Remove(missingPath(spool, name))
}
