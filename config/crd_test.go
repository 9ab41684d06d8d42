// These tests check the ObjectStore CRD against a real
// kube-apiserver (envtest): it loads, every sample under config/samples
// applies unchanged, and invalid ObjectStores are rejected with a message
// naming the field to fix.

package config_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	apiv1 "github.com/bcloud-dev/bcloud/api/v1"
	bconfig "github.com/bcloud-dev/bcloud/internal/config"
	"github.com/bcloud-dev/bcloud/internal/testenv"
)

var nsSeq atomic.Int64

// namespace creates a fresh namespace for one test.
func namespace(t *testing.T, c client.Client) string {
	t.Helper()
	name := fmt.Sprintf("t%d-%d", time.Now().UnixNano()%1e6, nsSeq.Add(1))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Create(context.Background(), ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return name
}

func TestCRDLoads(t *testing.T) {
	cfg, c := testenv.EnvTest(t)
	t.Logf("envtest start: %s", testenv.EnvTestStartTime())
	var crd apiextensionsv1.CustomResourceDefinition
	s := testenv.Scheme()
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Get(context.Background(), client.ObjectKey{Name: "objectstores.barmancloud.cnpg.io"}, &crd); err != nil {
		t.Fatalf("get CRD: %v", err)
	}
	if crd.Spec.Group != "barmancloud.cnpg.io" || crd.Spec.Names.Kind != "ObjectStore" || crd.Spec.Scope != apiextensionsv1.NamespaceScoped {
		t.Errorf("CRD names = %s %s %s", crd.Spec.Group, crd.Spec.Names.Kind, crd.Spec.Scope)
	}
	if len(crd.Spec.Versions) != 1 || crd.Spec.Versions[0].Name != "v1" || !crd.Spec.Versions[0].Storage ||
		crd.Spec.Versions[0].Subresources == nil || crd.Spec.Versions[0].Subresources.Status == nil {
		t.Errorf("CRD versions = %+v", crd.Spec.Versions)
	}
	established := false
	for _, cond := range crd.Status.Conditions {
		if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
			established = true
		}
	}
	if !established {
		t.Errorf("CRD not established: %+v", crd.Status.Conditions)
	}
	// The typed client round-trips an ObjectStore with its status.
	ns := namespace(t, c)
	store := &apiv1.ObjectStore{
		ObjectMeta: metav1.ObjectMeta{Name: "typed", Namespace: ns},
		Spec: apiv1.ObjectStoreSpec{Configuration: apiv1.BarmanObjectStoreConfiguration{
			DestinationPath:   "s3://bucket/path",
			BarmanCredentials: apiv1.BarmanCredentials{AWS: &apiv1.S3Credentials{InheritFromIAMRole: true}},
		}},
	}
	ctx := context.Background()
	if err := c.Create(ctx, store); err != nil {
		t.Fatalf("create typed ObjectStore: %v", err)
	}
	now := metav1.NewTime(time.Now().Truncate(time.Second).UTC())
	store.Status.ServerRecoveryWindow = map[string]apiv1.RecoveryWindow{"cluster-example": {
		FirstRecoverabilityPoint: &now, LastSuccessfulBackupTime: &now}}
	if err := c.Status().Update(ctx, store); err != nil {
		t.Fatalf("update status: %v", err)
	}
	var got apiv1.ObjectStore
	if err := c.Get(ctx, client.ObjectKeyFromObject(store), &got); err != nil {
		t.Fatal(err)
	}
	w := got.Status.ServerRecoveryWindow["cluster-example"]
	if w.FirstRecoverabilityPoint == nil || !w.FirstRecoverabilityPoint.Equal(&now) || w.LastFailedBackupTime != nil {
		t.Errorf("status after round trip = %+v", got.Status)
	}
}

// sampleDocs returns the YAML documents of config/samples by file name.
func sampleDocs(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("samples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = data
	}
	return out
}

// sampleSecrets stands in for the Secrets the samples name, with values of
// the right shape, so each sample also resolves through FromObjectStore.
func sampleSecrets(_ context.Context, _, name, key string) ([]byte, error) {
	switch {
	case key == "ca.crt":
		return []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), nil
	case key == "gcsCredentials":
		return []byte(`{"type":"service_account"}`), nil
	case key == "AZURE_STORAGE_ACCOUNT":
		return []byte("STORAGE_ACCOUNT"), nil
	case strings.Contains(key, "CONNECTION_STRING"):
		return []byte("DefaultEndpointsProtocol=https;AccountName=a;AccountKey=a2V5"), nil
	}
	return []byte("value-of-" + name + "-" + key), nil
}

