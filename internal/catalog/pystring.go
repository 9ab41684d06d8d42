package catalog

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

func isStringPrefix(s string) bool {
	switch strings.ToLower(s) {
	case "r", "u", "b", "br", "rb":
		return true
	}
	return false
}

// strings parses one or more adjacent string literals and concatenates them.
func (p *litParser) strings() (any, error) {
	var out strings.Builder
	kind := "" // "str" or "bytes" once the first literal is read
	for {
		j := p.i
		for j < len(p.s) && isIdentChar(p.s[j]) {
			j++
		}
		prefix := strings.ToLower(p.s[p.i:j])
		if j >= len(p.s) || (p.s[j] != '\'' && p.s[j] != '"') || (prefix != "" && !isStringPrefix(prefix)) {
			break
		}
		isBytes := strings.Contains(prefix, "b")
		k := map[bool]string{false: "str", true: "bytes"}[isBytes]
		if kind != "" && kind != k {
			return nil, p.errorf("cannot mix bytes and nonbytes literals")
		}
		kind = k
		p.i = j
		if err := p.stringLiteral(&out, strings.Contains(prefix, "r"), isBytes); err != nil {
			return nil, err
		}
		p.skipSpace()
	}
	if kind == "bytes" {
		return Bytes(out.String()), nil
	}
	return out.String(), nil
}

// stringLiteral reads one quoted literal starting at the quote and appends
// its value: UTF-8 text for str, raw bytes for bytes.
func (p *litParser) stringLiteral(out *strings.Builder, raw, isBytes bool) error {
	q := p.s[p.i]
	triple := strings.HasPrefix(p.s[p.i:], strings.Repeat(string(q), 3))
	if triple {
		p.i += 3
	} else {
		p.i++
	}
	for {
		if p.i >= len(p.s) {
			return p.errorf("unterminated string literal")
		}
		c := p.s[p.i]
		switch {
		case c == q && (!triple || strings.HasPrefix(p.s[p.i:], strings.Repeat(string(q), 3))):
			if triple {
				p.i += 3
			} else {
				p.i++
			}
			return nil
		case c == '\n' || c == '\r':
			if !triple {
				return p.errorf("unterminated string literal")
			}
			// The tokenizer translates \r\n and \r to \n.
			out.WriteByte('\n')
			p.i++
			if c == '\r' && p.peek() == '\n' {
				p.i++
			}
		case c == '\\':
			if err := p.escape(out, raw, isBytes); err != nil {
				return err
			}
		default:
			r, size := utf8.DecodeRuneInString(p.s[p.i:])
			if isBytes && r >= 0x80 {
				return p.errorf("bytes can only contain ASCII literal characters")
			}
			out.WriteString(p.s[p.i : p.i+size])
			p.i += size
		}
	}
}

// simpleEscapes maps the letter after a backslash to its character.
var simpleEscapes = map[byte]byte{'\\': '\\', '\'': '\'', '"': '"', 'a': 7, 'b': 8, 'f': 12, 'n': '\n', 'r': '\r', 't': '\t', 'v': 11}

// escape handles a backslash sequence inside a string literal.
func (p *litParser) escape(out *strings.Builder, raw, isBytes bool) error {
	p.i++ // the backslash
	if p.i >= len(p.s) {
		return p.errorf("unterminated string literal")
	}
	c := p.s[p.i]
	if raw {
		// A raw literal keeps the backslash; it only stops the next
		// character from ending the literal.
		out.WriteByte('\\')
		switch {
		case c == '\r' && strings.HasPrefix(p.s[p.i:], "\r\n"):
			out.WriteByte('\n')
			p.i += 2
		case c == '\r' || c == '\n':
			out.WriteByte('\n')
			p.i++
		case c == '\\' || c == '\'' || c == '"':
			out.WriteByte(c)
			p.i++
		}
		return nil
	}
	if r, ok := simpleEscapes[c]; ok {
		out.WriteByte(r)
		p.i++
		return nil
	}
	switch {
	case c == '\n':
		p.i++
		return nil
	case c == '\r':
		p.i++
		if p.peek() == '\n' {
			p.i++
		}
		return nil
	case c >= '0' && c <= '7':
		v := 0
		for n := 0; n < 3 && p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '7'; n++ {
			v = v*8 + int(p.s[p.i]-'0')
			p.i++
		}
		if isBytes {
			out.WriteByte(byte(v))
		} else {
			out.WriteRune(rune(v))
		}
		return nil
	case c == 'x':
		return p.hexEscape(out, 2, isBytes)
	case !isBytes && c == 'u':
		return p.hexEscape(out, 4, false)
	case !isBytes && c == 'U':
		return p.hexEscape(out, 8, false)
	case !isBytes && c == 'N':
		return p.errorf("\\N{...} escapes are not supported")
	}
	// Unknown escapes keep the backslash.
	out.WriteByte('\\')
	return nil
}

func (p *litParser) hexEscape(out *strings.Builder, n int, isBytes bool) error {
	p.i++ // the letter
	if p.i+n > len(p.s) {
		return p.errorf("truncated escape")
	}
	h := p.s[p.i : p.i+n]
	for i := 0; i < n; i++ {
		if !isHexDigit(h[i]) {
			return p.errorf("truncated escape %q", h)
		}
	}
	v, _ := strconv.ParseUint(h, 16, 32)
	p.i += n
	switch {
	case isBytes:
		out.WriteByte(byte(v))
	case v > utf8.MaxRune:
		return p.errorf("illegal Unicode character in escape")
	case v >= 0xD800 && v <= 0xDFFF:
		return p.errorf("surrogate escapes are not supported")
	default:
		out.WriteRune(rune(v))
	}
	return nil
}
