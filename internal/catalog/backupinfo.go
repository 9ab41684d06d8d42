// Package catalog is the Barman Cloud backup catalog: the backup.info file
// (read and written byte for byte like Python barman), listing the backups
// of a server, resolving backup identifiers, keep annotations, and the
// console and JSON output of barman-cloud-backup-list and
// barman-cloud-backup-show.
package catalog

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Backup statuses (BackupInfo.Status). barman-cloud-backup only ever
// uploads DONE or FAILED.
const (
	StatusEmpty          = "EMPTY"
	StatusStarted        = "STARTED"
	StatusFailed         = "FAILED"
	StatusWaitingForWALs = "WAITING_FOR_WALS"
	StatusDone           = "DONE"
	StatusSyncing        = "SYNCING"
)

// DefaultXLOGSegmentSize is barman's default xlog_segment_size.
const DefaultXLOGSegmentSize = 16 << 20

// Tablespace is one entry of backup.info's tablespaces list.
type Tablespace struct {
	Name     string
	OID      int
	Location string
}

// KeyValue is a backup.info line kept verbatim.
type KeyValue struct {
	Key   string
	Value string
}

// BackupInfo is the content of a backup.info file. A nil pointer, slice or
// interface is Python's None. The backup ID is not part of the file (it is
// the directory name).
//
// Fields marked 3.11+ exist in newer barman releases only: they are read
// and rendered in JSON, but never written by Marshal, because barman 3.4
// refuses backup.info files with keys it does not know.
type BackupInfo struct {
	BackupLabel       *string // the backup_label file content, stored as a Python str literal
	BackupName        *string // omitted from the file when nil
	BeginOffset       *int64
	BeginTime         *time.Time
	BeginWAL          *string
	BeginXlog         *string  // start LSN, "%X/%X"
	ChildrenBackupIDs []string // 3.11+; nil or empty is None
	ClusterSize       *int64   // 3.11+
	Compression       *string
	ConfigFile        *string
	CopyStats         any     // a Python literal (usually Dict); None, empty or zero is written as None
	DataChecksums     *string // 3.11+
	DeduplicatedSize  *int64
	Encryption        *string // 3.17+
	EndOffset         *int64
	EndTime           *time.Time
	EndWAL            *string
	EndXlog           *string // stop LSN, "%X/%X"
	Error             *string
	HBAFile           *string
	IdentFile         *string
	IncludedFiles     []string // nil is None; empty is written as None too
	Mode              *string
	ParentBackupID    *string // 3.11+
	PGData            *string
	ServerName        *string
	Size              *int64
	SnapshotsInfo     any // a Python literal (Dict); omitted from the file when nil
	Status            *string
	SummarizeWAL      *string // 3.11+
	SystemID          *string
	Tablespaces       []Tablespace // nil or empty is None
	Timeline          *int
	Version           *int
	XLOGSegmentSize   *int64

	// Extra holds lines with unknown keys, in file order. They are kept for
	// callers but neither written nor rendered.
	Extra []KeyValue
}

// New returns a BackupInfo with barman's defaults: status EMPTY and the
// default WAL segment size; every other field is None.
func New() *BackupInfo {
	return &BackupInfo{Status: ptr(StatusEmpty), XLOGSegmentSize: ptr(int64(DefaultXLOGSegmentSize))}
}

func ptr[T any](v T) *T { return &v }

// Str returns the value of an optional string, or "" for None.
func Str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// StatusValue returns the status, or "" when it is None.
func (b *BackupInfo) StatusValue() string { return Str(b.Status) }

// IsSnapshot reports whether the backup is a snapshot backup, which has
// no tar archives.
func (b *BackupInfo) IsSnapshot() bool { return b.SnapshotsInfo != nil }

// Value encodings of a field, beyond what its Go type implies.
type fieldKind int

const (
	kindPlain   fieldKind = iota
	kindRepr              // backup_label: a Python str literal
	kindIDs               // children_backup_ids: comma-separated
	kindLiteral           // copy_stats, snapshots_info: any Python literal
)

type fieldDef struct {
	key  string
	in34 bool // written by barman 3.4 (and so by Marshal)
	hide bool // omitted when None (_hide_if_null)
	kind fieldKind
	ref  func(b *BackupInfo) any // pointer to the field
}

