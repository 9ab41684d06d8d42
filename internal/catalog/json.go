package catalog

import (
	"fmt"
	"io"
	"math"
	"math/big"
	"sort"
	"strconv"
	"time"
)

// Member is one key/value pair of an Object.
type Member struct {
	Key   string
	Value any
}

// Object is a JSON object whose members keep their order, as a Python dict
// does. Values are nil, bool, int, int64, *big.Int, float64, string, Object,
// []any and the literal types of ParseLiteral (List and Tuple become arrays,
// Dict an object).
type Object []Member

// Get returns the value of the first member named key.
func (o Object) Get(key string) (any, bool) {
	for _, m := range o {
		if m.Key == key {
			return m.Value, true
		}
	}
	return nil, false
}

// MarshalJSON encodes o in Python's json.dumps format. encoding/json
// compacts the result, so use PyJSON when the exact bytes matter.
func (o Object) MarshalJSON() ([]byte, error) { return PyJSON(o) }

// PyJSON encodes v exactly like Python's json.dumps with default options:
// ", " and ": " separators, non-ASCII and DEL escaped as \uXXXX (surrogate
// pairs above U+FFFF), floats as repr() with Infinity and NaN, dict keys
// converted to strings like Python does.
func PyJSON(v any) ([]byte, error) {
	return appendJSON(nil, v)
}

func appendJSON(buf []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(buf, "null"...), nil
	case bool:
		if v {
			return append(buf, "true"...), nil
		}
		return append(buf, "false"...), nil
	case int:
		return strconv.AppendInt(buf, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(buf, v, 10), nil
	case *big.Int:
		return v.Append(buf, 10), nil
	case float64:
		return append(buf, jsonFloat(v)...), nil
	case string:
		return appendJSONString(buf, v), nil
	case Object:
		buf = append(buf, '{')
		for i, m := range v {
			if i > 0 {
				buf = append(buf, ", "...)
			}
			buf = appendJSONString(buf, m.Key)
			buf = append(buf, ": "...)
			var err error
			if buf, err = appendJSON(buf, m.Value); err != nil {
				return nil, err
			}
		}
		return append(buf, '}'), nil
	case Dict:
		obj := make(Object, 0, len(v))
		for _, it := range v {
			k, err := jsonKey(it.Key)
			if err != nil {
				return nil, err
			}
			obj = append(obj, Member{Key: k, Value: it.Value})
		}
		return appendJSON(buf, obj)
	case List:
		return appendJSONArray(buf, v)
	case Tuple:
		return appendJSONArray(buf, v)
	case []any:
		return appendJSONArray(buf, v)
	}
	return nil, fmt.Errorf("encode JSON: values of type %s are not JSON serializable", typeName(v))
}

func appendJSONArray(buf []byte, items []any) ([]byte, error) {
	buf = append(buf, '[')
	for i, e := range items {
		if i > 0 {
			buf = append(buf, ", "...)
		}
		var err error
		if buf, err = appendJSON(buf, e); err != nil {
			return nil, err
		}
	}
	return append(buf, ']'), nil
}

// jsonFloat is float.__repr__ with JSON's names for the special values.
func jsonFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return FormatFloat(f)
}

// jsonKey converts a dict key the way json.dumps does.
func jsonKey(k any) (string, error) {
	switch k := k.(type) {
	case string:
		return k, nil
	case nil:
		return "null", nil
	case bool:
		if k {
			return "true", nil
		}
		return "false", nil
	case int64:
		return strconv.FormatInt(k, 10), nil
	case *big.Int:
		return k.String(), nil
	case float64:
		return jsonFloat(k), nil
	}
	return "", fmt.Errorf("encode JSON: keys must be str, int, float, bool or None, not %s", typeName(k))
}

