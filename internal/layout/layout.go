// Package layout is the Barman Cloud object key scheme, as pure functions.
// Keys are relative to the destination prefix (storage.WithPrefix applies it):
//
//	<server>/wals/<TLI><LOG>/<segment>[.ext]      WAL segments, .backup, .partial
//	<server>/wals/<TLI>.history[.ext]             timeline history
//	<server>/base/<backupID>/backup.info          catalog entry, written last
//	<server>/base/<backupID>/data[_NNNN].tar[.ext] PGDATA archive parts
//	<server>/base/<backupID>/<oid>[_NNNN].tar[.ext] tablespace archive parts
//	<server>/base/<backupID>/annotations/keep      keep annotation
package layout

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// walNameRe is barman's _xlog_re: segments, .backup, .partial and .history.
var walNameRe = regexp.MustCompile(`^([0-9A-Fa-f]{8})(?:([0-9A-Fa-f]{8})([0-9A-Fa-f]{8})(?:\.[0-9A-Fa-f]{8}\.backup|\.partial)?|\.history)$`)

// IsWALFile reports whether the base name of p is a WAL segment, a
// .backup, .partial or .history file (barman's is_any_xlog_file).
func IsWALFile(p string) bool { return walNameRe.MatchString(path.Base(p)) }

// HashDir returns the 16-character directory of a WAL file: timeline and
// log in uppercase hex, or "" for .history files.
func HashDir(name string) string {
	m := walNameRe.FindStringSubmatch(path.Base(name))
	if m == nil || m[2] == "" {
		return ""
	}
	return strings.ToUpper(m[1] + m[2])
}

// WALDir returns the key prefix of a server's WAL archive, with a trailing slash.
func WALDir(server string) string { return server + "/wals/" }

// WALKey returns the object key of a WAL file with the compression
// suffix ext ("" for none, else ".gz", ".zst", ...).
func WALKey(server, name, ext string) string {
	return path.Join(server, "wals", HashDir(name), path.Base(name)+ext)
}

// BaseDir returns the key prefix of a server's base backups, with a trailing slash.
func BaseDir(server string) string { return server + "/base/" }

// BackupDir returns the key prefix of one backup, with a trailing slash.
func BackupDir(server, backupID string) string { return server + "/base/" + backupID + "/" }

// BackupInfoKey returns the key of a backup's backup.info.
func BackupInfoKey(server, backupID string) string {
	return BackupDir(server, backupID) + "backup.info"
}

// KeepKey returns the key of a backup's keep annotation.
func KeepKey(server, backupID string) string { return BackupDir(server, backupID) + "annotations/keep" }

// ArchiveName returns the object name of archive part n (0 for the main
// part) of the archive called name ("data" or a tablespace oid), with the
// tar compression suffix ext ("", ".gz", ".bz2", ".snappy", ...).
func ArchiveName(name string, n int, ext string) string {
	if n > 0 {
		name = fmt.Sprintf("%s_%04d", name, n)
	}
	return name + ".tar" + ext
}

// ArchiveKey returns the key of archive part n of a backup.
func ArchiveKey(server, backupID, name string, n int, ext string) string {
	return BackupDir(server, backupID) + ArchiveName(name, n, ext)
}

var backupIDRe = regexp.MustCompile(`^\d{8}T\d{6}$`)

// IsBackupID reports whether s has the form of a backup ID (YYYYMMDDTHHMMSS).
func IsBackupID(s string) bool { return backupIDRe.MatchString(s) }