func TestSamplesApply(t *testing.T) {
	_, c := testenv.EnvTest(t)
	for file, data := range sampleDocs(t) {
		t.Run(file, func(t *testing.T) {
			var obj unstructured.Unstructured
			if err := yaml.Unmarshal(data, &obj.Object); err != nil {
				t.Fatalf("parse: %v", err)
			}
			if obj.GetAPIVersion() == "postgresql.cnpg.io/v1" {
				testenv.RequireCNPGCRDs(t)
			}
			ns := namespace(t, c)
			obj.SetNamespace(ns)
			want := obj.DeepCopy()
			ctx := context.Background()
			if err := c.Create(ctx, &obj); err != nil {
				t.Fatalf("apply %s: %v", file, err)
			}
			if obj.GetKind() != "ObjectStore" {
				return
			}
			// Nothing the sample says was pruned: the schema knows every field.
			var got unstructured.Unstructured
			got.SetGroupVersionKind(obj.GroupVersionKind())
			if err := c.Get(ctx, client.ObjectKeyFromObject(&obj), &got); err != nil {
				t.Fatal(err)
			}
			if missing := lostFields(want.Object["spec"], got.Object["spec"], "spec"); len(missing) > 0 {
				t.Errorf("fields pruned or changed by the API server: %v", missing)
			}
			// The Go types hold every field too, and the sample resolves.
			raw, err := json.Marshal(got.Object)
			if err != nil {
				t.Fatal(err)
			}
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			var typed apiv1.ObjectStore
			if err := dec.Decode(&typed); err != nil {
				t.Fatalf("decode into apiv1.ObjectStore: %v", err)
			}
			if _, err := bconfig.FromObjectStore(ctx, &typed.Spec.Configuration, ns, sampleSecrets, bconfig.ObjectStoreOptions{}); err != nil {
				t.Errorf("FromObjectStore: %v", err)
			}
		})
	}
}

// lostFields lists the paths of want that got lacks or holds differently.
func lostFields(want, got any, path string) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{path}
		}
		var out []string
		for k, v := range w {
			out = append(out, lostFields(v, g[k], path+"."+k)...)
		}
		sort.Strings(out)
		return out
	default:
		// Numbers come back as int64 where YAML gave float64.
		if fmt.Sprint(want) != fmt.Sprint(got) {
			return []string{fmt.Sprintf("%s: %v != %v", path, want, got)}
		}
		return nil
	}
}

func TestSidecarDefaults(t *testing.T) {
	_, c := testenv.EnvTest(t)
	ns := namespace(t, c)
	ctx := context.Background()
	store := func(name string, isc *apiv1.InstanceSidecarConfiguration) *apiv1.ObjectStore {
		o := &apiv1.ObjectStore{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: apiv1.ObjectStoreSpec{Configuration: apiv1.BarmanObjectStoreConfiguration{DestinationPath: "file:///backups"}}}
		if isc != nil {
			o.Spec.InstanceSidecarConfiguration = *isc
		}
		return o
	}
	// Upstream semantics: the defaults apply only when the object is present.
	with := store("with", &apiv1.InstanceSidecarConfiguration{Env: []corev1.EnvVar{{Name: "A", Value: "b"}}})
	without := store("without", nil)
	for _, o := range []*apiv1.ObjectStore{with, without} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	if got := with.Spec.InstanceSidecarConfiguration; got.RetentionPolicyIntervalSeconds != 1800 || got.LogLevel != "info" {
		t.Errorf("defaults with instanceSidecarConfiguration = %d %q, want 1800 info", got.RetentionPolicyIntervalSeconds, got.LogLevel)
	}
	var raw unstructured.Unstructured
	raw.SetGroupVersionKind(apiv1.GroupVersion.WithKind("ObjectStore"))
	if err := c.Get(ctx, client.ObjectKeyFromObject(without), &raw); err != nil {
		t.Fatal(err)
	}
	if isc, found, _ := unstructured.NestedMap(raw.Object, "spec", "instanceSidecarConfiguration"); found && len(isc) > 0 {
		t.Errorf("instanceSidecarConfiguration defaulted without being given: %v", isc)
	}
}

