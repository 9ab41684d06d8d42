package compress

import (
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Algorithm
	}{
		{"", None}, {"gzip", Gzip}, {"bzip2", Bzip2}, {"xz", XZ},
		{"snappy", Snappy}, {"zstd", Zstd}, {"lz4", LZ4},
	} {
		got, err := Parse(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"gz", "GZIP", "zst", "none", "brotli", " gzip"} {
		_, err := Parse(bad)
		if err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
			continue
		}
		for _, name := range []string{"gzip", "bzip2", "xz", "snappy", "zstd", "lz4"} {
			if !strings.Contains(err.Error(), name) {
				t.Errorf("Parse(%q) error %q does not list %s", bad, err, name)
			}
		}
	}
}

func TestSuffixes(t *testing.T) {
	want := map[Algorithm]string{None: "", Gzip: ".gz", Bzip2: ".bz2", XZ: ".xz", Snappy: ".snappy", Zstd: ".zst", LZ4: ".lz4"}
	for a, s := range want {
		if got := a.WALSuffix(); got != s {
			t.Errorf("%s.WALSuffix() = %q, want %q", a, got, s)
		}
		if got := a.TarSuffix(); got != s {
			t.Errorf("%s.TarSuffix() = %q, want %q", a, got, s)
		}
		if !a.Valid() {
			t.Errorf("%s.Valid() = false", a)
		}
	}
	if Algorithm("brotli").Valid() || Algorithm("brotli").WALSuffix() != "" {
		t.Error("unknown algorithm is valid or has a suffix")
	}
	if None.String() != "none" || Zstd.String() != "zstd" {
		t.Errorf("String: %q %q", None.String(), Zstd.String())
	}
}

func TestFromWALName(t *testing.T) {
	for _, tc := range []struct {
		in, base string
		algo     Algorithm
	}{
		{"000000010000000A00000042", "000000010000000A00000042", None},
		{"000000010000000A00000042.gz", "000000010000000A00000042", Gzip},
		{"000000010000000A00000042.bz2", "000000010000000A00000042", Bzip2},
		{"000000010000000A00000042.xz", "000000010000000A00000042", XZ},
		{"000000010000000A00000042.snappy", "000000010000000A00000042", Snappy},
		{"000000010000000A00000042.zst", "000000010000000A00000042", Zstd},
		{"000000010000000A00000042.lz4", "000000010000000A00000042", LZ4},
		{"00000002.history.gz", "00000002.history", Gzip},
		{"000000010000000A00000042.partial.zst", "000000010000000A00000042.partial", Zstd},
		{"000000010000000A00000042.00000028.backup.lz4", "000000010000000A00000042.00000028.backup", LZ4},
		{"x.gz.bz2", "x.gz", Bzip2}, // one suffix only
		{"x.zstd", "x.zstd", None},
		{"x.GZ", "x.GZ", None}, // suffixes are case-sensitive, as in Python
	} {
		algo, base := FromWALName(tc.in)
		if algo != tc.algo || base != tc.base {
			t.Errorf("FromWALName(%q) = %q, %q; want %q, %q", tc.in, algo, base, tc.algo, tc.base)
		}
	}
}

func TestFromTarName(t *testing.T) {
	for _, tc := range []struct {
		in   string
		algo Algorithm
		ok   bool
	}{
		{"data.tar", None, true},
		{"data_0001.tar", None, true},
		{"data.tar.gz", Gzip, true},
		{"16385.tar.bz2", Bzip2, true},
		{"data_0002.tar.snappy", Snappy, true},
		{"data.tar.lz4", LZ4, true},
		{"data.tar.zst", Zstd, true},
		{"data.tar.xz", XZ, true},
		{"x.zip", None, false},
		{"data.gz", None, false},
		{"data.tar.zip", None, false},
		{"backup.info", None, false},
	} {
		algo, ok := FromTarName(tc.in)
		if algo != tc.algo || ok != tc.ok {
			t.Errorf("FromTarName(%q) = %q, %v; want %q, %v", tc.in, algo, ok, tc.algo, tc.ok)
		}
	}
}