// fields lists every backup.info key known to barman 3.17, sorted as
// barman writes them.
var fields = []fieldDef{
	{key: "backup_label", in34: true, kind: kindRepr, ref: func(b *BackupInfo) any { return &b.BackupLabel }},
	{key: "backup_name", in34: true, hide: true, ref: func(b *BackupInfo) any { return &b.BackupName }},
	{key: "begin_offset", in34: true, ref: func(b *BackupInfo) any { return &b.BeginOffset }},
	{key: "begin_time", in34: true, ref: func(b *BackupInfo) any { return &b.BeginTime }},
	{key: "begin_wal", in34: true, ref: func(b *BackupInfo) any { return &b.BeginWAL }},
	{key: "begin_xlog", in34: true, ref: func(b *BackupInfo) any { return &b.BeginXlog }},
	{key: "children_backup_ids", kind: kindIDs, ref: func(b *BackupInfo) any { return &b.ChildrenBackupIDs }},
	{key: "cluster_size", ref: func(b *BackupInfo) any { return &b.ClusterSize }},
	{key: "compression", in34: true, ref: func(b *BackupInfo) any { return &b.Compression }},
	{key: "config_file", in34: true, ref: func(b *BackupInfo) any { return &b.ConfigFile }},
	{key: "copy_stats", in34: true, kind: kindLiteral, ref: func(b *BackupInfo) any { return &b.CopyStats }},
	{key: "data_checksums", ref: func(b *BackupInfo) any { return &b.DataChecksums }},
	{key: "deduplicated_size", in34: true, ref: func(b *BackupInfo) any { return &b.DeduplicatedSize }},
	{key: "encryption", ref: func(b *BackupInfo) any { return &b.Encryption }},
	{key: "end_offset", in34: true, ref: func(b *BackupInfo) any { return &b.EndOffset }},
	{key: "end_time", in34: true, ref: func(b *BackupInfo) any { return &b.EndTime }},
	{key: "end_wal", in34: true, ref: func(b *BackupInfo) any { return &b.EndWAL }},
	{key: "end_xlog", in34: true, ref: func(b *BackupInfo) any { return &b.EndXlog }},
	{key: "error", in34: true, ref: func(b *BackupInfo) any { return &b.Error }},
	{key: "hba_file", in34: true, ref: func(b *BackupInfo) any { return &b.HBAFile }},
	{key: "ident_file", in34: true, ref: func(b *BackupInfo) any { return &b.IdentFile }},
	{key: "included_files", in34: true, ref: func(b *BackupInfo) any { return &b.IncludedFiles }},
	{key: "mode", in34: true, ref: func(b *BackupInfo) any { return &b.Mode }},
	{key: "parent_backup_id", ref: func(b *BackupInfo) any { return &b.ParentBackupID }},
	{key: "pgdata", in34: true, ref: func(b *BackupInfo) any { return &b.PGData }},
	{key: "server_name", in34: true, ref: func(b *BackupInfo) any { return &b.ServerName }},
	{key: "size", in34: true, ref: func(b *BackupInfo) any { return &b.Size }},
	{key: "snapshots_info", in34: true, hide: true, kind: kindLiteral, ref: func(b *BackupInfo) any { return &b.SnapshotsInfo }},
	{key: "status", in34: true, ref: func(b *BackupInfo) any { return &b.Status }},
	{key: "summarize_wal", ref: func(b *BackupInfo) any { return &b.SummarizeWAL }},
	{key: "systemid", in34: true, ref: func(b *BackupInfo) any { return &b.SystemID }},
	{key: "tablespaces", in34: true, ref: func(b *BackupInfo) any { return &b.Tablespaces }},
	{key: "timeline", in34: true, ref: func(b *BackupInfo) any { return &b.Timeline }},
	{key: "version", in34: true, ref: func(b *BackupInfo) any { return &b.Version }},
	{key: "xlog_segment_size", in34: true, ref: func(b *BackupInfo) any { return &b.XLOGSegmentSize }},
}

var fieldByKey = func() map[string]*fieldDef {
	m := make(map[string]*fieldDef, len(fields))
	for i := range fields {
		m[fields[i].key] = &fields[i]
	}
	return m
}()

// Keys34 returns the keys Marshal writes (barman 3.4's BackupInfo fields),
// sorted. backup_name and snapshots_info are written only when set.
func Keys34() []string {
	var keys []string
	for _, f := range fields {
		if f.in34 {
			keys = append(keys, f.key)
		}
	}
	return keys
}

