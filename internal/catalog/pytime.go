package catalog

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseTime parses a backup.info timestamp the way barman's
// load_datetime_tz (dateutil) does for the forms barman and PostgreSQL
// produce: "2024-01-15 10:30:00.123456+00:00", with "T" or a space between
// date and time, an optional time, seconds and fraction (truncated to
// microseconds), and an optional zone "Z", "UTC", "GMT", "±HH", "±HHMM",
// "±HH:MM" or "±HH:MM:SS", optionally after a space. The offset is kept as
// a fixed zone.
//
// A time without a zone is taken as UTC. Python barman takes it as the
// local time of the machine reading it, which makes the result depend on
// that machine; barman itself always writes an offset.
func ParseTime(s string) (time.Time, error) {
	orig := s
	bad := func() (time.Time, error) { return time.Time{}, fmt.Errorf("invalid timestamp %q", orig) }
	num := func(n int) (int, bool) {
		if len(s) < n {
			return 0, false
		}
		for i := 0; i < n; i++ {
			if !isDigit(s[i]) {
				return 0, false
			}
		}
		v, _ := strconv.Atoi(s[:n])
		s = s[n:]
		return v, true
	}
	lit := func(c byte) bool {
		if len(s) > 0 && s[0] == c {
			s = s[1:]
			return true
		}
		return false
	}
	s = strings.TrimSpace(s)
	year, ok := num(4)
	if !ok {
		return bad()
	}
	dash := lit('-')
	month, ok := num(2)
	if !ok || dash != lit('-') {
		return bad()
	}
	day, ok := num(2)
	if !ok {
		return bad()
	}
	var hour, minute, sec, usec int
	if lit('T') || lit(' ') {
		s = strings.TrimLeft(s, " ")
		if hour, ok = num(2); !ok {
			return bad()
		}
		colon := lit(':')
		if minute, ok = num(2); !ok {
			return bad()
		}
		if (colon && lit(':')) || (!colon && len(s) > 0 && isDigit(s[0])) {
			if sec, ok = num(2); !ok {
				return bad()
			}
			if lit('.') || lit(',') {
				n := 0
				for n < len(s) && isDigit(s[n]) {
					n++
				}
				if n == 0 {
					return bad()
				}
				frac := (s[:n] + "000000")[:6]
				usec, _ = strconv.Atoi(frac)
				s = s[n:]
			}
		}
	}
	s = strings.TrimLeft(s, " ")
	loc := time.UTC
	switch {
	case s == "" || s == "Z" || s == "UTC" || s == "GMT" || s == "z":
	case s[0] == '+' || s[0] == '-':
		sign := 1
		if s[0] == '-' {
			sign = -1
		}
		s = s[1:]
		oh, ok := num(2)
		if !ok {
			return bad()
		}
		var om, os int
		colon := lit(':')
		if len(s) > 0 {
			if om, ok = num(2); !ok {
				return bad()
			}
			if colon && lit(':') {
				if os, ok = num(2); !ok {
					return bad()
				}
			}
		}
		if s != "" || oh > 23 || om > 59 || os > 59 {
			return bad()
		}
		loc = time.FixedZone("", sign*(oh*3600+om*60+os))
	default:
		return bad()
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, usec*1000, loc)
	if t.Year() != year || int(t.Month()) != month || t.Day() != day || t.Hour() != hour ||
		t.Minute() != minute || t.Second() != sec || year < 1 {
		return bad()
	}
	return t, nil
}

// pyOffset formats a UTC offset like Python: "+HH:MM", or "+HH:MM:SS"
// when it has seconds.
func pyOffset(t time.Time) string {
	_, off := t.Zone()
	sign := '+'
	if off < 0 {
		sign, off = '-', -off
	}
	s := fmt.Sprintf("%c%02d:%02d", sign, off/3600, off/60%60)
	if off%60 != 0 {
		s += fmt.Sprintf(":%02d", off%60)
	}
	return s
}

// pyISO formats t like Python's datetime.isoformat(sep) for an aware
// datetime: microseconds only when non-zero, then the offset.
func pyISO(t time.Time, sep string) string {
	s := t.Format("2006-01-02" + sep + "15:04:05")
	if us := t.Nanosecond() / 1000; us != 0 {
		s += fmt.Sprintf(".%06d", us)
	}
	return s + pyOffset(t)
}

// FormatTime returns Python's str(datetime) of t, as written in
// backup.info: "2024-01-15 10:30:00.123456+00:00", without the fraction
// when the microseconds are 0. Sub-microsecond precision is dropped.
func FormatTime(t time.Time) string { return pyISO(t, " ") }

// ISOTime returns Python's datetime.isoformat() of t.
func ISOTime(t time.Time) string { return pyISO(t, "T") }

// CTime returns Python's datetime.ctime() of t: "Mon Jan 15 10:30:00 2024",
// with the day of the month padded with a space.
func CTime(t time.Time) string { return t.Format("Mon Jan _2 15:04:05 2006") }