func TestParseLevel(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Level
	}{
		{"", LevelMedium}, {"medium", LevelMedium}, {"MEDIUM", LevelMedium},
		{"low", LevelLow}, {"Low", LevelLow}, {"HIGH", LevelHigh},
		{"5", LevelNumber(5)}, {"-3", LevelNumber(-3)}, {"+7", LevelNumber(7)}, {" 9 ", LevelNumber(9)},
		{"0", LevelNumber(0)},
	} {
		got, err := ParseLevel(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"fast", "1.5", "9x", "max"} {
		if _, err := ParseLevel(bad); err == nil {
			t.Errorf("ParseLevel(%q) succeeded", bad)
		}
	}
	if (Level{}) != LevelMedium {
		t.Error("zero Level is not medium")
	}
	for l, s := range map[Level]string{LevelLow: "low", LevelMedium: "medium", LevelHigh: "high", LevelNumber(-5): "-5"} {
		if l.String() != s {
			t.Errorf("String() = %q, want %q", l.String(), s)
		}
	}
}

func TestLevelResolve(t *testing.T) {
	// Rows of §2.2: low, medium, high, then clamping below and above.
	for _, tc := range []struct {
		algo                   Algorithm
		low, med, high, lo, hi int
		below, above           int
	}{
		{Gzip, 1, 6, 9, 1, 9, -4, 12},
		{Bzip2, 1, 5, 9, 1, 9, 0, 10},
		{XZ, 1, 3, 5, 1, 9, 0, 10},
		{Zstd, 1, 4, 9, -22, 22, -100, 23},
		{LZ4, 0, 6, 10, 0, 16, -1, 17},
	} {
		check := func(l Level, want int) {
			t.Helper()
			if got := l.Resolve(tc.algo); got != want {
				t.Errorf("%s: %v.Resolve = %d, want %d", tc.algo, l, got, want)
			}
		}
		check(LevelLow, tc.low)
		check(LevelMedium, tc.med)
		check(Level{}, tc.med)
		check(LevelHigh, tc.high)
		check(LevelNumber(tc.below), tc.lo)
		check(LevelNumber(tc.above), tc.hi)
		check(LevelNumber(tc.lo), tc.lo)
		check(LevelNumber(tc.hi), tc.hi)
	}
	check := LevelNumber(-5).Resolve(Zstd)
	if check != -5 {
		t.Errorf("zstd -5 resolved to %d", check)
	}
	for _, a := range []Algorithm{Snappy, None} {
		if n := LevelHigh.Resolve(a); n != 0 {
			t.Errorf("%s has level %d", a, n)
		}
	}
}

func TestLibraryLevels(t *testing.T) {
	for lvl, want := range map[int]zstd.EncoderLevel{
		-22: zstd.SpeedFastest, -1: zstd.SpeedFastest, 0: zstd.SpeedDefault, 1: zstd.SpeedFastest,
		2: zstd.SpeedFastest, 3: zstd.SpeedDefault, 4: zstd.SpeedDefault, 6: zstd.SpeedBetterCompression,
		9: zstd.SpeedBetterCompression, 10: zstd.SpeedBestCompression, 22: zstd.SpeedBestCompression,
	} {
		if got := zstdEncoderLevel(lvl); got != want {
			t.Errorf("zstd level %d -> %s, want %s", lvl, got, want)
		}
	}
	for lvl, want := range map[int]lz4.CompressionLevel{
		0: lz4.Fast, 2: lz4.Fast, 3: lz4.Level1, 6: lz4.Level1, 9: lz4.Level1,
		10: lz4.Level2, 11: lz4.Level3, 12: lz4.Level4, 16: lz4.Level4,
	} {
		if got, _ := lz4Level(lvl); got != want {
			t.Errorf("lz4 level %d -> %s, want %s", lvl, got, want)
		}
	}
}
