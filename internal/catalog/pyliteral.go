package catalog

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Python literal values, as produced by ParseLiteral and accepted by Repr:
//
//	nil        None
//	bool       True / False
//	int64      int that fits in 64 bits
//	*big.Int   any larger int
//	float64    float
//	string     str (always valid UTF-8; lone surrogates are not supported)
//	Bytes      bytes
//	List       list
//	Tuple      tuple
//	Dict       dict, in insertion order
//
// These are the values barman stores in backup.info through repr() and
// reads back with ast.literal_eval.
type (
	// Bytes is a Python bytes value.
	Bytes []byte
	// List is a Python list.
	List []any
	// Tuple is a Python tuple.
	Tuple []any
	// Dict is a Python dict; Items keep insertion order and keys are unique.
	Dict []Item
)

// Item is one key/value pair of a Dict.
type Item struct {
	Key   any
	Value any
}

// Get returns the value stored under a str key.
func (d Dict) Get(key string) (any, bool) {
	for _, it := range d {
		if k, ok := it.Key.(string); ok && k == key {
			return it.Value, true
		}
	}
	return nil, false
}

// maxDepth bounds nesting like CPython's parser does ("too many nested
// parentheses"), so hostile input cannot exhaust the stack.
const maxDepth = 200

// ParseLiteral parses a Python literal the way ast.literal_eval does for the
// subset barman writes: str and bytes (any quote style, r/u/b prefixes,
// implicit concatenation), int, float, None, True, False, list, tuple and
// dict, with Python's whitespace, comment and line-continuation rules
// inside brackets (between top-level tokens it is a little more lenient:
// any blank, newline or comment is skipped). Sets, complex numbers,
// Ellipsis, \N{...} escapes and lone surrogate escapes are rejected with
// an error. Errors give the byte offset of the problem.
func ParseLiteral(src string) (any, error) {
	if !utf8.ValidString(src) {
		return nil, errors.New("source is not valid UTF-8")
	}
	if strings.IndexByte(src, 0) >= 0 {
		return nil, errors.New("source contains a null byte")
	}
	p := &litParser{s: src}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.peek() == ',' { // a bare tuple: "1, 2"
		p.i++
		t := Tuple{v}
		for p.skipSpace(); p.i < len(p.s); p.skipSpace() {
			e, err := p.value(0)
			if err != nil {
				return nil, err
			}
			t = append(t, e)
			p.skipSpace()
			if p.peek() != ',' {
				break
			}
			p.i++
		}
		v = t
	}
	if p.i < len(p.s) {
		return nil, p.errorf("unexpected %q after value", p.rest(10))
	}
	return v, nil
}

type litParser struct {
	s string
	i int
}

func (p *litParser) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *litParser) rest(n int) string {
	r := p.s[p.i:]
	if len(r) > n {
		r = r[:n]
	}
	return r
}

func (p *litParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

// skipSpace skips what the Python tokenizer ignores between tokens inside
// brackets: blanks, newlines, comments and backslash continuations.
func (p *litParser) skipSpace() {
	for p.i < len(p.s) {
		switch c := p.s[p.i]; {
		case c == ' ' || c == '\t' || c == '\f' || c == '\n' || c == '\r':
			p.i++
		case c == '#':
			for p.i < len(p.s) && p.s[p.i] != '\n' && p.s[p.i] != '\r' {
				p.i++
			}
		case c == '\\' && strings.HasPrefix(p.s[p.i+1:], "\n"):
			p.i += 2
		case c == '\\' && strings.HasPrefix(p.s[p.i+1:], "\r\n"):
			p.i += 3
		default:
			return
		}
	}
}

func (p *litParser) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, p.errorf("too deeply nested")
	}
	if p.i >= len(p.s) {
		return nil, p.errorf("unexpected end of input")
	}
	c := p.s[p.i]
	switch {
	case c == '[':
		p.i++
		items, err := p.sequence(']', depth)
		if err != nil {
			return nil, err
		}
		return List(items), nil
	case c == '(':
		return p.paren(depth)
	case c == '{':
		return p.dict(depth)
	case c == '\'' || c == '"':
		return p.strings()
	case c == '+' || c == '-':
		return p.signed(depth)
	case isDigit(c) || (c == '.' && p.i+1 < len(p.s) && isDigit(p.s[p.i+1])):
		return p.number()
	case isIdentStart(c):
		j := p.i
		for j < len(p.s) && isIdentChar(p.s[j]) {
			j++
		}
		if j < len(p.s) && (p.s[j] == '\'' || p.s[j] == '"') && isStringPrefix(p.s[p.i:j]) {
			return p.strings()
		}
		word := p.s[p.i:j]
		switch word {
		case "None":
			p.i = j
			return nil, nil
		case "True":
			p.i = j
			return true, nil
		case "False":
			p.i = j
			return false, nil
		}
		return nil, p.errorf("unsupported name %q", word)
	}
	return nil, p.errorf("unexpected %q", p.rest(10))
}