func appendJSONString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	for _, r := range s { // invalid UTF-8 reads as U+FFFD
		switch {
		case r == '"':
			buf = append(buf, `\"`...)
		case r == '\\':
			buf = append(buf, `\\`...)
		case r == '\n':
			buf = append(buf, `\n`...)
		case r == '\r':
			buf = append(buf, `\r`...)
		case r == '\t':
			buf = append(buf, `\t`...)
		case r == '\b':
			buf = append(buf, `\b`...)
		case r == '\f':
			buf = append(buf, `\f`...)
		case r >= ' ' && r < 0x7f:
			buf = append(buf, byte(r))
		case r > 0xffff:
			r -= 0x10000
			buf = appendU(appendU(buf, 0xd800|(r>>10)), 0xdc00|(r&0x3ff))
		default:
			buf = appendU(buf, r)
		}
	}
	return append(buf, '"')
}

func appendU(buf []byte, r rune) []byte {
	return append(buf, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}

// JSON returns the backup as barman's BackupInfo.to_json renders it for
// barman-cloud-backup-list and -show (barman 3.17): every field in key
// order (backup_name and snapshots_info only when set) with backup_label
// as its repr() string, tablespaces as [name, oid, location] arrays,
// copy_stats, included_files and snapshots_info as JSON values, begin_time
// and end_time in ctime() form, then backup_id, then begin_time_iso and
// end_time_iso (isoformat) when the times are set.
func (b *BackupInfo) JSON(backupID string) Object {
	obj := make(Object, 0, len(fields)+3)
	for i := range fields {
		f := &fields[i]
		var v any
		switch p := f.ref(b).(type) {
		case **time.Time:
			if *p != nil {
				v = CTime(**p)
			}
		case **int64:
			if *p != nil {
				v = **p
			}
		case **int:
			if *p != nil {
				v = **p
			}
		case *[]Tablespace:
			if len(*p) > 0 {
				list := make([]any, len(*p))
				for i, t := range *p {
					list[i] = []any{t.Name, t.OID, t.Location}
				}
				v = list
			}
		case *[]string:
			if f.kind == kindIDs {
				if s, _ := b.dump(f); s != "None" {
					v = s
				}
			} else if *p != nil {
				list := make([]any, len(*p))
				for i, s := range *p {
					list[i] = s
				}
				v = list
			}
		case **string:
			if f.kind == kindRepr {
				if s, _ := b.dump(f); s != "None" {
					v = s
				}
			} else if *p != nil {
				v = **p
			}
		case *any:
			v = *p
		}
		if v == nil && f.hide {
			continue
		}
		obj = append(obj, Member{Key: f.key, Value: v})
	}
	obj = append(obj, Member{Key: "backup_id", Value: backupID})
	if b.BeginTime != nil {
		obj = append(obj, Member{Key: "begin_time_iso", Value: ISOTime(*b.BeginTime)})
	}
	if b.EndTime != nil {
		obj = append(obj, Member{Key: "end_time_iso", Value: ISOTime(*b.EndTime)})
	}
	return obj
}

// RenderListJSON writes barman-cloud-backup-list --format json:
// {"backups_list": [...]} with every readable backup, any status, sorted
// by backup ID, and a final newline.
func RenderListJSON(w io.Writer, entries []Entry) error {
	sorted := append([]Entry(nil), entries...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	list := []any{}
	for _, e := range sorted {
		if e.Info != nil && e.Err == nil {
			list = append(list, e.Info.JSON(e.ID))
		}
	}
	return writeJSONLine(w, Object{{Key: "backups_list", Value: list}})
}

// RenderShowJSON writes barman-cloud-backup-show --format json: the
// backup under its server_name ("cloud" for barman-cloud-backup backups,
// "null" when None), and a final newline.
func RenderShowJSON(w io.Writer, e Entry) error {
	if e.Info == nil {
		return fmt.Errorf("render backup %s: %w", e.ID, errNoInfo(e))
	}
	key := "null"
	if e.Info.ServerName != nil {
		key = *e.Info.ServerName
	}
	return writeJSONLine(w, Object{{Key: key, Value: e.Info.JSON(e.ID)}})
}

func writeJSONLine(w io.Writer, v any) error {
	data, err := PyJSON(v)
	if err != nil {
		return err
	}
	if _, err := w.Write(append(data, '\n')); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// errNoInfo is the error of an entry without a parsed backup.info.
func errNoInfo(e Entry) error {
	if e.Err != nil {
		return e.Err
	}
	return ErrNotFound
}
