package restore

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bcloud-dev/bcloud/internal/postgres"
)

// RecoveryTarget describes how PostgreSQL recovers the restored data
// directory on its first start: where WAL comes from and where replay
// stops. With no target set, recovery replays every archived WAL file
// ("latest").
type RecoveryTarget struct {
	// RestoreCommand fetches archived WAL, e.g.
	// "bcloud wal-restore s3://bucket/path server %f %p". Required.
	RestoreCommand string
	// At most one of Time, LSN, Name, XID and Immediate is set.
	Time      string // recovery_target_time, a timestamp PostgreSQL accepts
	LSN       string // recovery_target_lsn, "X/X"
	Name      string // recovery_target_name, a restore point
	XID       string // recovery_target_xid, a transaction id
	Immediate bool   // recovery_target = 'immediate': stop once consistent
	// Timeline is recovery_target_timeline: "latest" when empty,
	// "current" or a number.
	Timeline string
	// Action is recovery_target_action: "promote" when empty, "pause" or
	// "shutdown".
	Action string
	// Exclusive stops just before the target (recovery_target_inclusive
	// = off) instead of just after it.
	Exclusive bool
}

// Validate checks the target's settings.
func (t *RecoveryTarget) Validate() error {
	if strings.TrimSpace(t.RestoreCommand) == "" {
		return fmt.Errorf("recovery target: a restore command is required")
	}
	n := 0
	for _, set := range []bool{t.Time != "", t.LSN != "", t.Name != "", t.XID != "", t.Immediate} {
		if set {
			n++
		}
	}
	if n > 1 {
		return fmt.Errorf("recovery target: choose one of time, LSN, name, xid and immediate")
	}
	if t.LSN != "" {
		if _, err := postgres.ParseLSN(t.LSN); err != nil {
			return fmt.Errorf("recovery target: %w", err)
		}
	}
	if t.XID != "" {
		if _, err := strconv.ParseUint(t.XID, 10, 64); err != nil {
			return fmt.Errorf("recovery target: xid %q is not a transaction number", t.XID)
		}
	}
	switch t.Timeline {
	case "", "latest", "current":
	default:
		if v, err := strconv.ParseUint(t.Timeline, 10, 32); err != nil || v == 0 {
			return fmt.Errorf("recovery target: timeline %q must be latest, current or a positive number", t.Timeline)
		}
	}
	switch t.Action {
	case "", "promote", "pause", "shutdown":
	default:
		return fmt.Errorf("recovery target: action %q must be promote, pause or shutdown", t.Action)
	}
	return nil
}

// settings returns the recovery parameters in the order they are written.
func (t *RecoveryTarget) settings() [][2]string {
	s := [][2]string{{"restore_command", t.RestoreCommand}}
	switch {
	case t.Time != "":
		s = append(s, [2]string{"recovery_target_time", t.Time})
	case t.LSN != "":
		s = append(s, [2]string{"recovery_target_lsn", t.LSN})
	case t.Name != "":
		s = append(s, [2]string{"recovery_target_name", t.Name})
	case t.XID != "":
		s = append(s, [2]string{"recovery_target_xid", t.XID})
	case t.Immediate:
		s = append(s, [2]string{"recovery_target", "immediate"})
	}
	if t.Exclusive && (t.Time != "" || t.LSN != "" || t.XID != "") {
		s = append(s, [2]string{"recovery_target_inclusive", "off"})
	}
	tl := t.Timeline
	if tl == "" {
		tl = "latest"
	}
	s = append(s, [2]string{"recovery_target_timeline", tl})
	action := t.Action
	if action == "" {
		action = "promote"
	}
	if t.Time != "" || t.LSN != "" || t.Name != "" || t.XID != "" || t.Immediate {
		s = append(s, [2]string{"recovery_target_action", action})
	}
	return s
}

// quoteConf quotes a value for postgresql.conf.
func quoteConf(v string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), "'", "''") + "'"
}

// WriteRecoveryConfig makes dir recover to t on its next start. For
// PostgreSQL 12 and later (version is server_version_num) it appends the
// settings to postgresql.auto.conf, where they win over earlier lines,
// and creates recovery.signal; before 12 it writes recovery.conf. New
// files get the owner of dir.
func WriteRecoveryConfig(dir string, version int, t *RecoveryTarget) error {
	if err := t.Validate(); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Recovery settings written by bcloud restore at %s\n", time.Now().Format(time.RFC3339))
	for _, kv := range t.settings() {
		fmt.Fprintf(&b, "%s = %s\n", kv[0], quoteConf(kv[1]))
	}
	if version > 0 && version < 120000 {
		return writeOwned(dir, "recovery.conf", []byte(b.String()), false)
	}
	autoConf := filepath.Join(dir, "postgresql.auto.conf")
	prefix := ""
	if old, err := os.ReadFile(autoConf); err == nil && len(old) > 0 && old[len(old)-1] != '\n' {
		prefix = "\n"
	}
	if err := writeOwned(dir, "postgresql.auto.conf", []byte(prefix+b.String()), true); err != nil {
		return err
	}
	return writeOwned(dir, "recovery.signal", nil, false)
}

// writeOwned writes (or appends to) dir/name with mode 0600 and gives a
// new file the owner of dir.
func writeOwned(dir, name string, data []byte, appendTo bool) error {
	p := filepath.Join(dir, name)
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if appendTo {
		flags = os.O_WRONLY | os.O_CREATE | os.O_APPEND
	}
	f, err := os.OpenFile(p, flags, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", p, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return chownLike(p, dir)
}
