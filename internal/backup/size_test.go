package backup

import "testing"

// sizeCases are check_size inputs with barman's result; 0 means an error.
var sizeCases = []struct {
	in   string
	want int64
}{
	{"1", 1},
	{"1024", 1024},
	{"100B", 100},
	{"100b", 100},
	{"1kB", 1024},
	{"1KB", 1024},
	{"1kb", 1024},
	{"1MB", 1 << 20},
	{"100GB", 100 << 30},
	{"1TB", 1 << 40},
	{"1PB", 1 << 50},
	{"1EB", 1 << 60},
	{"1.5GB", 3 << 29},
	{"0.5KB", 512},
	{"1KiB", 1000},
	{"1MiB", 1000000},
	{"5MiB", 5000000},
	{"1.5MiB", 1500000},
	{"1GiB", 1000000000},
	{"10iB", 10},
	{" 7 ", 7},
	{"1_000", 1000},
	{"+5", 5},
	{"1e3KB", 1024000},
	{"0", 0},
	{"-1", 0},
	{"0.0001KB", 0},
	{"", 0},
	{"B", 0},
	{"iB", 0},
	{"KB", 0},
	{"KiB", 0},
	{"10K", 0},
	{"10M", 0},
	{"1.5B", 0},
	{"1.5", 0},
	{"abc", 0},
	{"1_", 0},
	{"0x10", 0},
	{"1 GB", 1 << 30},
	{"nanKB", 0},
	{"infKB", 0},
	{"100YB", 0},
}

func TestParseSize(t *testing.T) {
	for _, c := range sizeCases {
		got, err := ParseSize(c.in)
		if c.want == 0 {
			if err == nil {
				t.Errorf("ParseSize(%q) = %d, want an error", c.in, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
}
