package wal

import (
	"strings"
	"testing"

	"github.com/bcloud-dev/bcloud/internal/layout"
)

// FuzzWALName: classification, hash dirs and segment parsing agree and
// never panic on any name.
func FuzzWALName(f *testing.F) {
	for _, s := range []string{"000000010000000000000001", "00000002.history", "000000010000000000000001.partial",
		"000000010000000000000001.00000028.backup", "../x", "", "0000000100000000000000zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		kind, err := Classify(name)
		if err != nil {
			return
		}
		if strings.Contains(name, "/") {
			t.Fatalf("%q accepted with a slash", name)
		}
		key := layout.WALKey("srv", name, "")
		if !strings.HasPrefix(key, "srv/wals/") || !strings.HasSuffix(key, name) {
			t.Fatalf("WALKey(%q) = %q", name, key)
		}
		if kind == KindSegment {
			seg, err := ParseSegment(name)
			if err != nil || !strings.EqualFold(seg.Name(), name) {
				t.Fatalf("segment %q: %v %v", name, seg, err)
			}
		}
	})
}

// FuzzParseHistory: any content parses or errors, never panics.
func FuzzParseHistory(f *testing.F) {
	f.Add([]byte("1\t0/3000000\tno recovery target specified\n"))
	f.Add([]byte("# comment\n\n2\t1/A0000028\tx\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseHistory(data)
	})
}