func TestInvalidRejected(t *testing.T) {
	_, c := testenv.EnvTest(t)
	ns := namespace(t, c)
	const keys = `
      accessKeyId: {name: aws, key: ID}
      secretAccessKey: {name: aws, key: SECRET}`
	cases := []struct {
		name string
		spec string // YAML of spec
		want []string
	}{
		{"two providers", `
configuration:
  destinationPath: s3://bucket/
  s3Credentials:` + keys + `
  googleCredentials:
    gkeEnvironment: true`,
			[]string{"set only one of spec.configuration.s3Credentials, azureCredentials or googleCredentials"}},
		{"no provider", `
configuration:
  destinationPath: s3://bucket/`,
			[]string{"set one of spec.configuration.s3Credentials, azureCredentials or googleCredentials"}},
		{"credentials on a file destination", `
configuration:
  destinationPath: file:///backups
  s3Credentials:
    inheritFromIAMRole: true`,
			[]string{"a file:// spec.configuration.destinationPath takes no credentials"}},
		{"s3 with only accessKeyId", `
configuration:
  destinationPath: s3://bucket/
  s3Credentials:
    accessKeyId: {name: aws, key: ID}`,
			[]string{"spec.configuration.s3Credentials.secretAccessKey: Required value", "secretAccessKey is required when accessKeyId is set"}},
		{"s3 with only secretAccessKey", `
configuration:
  destinationPath: s3://bucket/
  s3Credentials:
    secretAccessKey: {name: aws, key: SECRET}`,
			[]string{"spec.configuration.s3Credentials.accessKeyId: Required value"}},
		{"s3 empty", `
configuration:
  destinationPath: s3://bucket/
  s3Credentials: {}`,
			[]string{"s3Credentials needs accessKeyId and secretAccessKey, or inheritFromIAMRole: true"}},
		{"s3 role and keys", `
configuration:
  destinationPath: s3://bucket/
  s3Credentials:
    inheritFromIAMRole: true
    accessKeyId: {name: aws, key: ID}
    secretAccessKey: {name: aws, key: SECRET}`,
			[]string{"spec.configuration.s3Credentials.inheritFromIAMRole: Forbidden", "inheritFromIAMRole excludes"}},
		{"azure key without account", `
configuration:
  destinationPath: https://acct.blob.core.windows.net/container/
  azureCredentials:
    storageKey: {name: azure, key: KEY}`,
			[]string{"spec.configuration.azureCredentials.storageAccount: Required value", "storageAccount is required with storageKey or storageSasToken"}},
		{"azure SAS without account", `
configuration:
  destinationPath: https://acct.blob.core.windows.net/container/
  azureCredentials:
    storageSasToken: {name: azure, key: SAS}`,
			[]string{"storageAccount is required with storageKey or storageSasToken"}},
		{"azure key and SAS", `
configuration:
  destinationPath: https://acct.blob.core.windows.net/container/
  azureCredentials:
    storageAccount: {name: azure, key: ACCOUNT}
    storageKey: {name: azure, key: KEY}
    storageSasToken: {name: azure, key: SAS}`,
			[]string{"set storageKey or storageSasToken, not both"}},
		{"azure account alone", `
configuration:
  destinationPath: https://acct.blob.core.windows.net/container/
  azureCredentials:
    storageAccount: {name: azure, key: ACCOUNT}`,
			[]string{"azureCredentials needs one of connectionString, storageAccount with storageKey or storageSasToken"}},
		{"azure identity and secret", `
configuration:
  destinationPath: https://acct.blob.core.windows.net/container/
  azureCredentials:
    inheritFromAzureAD: true
    connectionString: {name: azure, key: CS}`,
			[]string{"inheritFromAzureAD, useDefaultAzureCredentials and the connectionString/storageKey/storageSasToken Secrets exclude each other"}},
		{"azure two identities", `
configuration:
  destinationPath: https://acct.blob.core.windows.net/container/
  azureCredentials:
    inheritFromAzureAD: true
    useDefaultAzureCredentials: true`,
			[]string{"exclude each other"}},
		{"gcs both modes", `
configuration:
  destinationPath: gs://bucket/
  googleCredentials:
    gkeEnvironment: true
    applicationCredentials: {name: gcs, key: json}`,
			[]string{"spec.configuration.googleCredentials: Invalid value", "googleCredentials needs exactly one of applicationCredentials or gkeEnvironment: true"}},
		{"gcs no mode", `
configuration:
  destinationPath: gs://bucket/
  googleCredentials:
    gkeEnvironment: false`,
			[]string{"googleCredentials needs exactly one of applicationCredentials or gkeEnvironment: true"}},
		{"serverName set", `
configuration:
  destinationPath: s3://bucket/
  serverName: other
  s3Credentials:
    inheritFromIAMRole: true`,
			[]string{"spec.configuration.serverName: Forbidden", "use the 'serverName' plugin parameter in the Cluster resource"}},
		{"bad retentionPolicy", `
retentionPolicy: 30x
configuration:
  destinationPath: s3://bucket/
  s3Credentials:
    inheritFromIAMRole: true`,
			[]string{"spec.retentionPolicy", `should match '^[1-9][0-9]*[dwm]$'`}},
		{"zero retentionPolicy", `
retentionPolicy: 0d
configuration:
  destinationPath: s3://bucket/
  s3Credentials:
    inheritFromIAMRole: true`,
			[]string{"spec.retentionPolicy"}},
		{"empty destinationPath", `
configuration:
  destinationPath: ""
  s3Credentials:
    inheritFromIAMRole: true`,
			[]string{"spec.configuration.destinationPath"}},
		{"xz for base backups", `
configuration:
  destinationPath: s3://bucket/
  s3Credentials:
    inheritFromIAMRole: true
  data:
    compression: xz`,
			[]string{"spec.configuration.data.compression: Unsupported value"}},
		{"maxParallel zero", `
configuration:
  destinationPath: s3://bucket/
  s3Credentials:
    inheritFromIAMRole: true
  wal:
    maxParallel: 0`,
			[]string{"spec.configuration.wal.maxParallel"}},
		{"log level in args", `
configuration:
  destinationPath: s3://bucket/
  s3Credentials:
    inheritFromIAMRole: true
instanceSidecarConfiguration:
  additionalContainerArgs: ["--log-level=debug"]`,
			[]string{"do not set --log-level in additionalContainerArgs"}},
		{"bad log level", `
configuration:
  destinationPath: s3://bucket/
  s3Credentials:
    inheritFromIAMRole: true
instanceSidecarConfiguration:
  logLevel: verbose`,
			[]string{"spec.instanceSidecarConfiguration.logLevel: Unsupported value"}},
		{"selector without key", `
configuration:
  destinationPath: s3://bucket/
  s3Credentials:
    accessKeyId: {name: aws}
    secretAccessKey: {name: aws, key: SECRET}`,
			[]string{"spec.configuration.s3Credentials.accessKeyId.key: Required value"}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var spec map[string]any
			if err := yaml.Unmarshal([]byte(tc.spec), &spec); err != nil {
				t.Fatalf("test spec: %v", err)
			}
			obj := &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "barmancloud.cnpg.io/v1", "kind": "ObjectStore",
				"metadata": map[string]any{"name": fmt.Sprintf("invalid-%d", i), "namespace": ns},
				"spec":     spec,
			}}
			err := c.Create(context.Background(), obj)
			if err == nil {
				t.Fatal("accepted")
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("err = %v, want Invalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("message %q\nlacks %q", err.Error(), w)
				}
			}
		})
	}
}

// Every ObjectStore YAML block of docs/object-stores.md is a sample file,
// so the documentation shows only what TestSamplesApply applied.
func TestDocsExamplesAreSamples(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "object-stores.md"))
	if err != nil {
		t.Fatal(err)
	}
	samples := map[string]string{}
	for name, data := range sampleDocs(t) {
		samples[strings.TrimSpace(string(data))] = name
	}
	used := map[string]bool{}
	blocks := 0
	for _, part := range strings.Split(string(doc), "```yaml\n")[1:] {
		block, _, ok := strings.Cut(part, "```")
		if !ok {
			t.Fatal("unterminated yaml block")
		}
		blocks++
		name, ok := samples[strings.TrimSpace(block)]
		if !ok {
			t.Errorf("docs block is not a file of config/samples:\n%s", block)
			continue
		}
		used[name] = true
	}
	for _, name := range samples {
		if !used[name] {
			t.Errorf("sample %s is not shown in docs/object-stores.md", name)
		}
	}
	if blocks == 0 {
		t.Error("no yaml blocks in docs/object-stores.md")
	}
}
