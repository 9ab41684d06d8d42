package catalog

import (
	"encoding/json"
	"math"
	"math/big"
	"strings"
	"testing"
	"unicode/utf8"
)

// literalCases are inputs whose repr after parsing was checked against
// CPython 3.11 (TestLiteralMatchesPython re-checks them when python3 is
// available).
var literalCases = []struct{ in, repr string }{
	{`None`, `None`},
	{`True`, `True`},
	{`False`, `False`},
	{`0`, `0`},
	{`-5`, `-5`},
	{`- 5`, `-5`},
	{`-(1)`, `-1`},
	{`+1.5`, `1.5`},
	{`1_000`, `1000`},
	{`000`, `0`},
	{`0x_1f`, `31`},
	{`0o17`, `15`},
	{`0B101`, `5`},
	{`99999999999999999999999`, `99999999999999999999999`},
	{`-9223372036854775808`, `-9223372036854775808`},
	{`-9223372036854775809`, `-9223372036854775809`},
	{`64.5`, `64.5`},
	{`60.1`, `60.1`},
	{`0.0`, `0.0`},
	{`-0.0`, `-0.0`},
	{`1e-7`, `1e-07`},
	{`1e16`, `1e+16`},
	{`1e15`, `1000000000000000.0`},
	{`1e-5`, `1e-05`},
	{`0.0001`, `0.0001`},
	{`123456789012345678.0`, `1.2345678901234568e+17`},
	{`1.e5`, `100000.0`},
	{`.5`, `0.5`},
	{`5.`, `5.0`},
	{`0.1`, `0.1`},
	{`1.5e300`, `1.5e+300`},
	{`2.5e-310`, `2.5e-310`},
	{`1e999`, `inf`},
	{`-1e999`, `-inf`},
	{`'abc'`, `'abc'`},
	{`"abc"`, `'abc'`},
	{`"it's"`, `"it's"`},
	{`'say "hi"'`, `'say "hi"'`},
	{`'it\'s "x"'`, `'it\'s "x"'`},
	{`'a\tb\nc\rd\\e'`, `'a\tb\nc\rd\\e'`},
	{`'\x01\x7f\x80\xa0\xff'`, `'\x01\x7f\x80\xa0ÿ'`},
	{`'\u00e9\u65e5\u2028\u200b\ufeff'`, `'é日\u2028\u200b\ufeff'`},
	{`'\U0001F600\U000e0001'`, `'😀\U000e0001'`},
	{`'\0\7\101\777'`, `'\x00\x07Aǿ'`},
	{`'\a\b\f\v'`, `'\x07\x08\x0c\x0b'`},
	{`'\q\d'`, `'\\q\\d'`},
	{`'a' "b" 'c'`, `'abc'`},
	{`u'x'`, `'x'`},
	{`R'\n'`, `'\\n'`},
	{`r'\''`, `"\\'"`},
	{`'''a'b"c'''`, `'a\'b"c'`},
	{"'''a\r\nb'''", `'a\nb'`},
	{`'x\` + "\n" + `y'`, `'xy'`},
	{`b'\777'`, `b'\xff'`},
	{`b'a\u1234'`, `b'a\\u1234'`},
	{`rb'\x'`, `b'\\x'`},
	{`b"it's"`, `b"it's"`},
	{`b'\x00\x7f\t'`, `b'\x00\x7f\t'`},
	{`[]`, `[]`},
	{`[1,]`, `[1]`},
	{`[ 1 , 'a' , None ]`, `[1, 'a', None]`},
	{`()`, `()`},
	{`(1)`, `1`},
	{`(1,)`, `(1,)`},
	{`((1,))`, `(1,)`},
	{`('a', 2, '/x')`, `('a', 2, '/x')`},
	{`[(1,), ()]`, `[(1,), ()]`},
	{`{}`, `{}`},
	{`{1:2,}`, `{1: 2}`},
	{`{1: 'a', True: 'b', 1.0: 'c'}`, `{1: 'c'}`},
	{`{(1, 2): [3]}`, `{(1, 2): [3]}`},
	{`{'total_time': 64.5, 'number_of_workers': 2, 'analysis_time_per_item': {'data': 0}}`, `{'total_time': 64.5, 'number_of_workers': 2, 'analysis_time_per_item': {'data': 0}}`},
	{"[1, # c\n 2]", `[1, 2]`},
	{"\t 'a' # trailing", `'a'`},
	{"\n'a'\n", `'a'`},
	{"\x0c1\x0c", `1`},
	{"[1,\r\n2]", `[1, 2]`},
}

// literalErrors must be rejected (CPython rejects them too, except the
// documented unsupported forms at the end).
var literalErrors = []string{
	``, `-True`, `--1`, `- -1`, `'a' b'b'`, `0123`, `1__0`, `1_`, `1abc`, `0b`, `0x`, `1e`, `1e+`, `0b2`,
	`1 if 1 else 2`, "\x0b1", `'a` + "\r" + `b'`, `'abc`, `'''abc''`, `[1 2]`, `[1,,]`, `(,)`, `{1:}`,
	`{[1]: 2}`, `{(1, [2]): 3}`, `(1,)*2`, `1 2`, `nan`, `inf`, `x`, `f'x'`, `ub'x'`, `'\x4'`, `'\u12'`,
	`'\U00110000'`, `b'é'`, "'a\x00'", "'\xff'",
	// Accepted by CPython but unsupported here.
	`1j`, `set()`, `...`, `'\N{BULLET}'`, `'\ud800'`, `{1, 2}`, `{1}`,
}

func TestParseLiteralRepr(t *testing.T) {
	for _, c := range literalCases {
		v, err := ParseLiteral(c.in)
		if err != nil {
			t.Errorf("ParseLiteral(%q): %v", c.in, err)
			continue
		}
		if got := Repr(v); got != c.repr {
			t.Errorf("Repr(ParseLiteral(%q)) = %s, want %s", c.in, got, c.repr)
		}
	}
}

func TestParseLiteralErrors(t *testing.T) {
	for _, in := range literalErrors {
		if v, err := ParseLiteral(in); err == nil {
			t.Errorf("ParseLiteral(%q) = %s, want an error", in, Repr(v))
		}
	}
}

func TestParseLiteralDepth(t *testing.T) {
	deep := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
	if _, err := ParseLiteral(deep); err == nil {
		t.Error("10000 nested lists parsed without error")
	}
	ok := strings.Repeat("[", 100) + strings.Repeat("]", 100)
	if _, err := ParseLiteral(ok); err != nil {
		t.Errorf("100 nested lists: %v", err)
	}
}

func TestLiteralTypes(t *testing.T) {
	v, err := ParseLiteral(`{'a': [1, 2.5, None, True, b'x', ('t',)], 'big': 18446744073709551616}`)
	if err != nil {
		t.Fatal(err)
	}
	d := v.(Dict)
	a, _ := d.Get("a")
	l := a.(List)
	if l[0].(int64) != 1 || l[1].(float64) != 2.5 || l[2] != nil || l[3] != true ||
		string(l[4].(Bytes)) != "x" || l[5].(Tuple)[0] != "t" {
		t.Errorf("unexpected values %#v", l)
	}
	big1, _ := d.Get("big")
	if big1.(*big.Int).String() != "18446744073709551616" {
		t.Errorf("big = %v", big1)
	}
	if _, ok := d.Get("missing"); ok {
		t.Error("Get(missing) found a value")
	}
}

func TestFormatFloat(t *testing.T) {
	a, b := 0.1, 0.2
	point3 := a + b
	for f, want := range map[float64]string{
		64.5: "64.5", 1e-07: "1e-07", 60.1: "60.1", 0: "0.0", 1e16: "1e+16", 1e15: "1000000000000000.0",
		9999999999999998: "9999999999999998.0", point3: "0.30000000000000004", 5e-324: "5e-324",
		math.MaxFloat64: "1.7976931348623157e+308", 123.456: "123.456", 1e22: "1e+22", -2.5e-5: "-2.5e-05",
		math.Inf(1): "inf", math.Inf(-1): "-inf",
	} {
		if got := FormatFloat(f); got != want {
			t.Errorf("FormatFloat(%v) = %s, want %s", f, got, want)
		}
	}
	if got := FormatFloat(math.NaN()); got != "nan" {
		t.Errorf("FormatFloat(NaN) = %s", got)
	}
}

func TestLiteralEqual(t *testing.T) {
	eq := [][2]any{{int64(1), 1.0}, {true, int64(1)}, {big.NewInt(2), 2.0}, {math.NaN(), math.NaN()},
		{List{"a"}, List{"a"}}, {Dict{{"k", int64(1)}}, Dict{{"k", 1.0}}}, {nil, nil}}
	for _, p := range eq {
		if !LiteralEqual(p[0], p[1]) {
			t.Errorf("LiteralEqual(%s, %s) = false", Repr(p[0]), Repr(p[1]))
		}
	}
	ne := [][2]any{{int64(1), "1"}, {List{"a"}, Tuple{"a"}}, {"a", Bytes("a")}, {nil, false},
		{Dict{{"k", int64(1)}}, Dict{{"j", int64(1)}}}, {math.Inf(1), 1e308}}
	for _, p := range ne {
		if LiteralEqual(p[0], p[1]) {
			t.Errorf("LiteralEqual(%s, %s) = true", Repr(p[0]), Repr(p[1]))
		}
	}
}

// FuzzPyLiteral checks that parsing never panics and that printing a parsed
// value gives text that parses back to an equal value and prints the same.
func FuzzPyLiteral(f *testing.F) {
	for _, c := range literalCases {
		f.Add(c.in)
	}
	for _, in := range literalErrors {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		v, err := ParseLiteral(in)
		if err != nil {
			return
		}
		out := Repr(v)
		if strings.Contains(out, "inf") && !strings.ContainsAny(out, `'"`) {
			return // repr(inf) is not a literal, in Python either
		}
		v2, err := ParseLiteral(out)
		if err != nil {
			if hasInf(v) {
				return
			}
			t.Fatalf("ParseLiteral(Repr(%q)) = error %v; repr was %s", in, err, out)
		}
		if !LiteralEqual(v, v2) {
			t.Fatalf("round trip of %q changed the value: %s -> %s", in, out, Repr(v2))
		}
		if out2 := Repr(v2); out2 != out {
			t.Fatalf("repr not stable for %q: %s then %s", in, out, out2)
		}
	})
}

