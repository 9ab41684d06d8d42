// Package verify checks, end to end, that backups and the WAL archive can
// restore: every archive member of a backup reads back complete, and every
// WAL segment from the backup's begin to the newest archived one exists,
// decompresses, has the right size and header, and follows the timeline
// history without gaps. None of the barman-cloud tools does this.
package verify

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/bcloud-dev/bcloud/internal/catalog"
	"github.com/bcloud-dev/bcloud/internal/retention"
	"github.com/bcloud-dev/bcloud/internal/storage"
)

// Options select what to verify.
type Options struct {
	Bucket storage.Bucket
	Server string
	// BackupID limits the check to one backup (and the WAL from its
	// begin); empty checks every DONE backup.
	BackupID string
	// Jobs is how many objects are read at once (default 4).
	Jobs int
}

// Problem is one thing that would make a restore fail.
type Problem struct {
	Kind   string `json:"kind"` // missing, corrupt, gap, unreadable
	Object string `json:"object"`
	Detail string `json:"detail"`
}

// BackupResult is the outcome for one backup.
type BackupResult struct {
	ID       string `json:"backup_id"`
	Status   string `json:"status"`
	Archives int    `json:"archives"`
	Members  int    `json:"members"`
	Bytes    int64  `json:"bytes"`
	OK       bool   `json:"ok"`
}

// WALResult is the outcome of the WAL check.
type WALResult struct {
	From      string   `json:"from,omitempty"`
	To        string   `json:"to,omitempty"`
	Segments  int      `json:"segments"`
	Timelines []uint32 `json:"timelines,omitempty"`
	OK        bool     `json:"ok"`
}

// Report is the whole outcome.
type Report struct {
	Server   string         `json:"server"`
	Backups  []BackupResult `json:"backups"`
	WAL      WALResult      `json:"wal"`
	Problems []Problem      `json:"problems"`
}

// OK reports whether nothing is wrong.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

type run struct {
	opts Options
	mu   sync.Mutex
	rep  *Report
}

func (r *run) problem(kind, object, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rep.Problems = append(r.rep.Problems, Problem{Kind: kind, Object: object, Detail: fmt.Sprintf(format, args...)})
}

// Run verifies and returns what it found. The error is for failures to
// look at all (the store cannot be listed); what is broken is in the report.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if opts.Jobs <= 0 {
		opts.Jobs = 4
	}
	r := &run{opts: opts, rep: &Report{Server: opts.Server, Problems: []Problem{}}}
	cat := &catalog.Catalog{Bucket: opts.Bucket, Server: opts.Server}
	entries, err := cat.List(ctx)
	if err != nil {
		return nil, err
	}
	var chosen []catalog.Entry
	for _, e := range entries {
		if e.Err != nil {
			r.problem("unreadable", e.ID+"/backup.info", "%v", e.Err)
			continue
		}
		if opts.BackupID != "" {
			if e.ID == opts.BackupID {
				chosen = append(chosen, e)
			}
			continue
		}
		if e.Info.StatusValue() == catalog.StatusDone {
			chosen = append(chosen, e)
		}
	}
	if opts.BackupID != "" && len(chosen) == 0 {
		return nil, fmt.Errorf("backup %s of server %s not found", opts.BackupID, opts.Server)
	}
	sort.Slice(chosen, func(i, j int) bool { return chosen[i].ID < chosen[j].ID })
	for _, e := range chosen {
		r.rep.Backups = append(r.rep.Backups, r.checkBackup(ctx, e))
	}
	wals, err := retention.ListWAL(ctx, opts.Bucket, opts.Server)
	if err != nil {
		return nil, err
	}
	if len(chosen) > 0 {
		r.rep.WAL = r.checkWAL(ctx, chosen[0].Info, wals)
	} else {
		r.rep.WAL.OK = true
	}
	return r.rep, nil
}
