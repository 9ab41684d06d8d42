package cnpgi

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// PatchOp is one RFC 6902 operation.
type PatchOp struct {
	Op    string
	Path  string
	Value any
}

// MarshalJSON writes the value of add and replace operations even when it
// is null, and none for remove.
func (o PatchOp) MarshalJSON() ([]byte, error) {
	if o.Op == "remove" {
		return json.Marshal(struct {
			Op   string `json:"op"`
			Path string `json:"path"`
		}{o.Op, o.Path})
	}
	return json.Marshal(struct {
		Op    string `json:"op"`
		Path  string `json:"path"`
		Value any    `json:"value"`
	}{o.Op, o.Path, o.Value})
}

// CreatePatch returns the RFC 6902 JSON patch that turns the JSON form of
// original into that of modified, or nil when they are equal (CloudNativePG
// reads an empty patch as "no change"). The operations come in a fixed
// order, so the same objects always give the same bytes: the operator's
// dry-run (EVALUATE) must see exactly what CREATE produced.
func CreatePatch(original, modified any) ([]byte, error) {
	a, err := toJSONValue(original)
	if err != nil {
		return nil, err
	}
	b, err := toJSONValue(modified)
	if err != nil {
		return nil, err
	}
	ops := diffValues(a, b, "", nil)
	if len(ops) == 0 {
		return nil, nil
	}
	out, err := json.Marshal(ops)
	if err != nil {
		return nil, fmt.Errorf("encode JSON patch: %w", err)
	}
	return out, nil
}

func toJSONValue(v any) (any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode object for JSON patch: %w", err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("decode object for JSON patch: %w", err)
	}
	return out, nil
}

var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

func diffValues(a, b any, path string, ops []PatchOp) []PatchOp {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			return append(ops, PatchOp{Op: "replace", Path: path, Value: b})
		}
		keys := make([]string, 0, len(av)+len(bv))
		for k := range av {
			keys = append(keys, k)
		}
		for k := range bv {
			if _, ok := av[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := path + "/" + pointerEscaper.Replace(k)
			x, inA := av[k]
			y, inB := bv[k]
			switch {
			case !inB:
				ops = append(ops, PatchOp{Op: "remove", Path: p})
			case !inA:
				ops = append(ops, PatchOp{Op: "add", Path: p, Value: y})
			default:
				ops = diffValues(x, y, p, ops)
			}
		}
		return ops
	case []any:
		bv, ok := b.([]any)
		if !ok {
			return append(ops, PatchOp{Op: "replace", Path: path, Value: b})
		}
		n := min(len(av), len(bv))
		for i := len(av) - 1; i >= n; i-- {
			ops = append(ops, PatchOp{Op: "remove", Path: path + "/" + strconv.Itoa(i)})
		}
		for i := 0; i < n; i++ {
			ops = diffValues(av[i], bv[i], path+"/"+strconv.Itoa(i), ops)
		}
		for i := n; i < len(bv); i++ {
			ops = append(ops, PatchOp{Op: "add", Path: path + "/" + strconv.Itoa(i), Value: bv[i]})
		}
		return ops
	}
	if !reflect.DeepEqual(a, b) {
		ops = append(ops, PatchOp{Op: "replace", Path: path, Value: b})
	}
	return ops
}
