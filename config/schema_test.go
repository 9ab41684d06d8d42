package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// schemaLines flattens an OpenAPI schema into one line per field: path,
// type and the constraints that decide what applies. The env and
// resources subtrees are core/v1 types and are not expanded.
func schemaLines(s *apiextensionsv1.JSONSchemaProps, path string, out *[]string) {
	var extra []string
	if len(s.Enum) > 0 {
		var vals []string
		for _, e := range s.Enum {
			vals = append(vals, strings.Trim(string(e.Raw), `"`))
		}
		extra = append(extra, "enum="+strings.Join(vals, ","))
	}
	if s.Pattern != "" {
		extra = append(extra, "pattern="+s.Pattern)
	}
	if s.Minimum != nil {
		extra = append(extra, fmt.Sprintf("minimum=%v", *s.Minimum))
	}
	if s.MinLength != nil {
		extra = append(extra, fmt.Sprintf("minLength=%d", *s.MinLength))
	}
	if s.Default != nil {
		extra = append(extra, "default="+string(s.Default.Raw))
	}
	if s.Format != "" {
		extra = append(extra, "format="+s.Format)
	}
	if len(s.Required) > 0 {
		extra = append(extra, "required="+strings.Join(s.Required, ","))
	}
	*out = append(*out, strings.TrimSpace(path+" "+s.Type+" "+strings.Join(extra, " ")))
	if strings.HasSuffix(path, ".instanceSidecarConfiguration.env") || strings.HasSuffix(path, ".instanceSidecarConfiguration.resources") {
		return
	}
	for name, p := range s.Properties {
		schemaLines(&p, path+"."+name, out)
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		schemaLines(s.AdditionalProperties.Schema, path+".*", out)
	}
	if s.Items != nil && s.Items.Schema != nil {
		schemaLines(s.Items.Schema, path+"[]", out)
	}
}

// The generated schema is the upstream one (plugin-barman-cloud.md §2, v0.14:
// data.compression has lz4 and data has restoreAdditionalCommandArgs). The
// golden file is the reviewable statement of it; regenerate it with
// BCLOUD_UPDATE_SCHEMA=1 only for a deliberate change.
func TestSchemaMatchesUpstream(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("crd", "bases", "barmancloud.cnpg.io_objectstores.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatal(err)
	}
	var lines []string
	schemaLines(crd.Spec.Versions[0].Schema.OpenAPIV3Schema, "", &lines)
	sort.Strings(lines)
	got := strings.Join(lines, "\n") + "\n"
	golden := filepath.Join("testdata", "objectstore-schema.txt")
	if os.Getenv("BCLOUD_UPDATE_SCHEMA") == "1" {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("ObjectStore schema differs from %s:\n%s", golden, lineDiff(string(want), got))
	}
	// The CEL rules are all on spec.configuration and
	// instanceSidecarConfiguration.additionalContainerArgs.
	spec := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	conf := spec.Properties["configuration"]
	if n := len(conf.XValidations); n != 13 {
		t.Errorf("spec.configuration has %d CEL rules, want 13", n)
	}
	if conf.XValidations[0].Rule != "!has(self.serverName)" || conf.XValidations[0].FieldPath != ".serverName" {
		t.Errorf("first rule = %+v, want the upstream serverName rule", conf.XValidations[0])
	}
}

func lineDiff(want, got string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	w, g := in(want), in(got)
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if !g[l] {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if !w[l] {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}