func hasInf(v any) bool {
	switch v := v.(type) {
	case float64:
		return math.IsInf(v, 0)
	case List:
		return anyInf(v)
	case Tuple:
		return anyInf(v)
	case Dict:
		for _, it := range v {
			if hasInf(it.Key) || hasInf(it.Value) {
				return true
			}
		}
	}
	return false
}

func anyInf(vs []any) bool {
	for _, v := range vs {
		if hasInf(v) {
			return true
		}
	}
	return false
}

// TestLiteralMatchesPython runs every case through ast.literal_eval and
// repr in CPython and compares with ParseLiteral and Repr.
func TestLiteralMatchesPython(t *testing.T) {
	var inputs []string
	for _, c := range literalCases {
		inputs = append(inputs, c.in)
	}
	for _, in := range literalErrors {
		if utf8.ValidString(in) { // JSON cannot carry invalid UTF-8 to Python
			inputs = append(inputs, in)
		}
	}
	data, _ := json.Marshal(inputs)
	const script = `
import ast, json, sys
out = []
for s in json.load(sys.stdin):
    try:
        out.append([True, repr(ast.literal_eval(s))])
    except BaseException as e:
        out.append([False, type(e).__name__])
json.dump(out, sys.stdout)
`
	var results [][2]any
	if err := json.Unmarshal(runPython(t, script, data), &results); err != nil {
		t.Fatal(err)
	}
	unsupported := map[string]bool{`1j`: true, `set()`: true, `...`: true, `'\N{BULLET}'`: true, `'\ud800'`: true, `{1, 2}`: true, `{1}`: true}
	for i, in := range inputs {
		pyOK, pyOut := results[i][0].(bool), results[i][1].(string)
		v, err := ParseLiteral(in)
		switch {
		case pyOK && err == nil:
			if got := Repr(v); got != pyOut {
				t.Errorf("%q: Repr = %s, Python repr = %s", in, got, pyOut)
			}
		case pyOK && !unsupported[in]:
			t.Errorf("%q: Python accepts (%s), ParseLiteral: %v", in, pyOut, err)
		case !pyOK && err == nil:
			t.Errorf("%q: Python rejects (%s), ParseLiteral = %s", in, pyOut, Repr(v))
		}
	}
}
