package postgres

import "testing"

func TestParseFormatLSN(t *testing.T) {
	cases := []struct {
		s    string
		v    uint64
		back string
	}{
		{"0/0", 0, "0/0"},
		{"0/2000028", 0x2000028, "0/2000028"},
		{"16/B374D848", 0x16B374D848, "16/B374D848"},
		{"16/b374d848", 0x16B374D848, "16/B374D848"},
		{"FFFFFFFF/FFFFFFFF", 0xFFFFFFFFFFFFFFFF, "FFFFFFFF/FFFFFFFF"},
		{"0/01", 1, "0/1"},
	}
	for _, c := range cases {
		v, err := ParseLSN(c.s)
		if err != nil {
			t.Fatalf("ParseLSN(%q): %v", c.s, err)
		}
		if v != c.v {
			t.Errorf("ParseLSN(%q) = %#x, want %#x", c.s, v, c.v)
		}
		if got := FormatLSN(v); got != c.back {
			t.Errorf("FormatLSN(%#x) = %q, want %q", v, got, c.back)
		}
	}
	for _, bad := range []string{"", "0", "/1", "1/", "x/1", "1/2/3", "100000000/0", "0/100000000", "-1/0"} {
		if _, err := ParseLSN(bad); err == nil {
			t.Errorf("ParseLSN(%q) succeeded", bad)
		}
	}
}

func TestWALFileName(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		tli    int
		lsn    string
		seg    int64
		name   string
		offset int64
	}{
		// Values as barman.xlog.location_to_xlogfile_name_offset gives them.
		{1, "0/2000028", 16 * mib, "000000010000000000000002", 0x28},
		{1, "0/2000100", 16 * mib, "000000010000000000000002", 0x100},
		{1, "16/B374D848", 16 * mib, "0000000100000016000000B3", 0x74D848},
		{2, "16/B374D848", 1 * mib, "000000020000001600000B37", 0x4D848},
		{1, "0/2000028", 1 * mib, "000000010000000000000020", 0x28},
		{1, "0/FFFFFFFF", 16 * mib, "0000000100000000000000FF", 0xFFFFFF},
		{1, "0/FFFFFFFF", 1 * mib, "000000010000000000000FFF", 0xFFFFF},
		{0x1A, "1/0", 64 * mib, "0000001A0000000100000000", 0},
		{3, "2/87654321", 1024 * mib, "000000030000000200000002", 0x07654321},
	}
	for _, c := range cases {
		lsn, err := ParseLSN(c.lsn)
		if err != nil {
			t.Fatal(err)
		}
		if got := WALFileName(c.tli, lsn, c.seg); got != c.name {
			t.Errorf("WALFileName(%d, %s, %d) = %s, want %s", c.tli, c.lsn, c.seg, got, c.name)
		}
		if got := WALOffset(lsn, c.seg); got != c.offset {
			t.Errorf("WALOffset(%s, %d) = %#x, want %#x", c.lsn, c.seg, got, c.offset)
		}
	}
}
