package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"time"

	"github.com/bcloud-dev/bcloud/internal/catalog"
	"github.com/bcloud-dev/bcloud/internal/layout"
	"github.com/bcloud-dev/bcloud/internal/postgres"
	"github.com/bcloud-dev/bcloud/internal/storage"
)

// serverNameCloud is the server_name barman-cloud-backup records.
const serverNameCloud = "cloud"

func ptr[T any](v T) *T { return &v }

// info builds backup.info from what the backup has done so far, as
// barman fills BackupInfo step by step.
func (t *taker) info() *catalog.BackupInfo {
	b := catalog.New()
	b.ServerName = ptr(serverNameCloud)
	b.Status = ptr(catalog.StatusStarted)
	if t.opts.Name != "" {
		b.BackupName = ptr(t.opts.Name)
	}
	if t.metaOK {
		m := t.meta
		b.SystemID = ptr(m.SystemID)
		b.PGData = ptr(m.PGData)
		b.Version = ptr(m.Version)
		b.XLOGSegmentSize = ptr(m.SegmentSize)
		b.ConfigFile = strPtr(m.ConfigFile)
		b.HBAFile = strPtr(m.HBAFile)
		b.IdentFile = strPtr(m.IdentFile)
		if len(m.IncludedFiles) > 0 {
			b.IncludedFiles = append([]string(nil), m.IncludedFiles...)
		}
		for _, ts := range m.Tablespaces {
			b.Tablespaces = append(b.Tablespaces, catalog.Tablespace{Name: ts.Name, OID: int(ts.OID), Location: ts.Location})
		}
		b.DataChecksums = strPtr(m.DataChecksums)
		b.SummarizeWAL = m.SummarizeWAL
		b.ClusterSize = ptr(m.ClusterSize)
	}
	seg := int64(catalog.DefaultXLOGSegmentSize)
	if b.XLOGSegmentSize != nil && *b.XLOGSegmentSize > 0 {
		seg = *b.XLOGSegmentSize
	}
	if s := t.start; s != nil {
		b.BeginXlog = ptr(s.LSN)
		b.BeginTime = ptr(s.Time)
		b.Timeline = ptr(s.Timeline)
		if lsn, err := postgres.ParseLSN(s.LSN); err == nil {
			b.BeginWAL = ptr(postgres.WALFileName(s.Timeline, lsn, seg))
			b.BeginOffset = ptr(postgres.WALOffset(lsn, seg))
		}
	}
	if s := t.stop; s != nil {
		b.EndXlog = ptr(s.LSN)
		b.EndTime = ptr(s.Time)
		b.BackupLabel = ptr(s.LabelFile)
		if lsn, err := postgres.ParseLSN(s.LSN); err == nil {
			b.EndWAL = ptr(postgres.WALFileName(s.Timeline, lsn, seg))
			b.EndOffset = ptr(postgres.WALOffset(lsn, seg))
		}
	}
	if !t.copyEnd.IsZero() {
		b.CopyStats = t.copyStats()
		b.Status = ptr(catalog.StatusDone)
	}
	return b
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// copyStats is barman's CloudUploadController.statistics: overall and
// per archive name wall time, and the serialized (summed) part times.
func (t *taker) copyStats() catalog.Dict {
	analysis, perItem, serialPerItem := catalog.Dict{}, catalog.Dict{}, catalog.Dict{}
	var first, last time.Time
	var serial time.Duration
	for _, a := range t.archives {
		var nameFirst, nameLast time.Time
		var nameSerial time.Duration
		for _, p := range a.stats() {
			if nameFirst.IsZero() || p.start.Before(nameFirst) {
				nameFirst = p.start
			}
			if p.end.After(nameLast) {
				nameLast = p.end
			}
			nameSerial += p.end.Sub(p.start)
		}
		if nameFirst.IsZero() {
			continue
		}
		if first.IsZero() || nameFirst.Before(first) {
			first = nameFirst
		}
		if nameLast.After(last) {
			last = nameLast
		}
		serial += nameSerial
		analysis = append(analysis, catalog.Item{Key: a.name, Value: int64(0)})
		perItem = append(perItem, catalog.Item{Key: a.name, Value: nameLast.Sub(nameFirst).Seconds()})
		serialPerItem = append(serialPerItem, catalog.Item{Key: a.name, Value: nameSerial.Seconds()})
	}
	return catalog.Dict{
		{Key: "total_time", Value: t.copyEnd.Sub(t.copyStart).Seconds()},
		{Key: "number_of_workers", Value: int64(t.opts.Jobs)},
		{Key: "analysis_time", Value: int64(0)},
		{Key: "analysis_time_per_item", Value: analysis},
		{Key: "copy_time_per_item", Value: perItem},
		{Key: "serialized_copy_time_per_item", Value: serialPerItem},
		{Key: "copy_time", Value: last.Sub(first).Seconds()},
		{Key: "serialized_copy_time", Value: serial.Seconds()},
	}
}

// putInfo stores backup.info, the last object of a backup.
func (t *taker) putInfo(ctx context.Context, b *catalog.BackupInfo) error {
	if err := b.Validate(); err != nil {
		return err
	}
	data := b.Marshal()
	key := layout.BackupInfoKey(t.opts.Server, t.id)
	if err := t.opts.Bucket.Put(ctx, key, bytes.NewReader(data), int64(len(data)), storage.PutOptions{Tags: t.opts.Tags}); err != nil {
		return fmt.Errorf("upload backup.info: %w", err)
	}
	return nil
}

// labelHeader is the tar header of backup_label: mode 0644 and mtime 0,
// as barman's add_fileobj writes it.
func labelHeader() *tar.Header {
	return &tar.Header{Name: "backup_label", Mode: 0o644, Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
}

// ownerHeader returns the owner fields of fi.
func (t *taker) ownerHeader(fi fs.FileInfo) (*tar.Header, error) {
	var o owners
	return o.header("x", "", fi)
}
