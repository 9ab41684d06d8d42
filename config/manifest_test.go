package config_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/bcloud-dev/bcloud/internal/testenv"
)

// docs splits a YAML stream into objects.
func docs(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, part := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(part), &m); err != nil {
			t.Fatalf("parse YAML: %v\n%s", err, part)
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out
}

// kustomizeFiles lists the files a kustomization includes, depth first, as
// scripts/manifest.sh concatenates them.
func kustomizeFiles(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range k.Resources {
		p := filepath.Join(dir, r)
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			out = append(out, kustomizeFiles(t, p)...)
		} else {
			out = append(out, p)
		}
	}
	return out
}

func objectKey(o *unstructured.Unstructured) string {
	return fmt.Sprintf("%s/%s/%s", o.GetKind(), o.GetNamespace(), o.GetName())
}

// manifest.yaml holds exactly the objects of config/default: run
// scripts/manifest.sh (make manifests) after changing config/.
func TestManifestUpToDate(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "manifest.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*unstructured.Unstructured{}
	for _, o := range docs(t, data) {
		got[objectKey(o)] = o
	}
	want := map[string]*unstructured.Unstructured{}
	for _, f := range kustomizeFiles(t, "default") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range docs(t, b) {
			want[objectKey(o)] = o
		}
	}
	for k, w := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("manifest.yaml lacks %s: run scripts/manifest.sh", k)
		} else if !reflect.DeepEqual(g.Object, w.Object) {
			t.Errorf("manifest.yaml has a stale %s: run scripts/manifest.sh", k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("manifest.yaml has %s, which config/default does not", k)
		}
	}
}

// The discovery contract CloudNativePG relies on (plugin-barman-cloud.md
// §1.3, cnpg-i.md §4.1) and the cert-manager objects behind it.
func TestManifestDiscoveryContract(t *testing.T) {
	objs := map[string]*unstructured.Unstructured{}
	for _, f := range kustomizeFiles(t, "default") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range docs(t, b) {
			objs[objectKey(o)] = o
		}
	}
	svc := objs["Service/cnpg-system/barman-cloud"]
	if svc == nil {
		t.Fatal("no Service barman-cloud in cnpg-system")
	}
	if got := svc.GetLabels()["cnpg.io/pluginName"]; got != "barman-cloud.cloudnative-pg.io" {
		t.Errorf("pluginName label = %q", got)
	}
	wantAnn := map[string]string{
		"cnpg.io/pluginClientSecret": "barman-cloud-client-tls",
		"cnpg.io/pluginServerSecret": "barman-cloud-server-tls",
		"cnpg.io/pluginPort":         "9090",
	}
	if got := svc.GetAnnotations(); !reflect.DeepEqual(got, wantAnn) {
		t.Errorf("Service annotations = %v, want %v", got, wantAnn)
	}
	for name, want := range map[string]struct {
		secret, cn string
		usage      string
		dns        []any
	}{
		"barman-cloud-server": {"barman-cloud-server-tls", "barman-cloud", "server auth", []any{"barman-cloud"}},
		"barman-cloud-client": {"barman-cloud-client-tls", "barman-cloud-client", "client auth", nil},
	} {
		c := objs["Certificate/cnpg-system/"+name]
		if c == nil {
			t.Errorf("no Certificate %s", name)
			continue
		}
		secret, _, _ := unstructured.NestedString(c.Object, "spec", "secretName")
		cn, _, _ := unstructured.NestedString(c.Object, "spec", "commonName")
		usages, _, _ := unstructured.NestedStringSlice(c.Object, "spec", "usages")
		dns, _, _ := unstructured.NestedSlice(c.Object, "spec", "dnsNames")
		issuer, _, _ := unstructured.NestedString(c.Object, "spec", "issuerRef", "name")
		if secret != want.secret || cn != want.cn || !slices.Equal(usages, []string{want.usage}) ||
			!reflect.DeepEqual(dns, want.dns) || issuer != "selfsigned-issuer" {
			t.Errorf("Certificate %s = %v", name, c.Object["spec"])
		}
	}
	if objs["Issuer/cnpg-system/selfsigned-issuer"] == nil {
		t.Error("no Issuer selfsigned-issuer")
	}
	dep := objs["Deployment/cnpg-system/barman-cloud"]
	if dep == nil {
		t.Fatal("no Deployment barman-cloud")
	}
	containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	c := containers[0].(map[string]any)
	args := fmt.Sprint(c["args"])
	for _, want := range []string{"plugin operator", "--server-cert=/server/tls.crt", "--server-key=/server/tls.key",
		"--client-cert=/client/tls.crt", "--server-address=:9090"} {
		if !strings.Contains(args, want) {
			t.Errorf("Deployment args %s lack %s", args, want)
		}
	}
	if !strings.Contains(fmt.Sprint(c["env"]), "SIDECAR_IMAGE") {
		t.Error("Deployment has no SIDECAR_IMAGE")
	}
}

// The manifest applies to a real API server, and the plugin's
// ServiceAccount holds every permission it must grant in the per-Cluster
// Role (RBAC forbids granting more than one holds).
func TestManifestApplies(t *testing.T) {
	cfg, c := testenv.EnvTest(t)
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "cnpg-system"}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join("..", "manifest.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range docs(t, data) {
		switch {
		case o.GetAPIVersion() == "cert-manager.io/v1":
			continue // no cert-manager CRDs in envtest
		case o.GetKind() == "CustomResourceDefinition":
			continue // installed by EnvTest from config/crd/bases
		}
		if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Errorf("apply %s: %v", objectKey(o), err)
		}
	}

	ns := namespace(t, c)
	asPlugin := rest.CopyConfig(cfg)
	asPlugin.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:cnpg-system:plugin-barman-cloud"}
	pc, err := client.New(asPlugin, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "cluster-example-barman-cloud", Namespace: ns},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{"barmancloud.cnpg.io"}, Resources: []string{"objectstores"}, Verbs: []string{"get", "watch", "list"}, ResourceNames: []string{"store"}},
			{APIGroups: []string{"barmancloud.cnpg.io"}, Resources: []string{"objectstores/status"}, Verbs: []string{"update"}, ResourceNames: []string{"store"}},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "watch", "list"}, ResourceNames: []string{"creds"}},
		},
	}
	if err := pc.Create(ctx, role); err != nil {
		t.Fatalf("the plugin cannot create the per-Cluster Role: %v", err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name, Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "cluster-example", Namespace: ns}},
	}
	if err := pc.Create(ctx, rb); err != nil {
		t.Fatalf("the plugin cannot create the per-Cluster RoleBinding: %v", err)
	}
	role.Rules[2].Verbs = []string{"get", "watch", "list", "delete"}
	if err := pc.Update(ctx, role); err == nil || !apierrors.IsForbidden(err) {
		t.Errorf("granting more than the plugin holds: err = %v, want Forbidden", err)
	}
	// Secrets are readable, not writable.
	var sec corev1.Secret
	if err := pc.Get(ctx, client.ObjectKey{Namespace: ns, Name: "absent"}, &sec); !apierrors.IsNotFound(err) {
		t.Errorf("plugin get secret: %v, want NotFound", err)
	}
	sec = corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: ns}}
	if err := pc.Create(ctx, &sec); !apierrors.IsForbidden(err) {
		t.Errorf("plugin create secret: %v, want Forbidden", err)
	}
}