// sequence parses comma-separated values up to the closing byte.
func (p *litParser) sequence(closing byte, depth int) ([]any, error) {
	items := []any{}
	for {
		p.skipSpace()
		if p.peek() == closing {
			p.i++
			return items, nil
		}
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		items = append(items, v)
		p.skipSpace()
		switch p.peek() {
		case ',':
			p.i++
		case closing:
			p.i++
			return items, nil
		default:
			return nil, p.errorf("expected ',' or %q, found %q", closing, p.rest(10))
		}
	}
}

// paren parses a tuple, or a parenthesised value when there is no comma.
func (p *litParser) paren(depth int) (any, error) {
	p.i++
	p.skipSpace()
	if p.peek() == ')' {
		p.i++
		return Tuple{}, nil
	}
	first, err := p.value(depth + 1)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	switch p.peek() {
	case ')':
		p.i++
		return first, nil
	case ',':
		p.i++
		rest, err := p.sequence(')', depth)
		if err != nil {
			return nil, err
		}
		return append(Tuple{first}, rest...), nil
	}
	return nil, p.errorf("expected ',' or ')', found %q", p.rest(10))
}

func (p *litParser) dict(depth int) (any, error) {
	p.i++
	d := Dict{}
	for {
		p.skipSpace()
		if p.peek() == '}' {
			p.i++
			return d, nil
		}
		k, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.peek() != ':' {
			return nil, p.errorf("expected ':' (sets are not supported), found %q", p.rest(10))
		}
		p.i++
		p.skipSpace()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if !hashable(k) {
			return nil, p.errorf("unhashable dict key of type %s", typeName(k))
		}
		d = dictSet(d, k, v)
		p.skipSpace()
		switch p.peek() {
		case ',':
			p.i++
		case '}':
			p.i++
			return d, nil
		default:
			return nil, p.errorf("expected ',' or '}', found %q", p.rest(10))
		}
	}
}

// dictSet stores v under k like a Python dict: an equal key (1 == 1.0 ==
// True) keeps its first spelling and position and takes the new value.
func dictSet(d Dict, k, v any) Dict {
	for i := range d {
		if keyEqual(d[i].Key, k) {
			d[i].Value = v
			return d
		}
	}
	return append(d, Item{Key: k, Value: v})
}

func hashable(v any) bool {
	switch v := v.(type) {
	case List, Dict:
		return false
	case Tuple:
		for _, e := range v {
			if !hashable(e) {
				return false
			}
		}
	}
	return true
}

// signed parses a unary + or - applied to a number, possibly in parentheses.
func (p *litParser) signed(depth int) (any, error) {
	neg := p.s[p.i] == '-'
	p.i++
	p.skipSpace()
	start := p.i
	v, err := p.value(depth + 1)
	if err != nil {
		return nil, err
	}
	if p.s[start] == '+' || p.s[start] == '-' {
		return nil, p.errorf("repeated unary sign")
	}
	switch n := v.(type) {
	case int64:
		if !neg {
			return n, nil
		}
		if n == -n && n != 0 { // math.MinInt64 cannot be negated in int64
			return new(big.Int).Neg(big.NewInt(n)), nil
		}
		return -n, nil
	case *big.Int:
		if neg {
			return normInt(new(big.Int).Neg(n)), nil
		}
		return n, nil
	case float64:
		if neg {
			return -n, nil
		}
		return n, nil
	}
	return nil, p.errorf("unary sign applied to %s", typeName(v))
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isHexDigit(c byte) bool   { return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'f') }
func isIdentStart(c byte) bool { return c == '_' || (c|0x20 >= 'a' && c|0x20 <= 'z') || c >= 0x80 }
func isIdentChar(c byte) bool  { return isIdentStart(c) || isDigit(c) }

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case int64, *big.Int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case Bytes:
		return "bytes"
	case List:
		return "list"
	case Tuple:
		return "tuple"
	case Dict:
		return "dict"
	}
	return fmt.Sprintf("%T", v)
}

