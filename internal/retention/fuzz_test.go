package retention

import (
	"strings"
	"testing"
)

// FuzzParsePolicy: any string parses to a policy that renders back to
// itself, or yields a one-line error.
func FuzzParsePolicy(f *testing.F) {
	for _, s := range []string{"REDUNDANCY 3", "RECOVERY WINDOW OF 7 DAYS", "30d", "4w", "6m", "", "REDUNDANCY 99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePolicy(s)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		again, err := ParsePolicy(p.String())
		if err != nil || again != p {
			t.Fatalf("%q -> %v -> %v, %v", s, p, again, err)
		}
	})
}
