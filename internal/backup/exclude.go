package backup

import (
	"fmt"
	"regexp"
	"strings"
)

// PGDataExclude is barman's PGDATA_EXCLUDE_LIST: rules that apply only to
// the PGDATA walk.
var PGDataExclude = []string{"/pg_log/*", "/log/*", "/pg_xlog/*", "/pg_wal/*", "/global/pg_control"}

// CommonExclude is barman's EXCLUDE_LIST, applied to PGDATA and to every
// tablespace. Its temporary-relation rule "**/[0-9]*/t[0-9]*_[0-9]*" never
// matches anything because barman treats brackets literally; it is kept
// for byte-for-byte parity with barman-cloud-backup.
var CommonExclude = []string{
	"pgsql_tmp*", "postgresql.auto.conf.tmp", "current_logfiles.tmp", "pg_internal.init",
	"postmaster.pid", "postmaster.opts", "recovery.conf", "standby.signal",
	"**/[0-9]*/t[0-9]*_[0-9]*",
	"pg_dynshmem/*", "pg_notify/*", "pg_replslot/*", "pg_serial/*", "pg_stat_tmp/*", "pg_snapshots/*",
	"pg_subtrans/*",
}

// Filter decides which entries of a directory walk go into an archive,
// with the semantics of barman's path_allowed (barman/fs.py): an include
// match keeps the entry, else an exclude match drops it, else it is kept.
//
// Rules are rsync-like: a leading "/" anchors the rule at the walk root,
// an unanchored rule also matches as "**/rule", and a trailing "/" limits
// the rule to directories. In a rule "**" matches any characters, "*" any
// characters but "/", "?" any one character (including "/"), and every
// other character is literal, "[" and "]" included.
//
// Paths are the archive member names: "." for the walk root, "./name" for
// entries directly in it, and "dir", "dir/name" below it.
type Filter struct {
	include, exclude []rule
}

type rule struct {
	dirOnly bool
	res     []*regexp.Regexp
}

// NewFilter compiles exclude and include rules. Empty rules are ignored.
func NewFilter(exclude, include []string) (*Filter, error) {
	inc, err := compileRules(include)
	if err != nil {
		return nil, err
	}
	exc, err := compileRules(exclude)
	if err != nil {
		return nil, err
	}
	return &Filter{include: inc, exclude: exc}, nil
}

func compileRules(rules []string) ([]rule, error) {
	out := make([]rule, 0, len(rules))
	for _, r := range rules {
		if r == "" {
			continue
		}
		var c rule
		if strings.HasSuffix(r, "/") {
			c.dirOnly = true
			r = r[:len(r)-1]
		}
		anchored := strings.HasPrefix(r, "/")
		if anchored {
			r = r[1:]
		}
		patterns := []string{r}
		if !anchored {
			patterns = append(patterns, "**/"+r)
		}
		for _, p := range patterns {
			re, err := regexp.Compile(translateRule(p))
			if err != nil {
				return nil, fmt.Errorf("compile rule %q: %w", r, err)
			}
			c.res = append(c.res, re)
		}
		out = append(out, c)
	}
	return out, nil
}

// translateRule turns a rule into an anchored regular expression as
// barman's _translate_to_regexp does.
func translateRule(p string) string {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	for i := 0; i < len(p); i++ {
		switch {
		case strings.HasPrefix(p[i:], "**"):
			b.WriteString(".*")
			i++
		case p[i] == '*':
			b.WriteString("[^/]*")
		case p[i] == '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(p[i : i+1]))
		}
	}
	b.WriteString(`)\z`)
	return b.String()
}

// Allowed reports whether the entry at path (a member name) is archived.
func (f *Filter) Allowed(path string, isDir bool) bool {
	if f == nil {
		return true
	}
	if matchRules(f.include, path, isDir) {
		return true
	}
	return !matchRules(f.exclude, path, isDir)
}

func matchRules(rules []rule, path string, isDir bool) bool {
	for _, r := range rules {
		if r.dirOnly && !isDir {
			continue
		}
		for _, re := range r.res {
			if re.MatchString(path) {
				return true
			}
		}
	}
	return false
}

// PGDataFilter returns the filter of the PGDATA walk: the PGDATA and common
// lists, plus the tablespaces, given by their oids and, for those located
// inside PGDATA, their path relative to PGDATA ("/ts1").
func PGDataFilter(tablespaceOIDs []uint32, insidePGData []string) (*Filter, error) {
	ex := append(append([]string{}, PGDataExclude...), CommonExclude...)
	ex = append(ex, insidePGData...)
	for _, oid := range tablespaceOIDs {
		ex = append(ex, fmt.Sprintf("/pg_tblspc/%d", oid))
	}
	return NewFilter(ex, nil)
}

// TablespaceFilter returns the filter of a tablespace walk: only the
// PG_<major>_* directory of the server's major version ("15", "9.6").
func TablespaceFilter(major string) (*Filter, error) {
	return NewFilter(append([]string{"/*"}, CommonExclude...), []string{"/PG_" + major + "_*"})
}