// ParseBackupInfo parses a backup.info file like barman's
// FieldListFile.load: one key=value per line, blank lines and lines
// starting with "#" skipped, key and value stripped, the literal None for
// a null value. Every key of barman 3.17 is accepted; unknown keys are kept
// in Extra instead of failing. Missing keys keep New's defaults. Naive
// timestamps are taken as UTC (see ParseTime). Errors name the line.
func ParseBackupInfo(data []byte) (*BackupInfo, error) {
	b := New()
	for n, line := range splitLines(data) {
		if !utf8.Valid(line) {
			return nil, fmt.Errorf("parse backup.info line %d: invalid UTF-8", n+1)
		}
		s := string(line)
		if isPySpace(s) || strings.HasPrefix(strings.TrimRightFunc(s, isPyWhite), "#") {
			continue
		}
		key, value, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("parse backup.info line %d: no '=' in %q", n+1, pyStrip(s))
		}
		key, value = pyStrip(key), pyStrip(value)
		if err := b.set(key, value); err != nil {
			return nil, fmt.Errorf("parse backup.info line %d: %s: %w", n+1, key, err)
		}
	}
	return b, nil
}

// splitLines splits like iterating over a binary file: at "\n" only,
// keeping no empty trailing line.
func splitLines(data []byte) [][]byte {
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// isPyWhite is Python's str.isspace for one character.
func isPyWhite(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) }

func isPySpace(s string) bool { return s != "" && strings.TrimFunc(s, isPyWhite) == "" }

func pyStrip(s string) string { return strings.TrimFunc(s, isPyWhite) }

// set stores one parsed value; the field's Python load function decides
// the type.
func (b *BackupInfo) set(key, value string) error {
	f := fieldByKey[key]
	if f == nil {
		b.Extra = append(b.Extra, KeyValue{Key: key, Value: value})
		return nil
	}
	none := value == "None"
	switch p := f.ref(b).(type) {
	case **string:
		*p = nil
		if none {
			return nil
		}
		if f.kind == kindRepr {
			v, err := ParseLiteral(value)
			if err != nil {
				return err
			}
			s, ok := v.(string)
			if !ok {
				return fmt.Errorf("expected a str literal, found %s", typeName(v))
			}
			value = s
		}
		*p = &value
	case **int64:
		*p = nil
		if !none {
			n, err := parsePyInt(value)
			if err != nil {
				return err
			}
			*p = &n
		}
	case **int:
		*p = nil
		if !none {
			n, err := parsePyInt(value)
			if err != nil {
				return err
			}
			if int64(int(n)) != n {
				return fmt.Errorf("%d is out of range", n)
			}
			*p = ptr(int(n))
		}
	case **time.Time:
		*p = nil
		if !none {
			t, err := ParseTime(value)
			if err != nil {
				return err
			}
			*p = &t
		}
	case *[]string:
		*p = nil
		if none {
			return nil
		}
		if f.kind == kindIDs {
			if value != "" {
				*p = strings.Split(value, ",")
			}
			return nil
		}
		list, err := parseStrList(value)
		if err != nil {
			return err
		}
		*p = list
	case *[]Tablespace:
		*p = nil
		if !none {
			ts, err := parseTablespaces(value)
			if err != nil {
				return err
			}
			*p = ts
		}
	case *any:
		*p = nil
		if !none {
			v, err := ParseLiteral(value)
			if err != nil {
				return err
			}
			*p = v
		}
	default:
		panic("catalog: unhandled field type for " + key)
	}
	return nil
}

// parsePyInt parses like Python's int(str): optional sign, decimal digits
// with single underscores between them.
func parsePyInt(s string) (int64, error) {
	digits := s
	if digits != "" && (digits[0] == '+' || digits[0] == '-') {
		digits = digits[1:]
	}
	ok := digits != "" && isDigit(digits[0]) && isDigit(digits[len(digits)-1]) && !strings.Contains(digits, "__")
	for i := 0; ok && i < len(digits); i++ {
		ok = isDigit(digits[i]) || digits[i] == '_'
	}
	if !ok {
		return 0, fmt.Errorf("invalid int %q", s)
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("int %q out of range", s)
	}
	return n, nil
}

// parseStrList parses included_files: a list (or tuple) of str.
func parseStrList(value string) ([]string, error) {
	v, err := ParseLiteral(value)
	if err != nil {
		return nil, err
	}
	items, ok := seqItems(v)
	if !ok {
		return nil, fmt.Errorf("expected a list, found %s", typeName(v))
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, ok := it.(string)
		if !ok {
			return nil, fmt.Errorf("expected a list of str, found %s", typeName(it))
		}
		out = append(out, s)
	}
	return out, nil
}

func seqItems(v any) ([]any, bool) {
	switch v := v.(type) {
	case List:
		return v, true
	case Tuple:
		return v, true
	}
	return nil, false
}

