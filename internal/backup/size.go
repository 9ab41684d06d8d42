package backup

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseSize parses a human-readable size as barman's check_size does
// (barman/utils.py): case-insensitive; a plain integer is bytes; "B" may
// follow a number of bytes ("1234B"); "kB", "MB", "GB", "TB", "PB", "EB",
// "ZB", "YB" multiply by powers of 1024, and "KiB", "MiB"... by powers of
// 1000 (barman's inversion of the SI convention, kept as is). The number
// before a unit may be a decimal ("1.5GB"); the result is truncated to an
// integer and must be at least 1.
func ParseSize(s string) (int64, error) {
	v := strings.ToUpper(s)
	bad := fmt.Errorf("parse size %q: not a valid size string (e.g. 1024, 100MB, 1.5GB)", s)
	if !strings.HasSuffix(v, "B") {
		n, err := parseInt(v)
		if err != nil || n < 1 {
			return 0, bad
		}
		return n, nil
	}
	base, idx := 1024.0, 2
	if len(v) >= 2 && v[len(v)-2] == 'I' {
		base, idx = 1000, 3
	}
	if len(v) < idx {
		return 0, bad
	}
	mult := base
	for _, prefix := range "KMGTPEZY" {
		if rune(v[len(v)-idx]) == prefix {
			f, err := parseFloat(v[:len(v)-idx])
			if err != nil {
				return 0, bad
			}
			x := math.Trunc(f * mult)
			if math.IsNaN(x) || math.IsInf(x, 0) || x >= math.MaxInt64 {
				return 0, fmt.Errorf("parse size %q: too large", s)
			}
			if x < 1 {
				return 0, bad
			}
			return int64(x), nil
		}
		mult *= base
	}
	n, err := parseInt(v[:len(v)-idx+1])
	if err != nil || n < 1 {
		return 0, bad
	}
	return n, nil
}

// parseInt parses like Python's int(str): surrounding whitespace, a sign
// and underscores between digits are allowed.
func parseInt(s string) (int64, error) {
	s, err := pythonDigits(s)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(s, 10, 64)
}

// parseFloat parses like Python's float(str) for finite decimal values.
func parseFloat(s string) (float64, error) {
	s, err := pythonDigits(s)
	if err != nil {
		return 0, err
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789+-.E", r) {
			return 0, fmt.Errorf("not a number: %q", s)
		}
	}
	return strconv.ParseFloat(s, 64)
}

// pythonDigits trims whitespace and removes underscores that sit between
// two digits, rejecting any other underscore.
func pythonDigits(s string) (string, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "_") {
		return s, nil
	}
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '_' {
			if i == 0 || i == len(s)-1 || !isDigit(s[i-1]) || !isDigit(s[i+1]) {
				return "", fmt.Errorf("misplaced underscore in %q", s)
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String(), nil
}
