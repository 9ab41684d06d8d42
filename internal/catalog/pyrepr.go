package catalog

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode"
)

// Repr returns Python's repr() of a literal value (see ParseLiteral for the
// Go types). Other Go types are printed with %v and do not re-parse.
func Repr(v any) string {
	var b strings.Builder
	writeRepr(&b, v)
	return b.String()
}

func writeRepr(b *strings.Builder, v any) {
	switch v := v.(type) {
	case nil:
		b.WriteString("None")
	case bool:
		if v {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case int:
		b.WriteString(strconv.Itoa(v))
	case int64:
		b.WriteString(strconv.FormatInt(v, 10))
	case *big.Int:
		b.WriteString(v.String())
	case float64:
		b.WriteString(FormatFloat(v))
	case string:
		writeStrRepr(b, v)
	case Bytes:
		writeBytesRepr(b, v)
	case List:
		writeSeq(b, "[", "]", v, false)
	case []any:
		writeSeq(b, "[", "]", v, false)
	case Tuple:
		writeSeq(b, "(", ")", v, true)
	case Dict:
		b.WriteByte('{')
		for i, it := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			writeRepr(b, it.Key)
			b.WriteString(": ")
			writeRepr(b, it.Value)
		}
		b.WriteByte('}')
	default:
		fmt.Fprintf(b, "%v", v)
	}
}

func writeSeq(b *strings.Builder, open, close string, items []any, tuple bool) {
	b.WriteString(open)
	for i, e := range items {
		if i > 0 {
			b.WriteString(", ")
		}
		writeRepr(b, e)
	}
	if tuple && len(items) == 1 {
		b.WriteByte(',')
	}
	b.WriteString(close)
}

// quoteFor is Python's quote choice: single quotes unless the text has a
// single quote and no double quote.
func quoteFor(s string) byte {
	if strings.IndexByte(s, '\'') >= 0 && strings.IndexByte(s, '"') < 0 {
		return '"'
	}
	return '\''
}

// isPrintable is Python's str.isprintable for one character: letters,
// marks, numbers, punctuation, symbols and the ASCII space. Python's
// Unicode database version may classify a few recent code points
// differently from Go's.
func isPrintable(r rune) bool {
	return r == ' ' || unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S)
}

const hexDigits = "0123456789abcdef"

func writeStrRepr(b *strings.Builder, s string) {
	q := quoteFor(s)
	b.WriteByte(q)
	for _, r := range s { // invalid UTF-8 reads as U+FFFD
		switch {
		case r == rune(q) || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < ' ' || r == 0x7f:
			b.WriteString(`\x`)
			b.WriteByte(hexDigits[r>>4])
			b.WriteByte(hexDigits[r&0xf])
		case r < 0x7f || isPrintable(r):
			b.WriteRune(r)
		case r <= 0xff:
			fmt.Fprintf(b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			fmt.Fprintf(b, `\U%08x`, r)
		}
	}
	b.WriteByte(q)
}

func writeBytesRepr(b *strings.Builder, v Bytes) {
	q := quoteFor(string(v))
	b.WriteString("b")
	b.WriteByte(q)
	for _, c := range v {
		switch {
		case c == q || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c < ' ' || c >= 0x7f:
			b.WriteString(`\x`)
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte(q)
}

// FormatFloat returns Python's repr() of a float: the shortest string that
// round-trips, in fixed notation with at least one decimal when the decimal
// exponent is in [-4, 16), else in exponent notation ("1e-07", "1e+16").
func FormatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case math.IsNaN(f):
		return "nan"
	}
	// Shortest digits and exponent: "-d.ddde±XX".
	e := strconv.FormatFloat(f, 'e', -1, 64)
	sign := ""
	if e[0] == '-' {
		sign, e = "-", e[1:]
	}
	mant, expStr, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expStr)
	digits := strings.Replace(mant, ".", "", 1)
	decpt := exp + 1 // position of the decimal point relative to digits
	if decpt > -4 && decpt <= 16 {
		switch {
		case decpt <= 0:
			return sign + "0." + strings.Repeat("0", -decpt) + digits
		case decpt >= len(digits):
			return sign + digits + strings.Repeat("0", decpt-len(digits)) + ".0"
		default:
			return sign + digits[:decpt] + "." + digits[decpt:]
		}
	}
	out := digits[:1]
	if len(digits) > 1 {
		out += "." + digits[1:]
	}
	es := "+"
	if exp < 0 {
		es, exp = "-", -exp
	}
	return fmt.Sprintf("%s%se%s%02d", sign, out, es, exp)
}

// LiteralEqual reports whether two literal values are equal the way
// Python's == compares them (1 == 1.0 == True), except that NaN equals
// NaN and containers must have the same type.
func LiteralEqual(a, b any) bool {
	if na, ok := numeric(a); ok {
		nb, ok := numeric(b)
		return ok && na.eq(nb)
	}
	switch a := a.(type) {
	case nil:
		return b == nil
	case string:
		s, ok := b.(string)
		return ok && s == a
	case Bytes:
		s, ok := b.(Bytes)
		return ok && string(s) == string(a)
	case List:
		s, ok := b.(List)
		return ok && seqEqual(a, s)
	case Tuple:
		s, ok := b.(Tuple)
		return ok && seqEqual(a, s)
	case Dict:
		d, ok := b.(Dict)
		if !ok || len(d) != len(a) {
			return false
		}
		for i := range a {
			if !LiteralEqual(a[i].Key, d[i].Key) || !LiteralEqual(a[i].Value, d[i].Value) {
				return false
			}
		}
		return true
	}
	return false
}

func seqEqual(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !LiteralEqual(a[i], b[i]) {
			return false
		}
	}
	return true
}

// keyEqual is dict key equality: Python == without the NaN exception.
func keyEqual(a, b any) bool {
	if na, ok := numeric(a); ok {
		if nb, ok := numeric(b); ok {
			return !na.isNaN() && na.eq(nb)
		}
		return false
	}
	return LiteralEqual(a, b)
}

// num is a Python number for comparisons: an exact rational, or a float
// that is NaN or infinite.
type num struct {
	r       *big.Rat
	special float64 // NaN or ±Inf when r is nil
}

func (n num) isNaN() bool { return n.r == nil && math.IsNaN(n.special) }

func (n num) eq(m num) bool {
	if n.r == nil || m.r == nil {
		if n.isNaN() && m.isNaN() {
			return true
		}
		return n.r == nil && m.r == nil && n.special == m.special
	}
	return n.r.Cmp(m.r) == 0
}

func numeric(v any) (num, bool) {
	switch v := v.(type) {
	case bool:
		if v {
			return num{r: big.NewRat(1, 1)}, true
		}
		return num{r: new(big.Rat)}, true
	case int64:
		return num{r: new(big.Rat).SetInt64(v)}, true
	case int:
		return num{r: new(big.Rat).SetInt64(int64(v))}, true
	case *big.Int:
		return num{r: new(big.Rat).SetInt(v)}, true
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return num{special: v}, true
		}
		return num{r: new(big.Rat).SetFloat64(v)}, true
	}
	return num{}, false
}