// parseTablespaces parses barman's tablespaces literal, a list of
// (name, oid, location) tuples; an empty list is None like in barman.
func parseTablespaces(value string) ([]Tablespace, error) {
	v, err := ParseLiteral(value)
	if err != nil {
		return nil, err
	}
	items, ok := seqItems(v)
	if !ok {
		return nil, fmt.Errorf("expected a list, found %s", typeName(v))
	}
	var out []Tablespace
	for _, it := range items {
		t, ok := seqItems(it)
		if !ok || len(t) != 3 {
			return nil, errors.New("expected (name, oid, location) tuples")
		}
		name, ok1 := t[0].(string)
		oid, ok2 := t[1].(int64)
		loc, ok3 := t[2].(string)
		if !ok1 || !ok2 || !ok3 || int64(int(oid)) != oid {
			return nil, fmt.Errorf("invalid tablespace %s", Repr(it))
		}
		out = append(out, Tablespace{Name: name, OID: int(oid), Location: loc})
	}
	return out, nil
}

// Marshal returns the backup.info content as barman 3.4 writes it: its
// keys only, sorted, "key=value\n", None for null values, backup_name and
// snapshots_info omitted when None, Python repr for backup_label,
// tablespaces, included_files, copy_stats and snapshots_info, and
// str(datetime) for times. Call Validate first for values that would not
// read back.
func (b *BackupInfo) Marshal() []byte {
	var buf bytes.Buffer
	for i := range fields {
		f := &fields[i]
		if !f.in34 {
			continue
		}
		v, isNone := b.dump(f)
		if isNone && f.hide {
			continue
		}
		buf.WriteString(f.key)
		buf.WriteByte('=')
		buf.WriteString(v)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// dump returns the field's text as barman's dump function produces it,
// and whether the field is None (before dumping).
func (b *BackupInfo) dump(f *fieldDef) (string, bool) {
	switch p := f.ref(b).(type) {
	case **string:
		if *p == nil {
			return "None", true
		}
		if f.kind == kindRepr {
			if **p == "" {
				return "None", false
			}
			return Repr(**p), false
		}
		return **p, false
	case **int64:
		if *p == nil {
			return "None", true
		}
		return strconv.FormatInt(**p, 10), false
	case **int:
		if *p == nil {
			return "None", true
		}
		return strconv.Itoa(**p), false
	case **time.Time:
		if *p == nil {
			return "None", true
		}
		return FormatTime(**p), false
	case *[]string:
		if *p == nil {
			return "None", true
		}
		if len(*p) == 0 {
			return "None", false
		}
		if f.kind == kindIDs {
			return strings.Join(*p, ","), false
		}
		list := make(List, len(*p))
		for i, s := range *p {
			list[i] = s
		}
		return Repr(list), false
	case *[]Tablespace:
		if len(*p) == 0 {
			return "None", *p == nil
		}
		return Repr(tablespaceList(*p)), false
	case *any:
		if *p == nil {
			return "None", true
		}
		if !truthy(*p) {
			return "None", false
		}
		return Repr(*p), false
	}
	panic("catalog: unhandled field type for " + f.key)
}

func tablespaceList(ts []Tablespace) List {
	list := make(List, len(ts))
	for i, t := range ts {
		list[i] = Tuple{t.Name, int64(t.OID), t.Location}
	}
	return list
}

// truthy is Python's bool() of a literal value.
func truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case int64:
		return v != 0
	case *big.Int:
		return v.Sign() != 0
	case float64:
		return v != 0
	case string:
		return v != ""
	case Bytes:
		return len(v) > 0
	case List:
		return len(v) > 0
	case Tuple:
		return len(v) > 0
	case Dict:
		return len(v) > 0
	}
	return true
}

// Validate reports values that Marshal would write but barman could not
// read back: line breaks or invalid UTF-8 in plain string fields, and
// times outside Python's year range.
func (b *BackupInfo) Validate() error {
	for i := range fields {
		f := &fields[i]
		if !f.in34 {
			continue
		}
		switch p := f.ref(b).(type) {
		case **string:
			if *p != nil && f.kind == kindPlain && (strings.ContainsAny(**p, "\n\r") || !utf8.ValidString(**p)) {
				return fmt.Errorf("validate backup.info: %s %q has a line break or invalid UTF-8", f.key, **p)
			}
		case **time.Time:
			if *p != nil && ((*p).Year() < 1 || (*p).Year() > 9999) {
				return fmt.Errorf("validate backup.info: %s %s is out of range", f.key, (*p).String())
			}
		}
	}
	return nil
}
