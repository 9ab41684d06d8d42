package verify

import (
	"context"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"

	"github.com/bcloud-dev/bcloud/internal/catalog"
	"github.com/bcloud-dev/bcloud/internal/compress"
	"github.com/bcloud-dev/bcloud/internal/layout"
	"github.com/bcloud-dev/bcloud/internal/retention"
	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/wal"
)

// checkWAL verifies the WAL a restore of the oldest chosen backup replays
// to reach the newest archived point: begin WAL of the backup, along the
// timeline history, to the newest segment of the newest timeline that
// descends from the backup's.
func (r *run) checkWAL(ctx context.Context, info *catalog.BackupInfo, wals []retention.WALName) WALResult {
	res := WALResult{}
	before := len(r.rep.Problems)
	segSize := int64(16 << 20)
	if info.XLOGSegmentSize != nil && *info.XLOGSegmentSize > 0 {
		segSize = *info.XLOGSegmentSize
	}
	begin, err := wal.ParseSegment(catalog.Str(info.BeginWAL))
	if err != nil {
		r.problem("unreadable", "backup.info", "begin_wal %q: %v", catalog.Str(info.BeginWAL), err)
		return res
	}
	keys := map[string]string{} // WAL name -> first key holding it
	newest := map[uint32]wal.Segment{}
	histories := map[uint32]string{}
	for _, w := range wals {
		keys[w.Name] = w.Keys[0]
		if kind, err := wal.Classify(w.Name); err == nil {
			switch kind {
			case wal.KindSegment:
				s, _ := wal.ParseSegment(w.Name)
				if n, ok := newest[s.TLI]; !ok || s.Name() > n.Name() {
					newest[s.TLI] = s
				}
			case wal.KindHistory:
				tli, _ := strconv.ParseUint(w.Name[:8], 16, 32)
				histories[uint32(tli)] = w.Keys[0]
			}
		}
	}
	// The newest timeline whose history descends from the backup's.
	target := begin.TLI
	var switches []wal.HistoryEntry
	var tlis []uint32
	for t := range histories {
		tlis = append(tlis, t)
	}
	sort.Slice(tlis, func(i, j int) bool { return tlis[i] > tlis[j] })
	for _, t := range tlis {
		if t <= begin.TLI {
			break
		}
		h, err := r.readHistory(ctx, histories[t])
		if err != nil {
			r.problem("corrupt", histories[t], "%v", err)
			continue
		}
		if descends(h, begin.TLI) {
			target, switches = t, h
			break
		}
	}
	// Walk: on each timeline, up to its switch point; then the next.
	var path []wal.Segment
	cur := begin
	for _, sw := range switches {
		if sw.TLI < begin.TLI {
			continue
		}
		last := wal.SegmentOf(sw.TLI, sw.SwitchLSN-1, segSize)
		for ; !after(cur, last, segSize); cur = cur.Next(segSize) {
			path = append(path, cur)
		}
		next := nextTLI(switches, sw.TLI, target)
		cur = wal.SegmentOf(next, sw.SwitchLSN, segSize)
		res.Timelines = append(res.Timelines, sw.TLI)
	}
	res.Timelines = append(res.Timelines, target)
	end, ok := newest[target]
	if !ok || after(cur, end, segSize) {
		end = cur // nothing archived past the switch yet: the begin segment must still exist
	}
	for ; !after(cur, end, segSize); cur = cur.Next(segSize) {
		path = append(path, cur)
	}
	if len(path) > 0 {
		res.From, res.To = path[0].Name(), path[len(path)-1].Name()
	}
	res.Segments = len(path)
	var present []string
	var gap []string // a run of consecutive missing segments
	flush := func() {
		switch len(gap) {
		case 0:
			return
		case 1:
			r.problem("missing", layout.WALKey(r.opts.Server, gap[0], ""), "WAL segment %s is missing: recovery past it is impossible", gap[0])
		default:
			r.problem("gap", layout.WALKey(r.opts.Server, gap[0], ""), "%d WAL segments %s to %s are missing: recovery past %s is impossible",
				len(gap), gap[0], gap[len(gap)-1], gap[0])
		}
		gap = nil
	}
	for _, s := range path {
		name := s.Name()
		if _, ok := keys[name]; ok {
			flush()
			present = append(present, name)
			continue
		}
		if _, ok := keys[name+".partial"]; ok && s.TLI != target {
			flush()
			present = append(present, name+".partial") // the last segment of a timeline left at promotion
			continue
		}
		gap = append(gap, name)
	}
	flush()
	r.parallel(ctx, present, func(name string) {
		if err := checkSegment(ctx, r.opts.Bucket, keys[name], name, segSize); err != nil {
			r.problem("corrupt", keys[name], "%v", err)
		}
	})
	res.OK = len(r.rep.Problems) == before
	return res
}

func (r *run) readHistory(ctx context.Context, key string) ([]wal.HistoryEntry, error) {
	algo, _ := compress.FromWALName(path.Base(key))
	rc, err := r.opts.Bucket.Get(ctx, key, 0, -1)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	dr, err := compress.NewReader(rc, algo)
	if err != nil {
		return nil, err
	}
	defer dr.Close()
	data, err := io.ReadAll(io.LimitReader(dr, 1<<20))
	if err != nil {
		return nil, err
	}
	return wal.ParseHistory(data)
}

// descends reports whether a timeline with history h passes through tli.
func descends(h []wal.HistoryEntry, tli uint32) bool {
	for _, e := range h {
		if e.TLI == tli {
			return true
		}
	}
	return false
}

// nextTLI is the timeline that follows tli in a history ending at target.
func nextTLI(h []wal.HistoryEntry, tli, target uint32) uint32 {
	for i, e := range h {
		if e.TLI == tli && i+1 < len(h) {
			return h[i+1].TLI
		}
	}
	return target
}

// after reports whether a lies after b in WAL order (timeline ignored).
func after(a, b wal.Segment, segSize int64) bool {
	perLog := uint64((1 << 32) / segSize)
	return uint64(a.Log)*perLog+uint64(a.Seg) > uint64(b.Log)*perLog+uint64(b.Seg)
}

// checkSegment reads a WAL object to its end and checks its size and the
// address in its first page header.
func checkSegment(ctx context.Context, b storage.Bucket, key, name string, segSize int64) error {
	algo, _ := compress.FromWALName(path.Base(key))
	rc, err := b.Get(ctx, key, 0, -1)
	if err != nil {
		return err
	}
	defer rc.Close()
	dr, err := compress.NewReader(storage.ContextReader(ctx, rc), algo)
	if err != nil {
		return err
	}
	defer dr.Close()
	head := make([]byte, 40)
	n, err := io.ReadFull(dr, head)
	if err != nil {
		return fmt.Errorf("read page header: %w", err)
	}
	rest, err := io.Copy(io.Discard, dr)
	if err != nil {
		return fmt.Errorf("decompress: %w", err)
	}
	size := int64(n) + rest
	if path.Ext(name) != ".partial" && size != segSize {
		return fmt.Errorf("segment is %d bytes, want %d", size, segSize)
	}
	return wal.CheckSegmentHeader(name, head, segSize)
}
