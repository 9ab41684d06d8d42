package compress

import (
	"fmt"
	"strconv"
	"strings"
)

// Level is a parsed --compression-level: one of the named classes low,
// medium and high, or an integer. The zero value is medium, which is what
// barman uses when the flag is absent.
type Level struct {
	class levelClass
	n     int
}

type levelClass uint8

const (
	classMedium levelClass = iota
	classLow
	classHigh
	classNumber
)

// The named level classes.
var (
	LevelLow    = Level{class: classLow}
	LevelMedium = Level{class: classMedium}
	LevelHigh   = Level{class: classHigh}
)

// LevelNumber returns an explicit integer level. It is clamped into the
// algorithm's range when used, as barman's Compressor.__init__ does.
func LevelNumber(n int) Level { return Level{class: classNumber, n: n} }

// ParseLevel parses a --compression-level value like barman's
// parse_compression_level: "low", "medium" or "high" in any case, or an
// integer (negative allowed). The empty string is medium.
func ParseLevel(s string) (Level, error) {
	t := strings.TrimSpace(s)
	switch strings.ToLower(t) {
	case "", "medium":
		return LevelMedium, nil
	case "low":
		return LevelLow, nil
	case "high":
		return LevelHigh, nil
	}
	n, err := strconv.Atoi(t)
	if err != nil {
		return Level{}, fmt.Errorf("parse compression level %q: must be low, medium, high or an integer", s)
	}
	return LevelNumber(n), nil
}

// String returns "low", "medium", "high" or the integer.
func (l Level) String() string {
	switch l.class {
	case classLow:
		return "low"
	case classHigh:
		return "high"
	case classNumber:
		return strconv.Itoa(l.n)
	}
	return "medium"
}

// levelRange is one row of the level table (barman/compression.py).
type levelRange struct {
	min, max          int
	low, medium, high int
}

// levelTable is §2.2 of the format spec: valid range and the low, medium
// (default) and high values of each algorithm.
var levelTable = map[Algorithm]levelRange{
	Gzip:  {min: 1, max: 9, low: 1, medium: 6, high: 9},
	Bzip2: {min: 1, max: 9, low: 1, medium: 5, high: 9},
	XZ:    {min: 1, max: 9, low: 1, medium: 3, high: 5},
	Zstd:  {min: -22, max: 22, low: 1, medium: 4, high: 9},
	LZ4:   {min: 0, max: 16, low: 0, medium: 6, high: 10},
}

// Resolve returns the integer level l means for algorithm a, in barman's
// terms (zstd 4, lz4 6, ...): a named class maps through the table, and an
// integer is clamped into the algorithm's range. Snappy, None and unknown
// algorithms have no levels and return 0.
func (l Level) Resolve(a Algorithm) int {
	r, ok := levelTable[a]
	if !ok {
		return 0
	}
	switch l.class {
	case classLow:
		return r.low
	case classHigh:
		return r.high
	case classNumber:
		return min(max(l.n, r.min), r.max)
	}
	return r.medium
}