// digitRun scans digits accepted by ok, with single underscores allowed
// between digits, and returns them without underscores.
func (p *litParser) digitRun(ok func(byte) bool) (string, error) {
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		if ok(c) {
			b.WriteByte(c)
			p.i++
			continue
		}
		if c == '_' && b.Len() > 0 && p.i+1 < len(p.s) && ok(p.s[p.i+1]) {
			p.i++
			continue
		}
		break
	}
	if p.peek() == '_' {
		return "", p.errorf("invalid number literal")
	}
	return b.String(), nil
}

// number parses an int or float token following Python's lexical rules.
func (p *litParser) number() (any, error) {
	start := p.i
	if p.peek() == '0' && p.i+1 < len(p.s) {
		base := 0
		var ok func(byte) bool
		switch p.s[p.i+1] | 0x20 {
		case 'x':
			base, ok = 16, isHexDigit
		case 'o':
			base, ok = 8, func(c byte) bool { return c >= '0' && c <= '7' }
		case 'b':
			base, ok = 2, func(c byte) bool { return c == '0' || c == '1' }
		}
		if base != 0 {
			p.i += 2
			if p.peek() == '_' {
				p.i++
			}
			digits, err := p.digitRun(ok)
			if err != nil {
				return nil, err
			}
			if digits == "" || p.i < len(p.s) && (isIdentChar(p.s[p.i]) || p.s[p.i] == '.') {
				return nil, p.errorf("invalid number literal %q", p.s[start:min(p.i+1, len(p.s))])
			}
			n, _ := new(big.Int).SetString(digits, base)
			return normInt(n), nil
		}
	}
	intPart, err := p.digitRun(isDigit)
	if err != nil {
		return nil, err
	}
	isFloat := false
	frac := ""
	if p.peek() == '.' {
		isFloat = true
		p.i++
		if isDigit(p.peek()) {
			if frac, err = p.digitRun(isDigit); err != nil {
				return nil, err
			}
		}
	}
	exp := ""
	if p.peek()|0x20 == 'e' {
		isFloat = true
		p.i++
		sign := ""
		if c := p.peek(); c == '+' || c == '-' {
			sign = string(c)
			p.i++
		}
		digits, err := p.digitRun(isDigit)
		if err != nil {
			return nil, err
		}
		if digits == "" {
			return nil, p.errorf("invalid number literal %q", p.s[start:p.i])
		}
		exp = "e" + sign + digits
	}
	if c := p.peek(); c == 'j' || c == 'J' {
		return nil, p.errorf("complex numbers are not supported")
	}
	if p.i < len(p.s) && isIdentChar(p.s[p.i]) {
		return nil, p.errorf("invalid number literal %q", p.s[start:p.i+1])
	}
	if isFloat {
		if intPart == "" {
			intPart = "0"
		}
		if frac == "" {
			frac = "0"
		}
		f, err := strconv.ParseFloat(intPart+"."+frac+exp, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, p.errorf("invalid float %q", p.s[start:p.i])
		}
		return f, nil
	}
	if len(intPart) > 1 && strings.TrimLeft(intPart, "0") != "" && intPart[0] == '0' {
		return nil, p.errorf("leading zeros in decimal integer literals are not permitted")
	}
	n, _ := new(big.Int).SetString(intPart, 10)
	return normInt(n), nil
}

// normInt returns n as an int64 when it fits, else n itself.
func normInt(n *big.Int) any {
	if n.IsInt64() {
		return n.Int64()
	}
	return n
}
