package catalog

import (
	"fmt"
	"io"
	"math"
	"math/big"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// RenderListConsole writes barman-cloud-backup-list's console output: a
// header, then one line per DONE backup sorted by ID, every column padded
// like Python's "{:<20}{:<25}{:<30}{:<17}{:<20}". keep maps backup IDs to
// their keep target ("full", "standalone"), shown as KEEP:FULL or
// KEEP:STANDALONE.
func RenderListConsole(w io.Writer, entries []Entry, keep map[string]string) error {
	sorted := append([]Entry(nil), entries...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	var b strings.Builder
	listRow(&b, "Backup ID", "End Time", "Begin Wal", "Archival Status", "Name")
	for _, e := range sorted {
		if e.Info == nil || e.Err != nil || e.Info.StatusValue() != StatusDone {
			continue
		}
		end := "None"
		if e.Info.EndTime != nil {
			end = e.Info.EndTime.Format("2006-01-02 15:04:05")
		}
		status := ""
		if k := keep[e.ID]; k != "" {
			status = "KEEP:" + strings.ToUpper(k)
		}
		listRow(&b, e.ID, end, pyStr(e.Info.BeginWAL), status, Str(e.Info.BackupName))
	}
	return writeString(w, b.String())
}

func listRow(b *strings.Builder, id, end, wal, status, name string) {
	b.WriteString(padRight(id, 20) + padRight(end, 25) + padRight(wal, 30) + padRight(status, 17) + padRight(name, 20) + "\n")
}

// padRight pads s with spaces to n characters, like Python's "{:<n}".
func padRight(s string, n int) string {
	if c := utf8.RuneCountInString(s); c < n {
		return s + strings.Repeat(" ", n-c)
	}
	return s
}

// pyStr is Python's str() of a value as "{}".format prints it.
func pyStr(v any) string {
	switch v := v.(type) {
	case *string:
		if v == nil {
			return "None"
		}
		return *v
	case *int64:
		if v == nil {
			return "None"
		}
		return fmt.Sprint(*v)
	case *int:
		if v == nil {
			return "None"
		}
		return fmt.Sprint(*v)
	case string:
		return v
	}
	return Repr(v)
}

func writeString(w io.Writer, s string) error {
	if _, err := io.WriteString(w, s); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// RenderShowConsole writes barman-cloud-backup-show's console output
// (barman 3.17's ConsoleOutputWriter.render_show_backup of to_dict()).
// It differs from barman 3.4 in three ways: it shows "Estimated Cluster
// Size" and a "Server information" section when the 3.11+ fields are set,
// it prints a blank line after the general section of a backup that is not
// DONE, and it uses deduplicated_size for "Backup Size" where 3.4 fails.
func RenderShowConsole(w io.Writer, e Entry) error {
	if e.Info == nil {
		return fmt.Errorf("render backup %s: %w", e.ID, errNoInfo(e))
	}
	b := e.Info
	var out strings.Builder
	line := func(s string) { out.WriteString(s + "\n") }
	row := func(k, v string) { line("  " + padRight(k, 23) + ": " + v) }
	header := func(k string) { line("  " + k + ":") }
	nested := func(k, v string) { line("    " + padRight(k, 21) + ": " + v) }
	status := b.StatusValue()
	copyDone := b.Status != nil && (status == StatusDone || status == StatusWaitingForWALs)

	line("Backup " + e.ID + ":")
	if Str(b.BackupName) != "" {
		row("Backup Name", *b.BackupName)
	}
	row("Server Name", pyStr(b.ServerName))
	if Str(b.SystemID) != "" {
		row("System Id", *b.SystemID)
	}
	row("Status", pyStr(b.Status))
	if copyDone {
		row("PostgreSQL Version", pyStr(b.Version))
		row("PGDATA directory", pyStr(b.PGData))
		if b.ClusterSize != nil && *b.ClusterSize != 0 {
			row("Estimated Cluster Size", PrettySize(float64(*b.ClusterSize)))
		}
	}
	line("")
	if Str(b.DataChecksums) != "" || Str(b.SummarizeWAL) != "" {
		header("Server information")
		if Str(b.DataChecksums) != "" {
			nested("Checksums", *b.DataChecksums)
		}
		if Str(b.SummarizeWAL) != "" {
			nested("WAL summarizer", *b.SummarizeWAL)
		}
		line("")
	}
	if !copyDone {
		if Str(b.Error) != "" {
			row("Error", *b.Error)
		}
		return writeString(w, out.String())
	}
	if snap, ok := b.SnapshotsInfo.(Dict); ok {
		header("Snapshot information")
		for _, it := range snap {
			if k := pyStr(it.Key); k != "snapshots" && k != "provider_info" {
				nested(k, pyStr(it.Value))
			}
		}
		if pi, ok := snap.Get("provider_info"); ok {
			if pi, ok := pi.(Dict); ok {
				for _, it := range pi {
					nested(pyStr(it.Key), pyStr(it.Value))
				}
			}
		}
		line("")
		snaps, _ := snap.Get("snapshots")
		items, _ := seqItems(snaps)
		for _, s := range items {
			md, _ := s.(Dict)
			prov, _ := md.Get("provider")
			pd, _ := prov.(Dict)
			sorted := append(Dict(nil), pd...)
			sort.SliceStable(sorted, func(i, j int) bool { return pyStr(sorted[i].Key) < pyStr(sorted[j].Key) })
			for _, it := range sorted {
				nested(pyStr(it.Key), pyStr(it.Value))
			}
			mount, _ := md.Get("mount")
			mnt, _ := mount.(Dict)
			mp, _ := mnt.Get("mount_point")
			mo, _ := mnt.Get("mount_options")
			nested("Mount point", pyStr(mp))
			nested("Mount options", pyStr(mo))
			line("")
		}
	}
	if len(b.Tablespaces) > 0 {
		header("Tablespaces")
		for _, t := range b.Tablespaces {
			nested(t.Name, fmt.Sprintf("%s (oid: %d)", t.Location, t.OID))
		}
		line("")
	}
	header("Base backup information")
	if Str(b.Mode) != "" {
		nested("Backup Method", *b.Mode)
	}
	if Str(b.Encryption) != "" {
		nested("Encryption", *b.Encryption)
	}
	if b.DeduplicatedSize != nil && *b.DeduplicatedSize != 0 {
		nested("Backup Size", PrettySize(float64(*b.DeduplicatedSize)))
	}
	nested("Timeline", pyStr(b.Timeline))
	nested("Begin WAL", pyStr(b.BeginWAL))
	nested("End WAL", pyStr(b.EndWAL))
	nested("Begin time", timeStr(b.BeginTime))
	nested("End time", timeStr(b.EndTime))
	if stats, ok := b.CopyStats.(Dict); ok {
		copyTime := floatOf(stats, "copy_time")
		if copyTime != 0 {
			v := HumanDuration(copyTime)
			if a := floatOf(stats, "analysis_time"); a >= 1 {
				v += " + " + HumanDuration(a) + " startup"
			}
			nested("Copy time", v)
		}
	}
	nested("Begin Offset", pyStr(b.BeginOffset))
	nested("End Offset", pyStr(b.EndOffset))
	nested("Begin LSN", pyStr(b.BeginXlog))
	nested("End LSN", pyStr(b.EndXlog))
	line("")
	if Str(b.Mode) == "postgres" && len(b.ChildrenBackupIDs) > 0 {
		nested("Children Backup(s)", strings.Join(b.ChildrenBackupIDs, ","))
	}
	return writeString(w, out.String())
}

// timeStr is str() of an optional datetime.
func timeStr(t *time.Time) string {
	if t == nil {
		return "None"
	}
	return FormatTime(*t)
}

// floatOf returns a numeric dict value as float64, or 0.
func floatOf(d Dict, key string) float64 {
	v, _ := d.Get(key)
	switch v := v.(type) {
	case int64:
		return float64(v)
	case *big.Int:
		f, _ := new(big.Float).SetInt(v).Float64()
		return f
	case float64:
		return v
	case bool:
		if v {
			return 1
		}
	}
	return 0
}

// PrettySize is barman's pretty_size with 1024 units: "512 B", "28.6 MiB".
func PrettySize(size float64) string {
	suffixes := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"}
	for i, s := range suffixes {
		if math.Abs(size) < 1024 || i == len(suffixes)-1 {
			if i == 0 {
				return fmt.Sprintf("%d %s", int64(size), s)
			}
			return fmt.Sprintf("%.1f %s", size, s)
		}
		size /= 1024
	}
	return ""
}

// HumanDuration is barman's human_readable_timedelta of a number of
// seconds: "1 minute", "2 hours, 3 seconds", "less than one second", with
// " ago" for negative values.
func HumanDuration(seconds float64) string {
	us := math.RoundToEven(math.Abs(seconds) * 1e6)
	days := int64(us / 86400e6)
	secs := int64(math.Mod(math.Floor(us/1e6), 86400))
	var parts []string
	add := func(n int64, unit string) {
		switch {
		case n == 1:
			parts = append(parts, fmt.Sprintf("1 %s", unit))
		case n > 1:
			parts = append(parts, fmt.Sprintf("%d %ss", n, unit))
		}
	}
	add(days, "day")
	add(secs/3600, "hour")
	add(secs/60%60, "minute")
	add(secs%60, "second")
	human := strings.Join(parts, ", ")
	if us < 1e6 {
		human = "less than one second"
	}
	if seconds < 0 && us > 0 {
		human += " ago"
	}
	return human
}
