package config_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"sigs.k8s.io/yaml"

	apiv1 "github.com/bcloud-dev/bcloud/api/v1"
	bconfig "github.com/bcloud-dev/bcloud/internal/config"
	"github.com/bcloud-dev/bcloud/internal/storage/azure"
)

// Each ObjectStore sample and the command line docs/object-stores.md gives
// for it resolve to the same storage configuration: FromObjectStore on one
// side, FromEnv with the documented variables and flags on the other.
func TestSamplesMatchDocumentedCommandLine(t *testing.T) {
	dir := t.TempDir()
	file := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secret := func(name, key string) string {
		v, _ := sampleSecrets(context.Background(), "", name, key)
		return string(v)
	}
	ca := file("ca.crt", []byte(secret("my-ca-secret", "ca.crt")))
	gcsKey := file("key.json", []byte(secret("backup-creds", "gcsCredentials")))
	awsKeys := func(name string) map[string]string {
		return map[string]string{"AWS_ACCESS_KEY_ID": secret(name, "ACCESS_KEY_ID"), "AWS_SECRET_ACCESS_KEY": secret(name, "ACCESS_SECRET_KEY")}
	}
	minioKeys := map[string]string{"AWS_ACCESS_KEY_ID": secret("minio-creds", "MINIO_ACCESS_KEY"), "AWS_SECRET_ACCESS_KEY": secret("minio-creds", "MINIO_SECRET_KEY")}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	cases := map[string]struct {
		env     map[string]string // the documented exports
		sidecar map[string]string // instanceSidecarConfiguration.env, seen by both sides
		opts    bconfig.Options   // the documented flags
	}{
		"aws-access-keys.yaml": {env: awsKeys("aws-creds")},
		"aws-session-token.yaml": {env: with(awsKeys("aws-creds"), "AWS_SESSION_TOKEN", secret("aws-creds", "ACCESS_SESSION_TOKEN"),
			"AWS_DEFAULT_REGION", secret("aws-creds", "ACCESS_REGION"))},
		"aws-irsa.yaml": {},
		"linode.yaml":   {env: awsKeys("linode-creds"), opts: bconfig.Options{EndpointURL: "https://us-east1.linodeobjects.com"}},
		"digitalocean-spaces.yaml": {env: awsKeys("digitalocean-creds"),
			opts: bconfig.Options{EndpointURL: "https://sfo3.digitaloceanspaces.com"}},
		"linode-checksum-env.yaml": {env: awsKeys("linode-creds"), opts: bconfig.Options{EndpointURL: "https://us-east1.linodeobjects.com"},
			sidecar: map[string]string{"AWS_REQUEST_CHECKSUM_CALCULATION": "when_required", "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required"}},
		"private-ca.yaml":    {env: with(minioKeys, "AWS_CA_BUNDLE", ca), opts: bconfig.Options{EndpointURL: "https://minio.minio.svc:9000"}},
		"minio-tenant.yaml":  {env: minioKeys, opts: bconfig.Options{EndpointURL: "https://cnpg-backups-hl:9000"}},
		"minio-gateway.yaml": {env: minioKeys, opts: bconfig.Options{EndpointURL: "http://minio-gateway-service:9000"}},
		"azure-connection-string.yaml": {env: map[string]string{
			"AZURE_STORAGE_CONNECTION_STRING": secret("azure-creds", "AZURE_STORAGE_CONNECTION_STRING")}},
		"azure-storage-key.yaml": {env: map[string]string{"AZURE_STORAGE_ACCOUNT": "STORAGE_ACCOUNT",
			"AZURE_STORAGE_KEY": secret("azure-creds", "AZURE_STORAGE_KEY")}},
		"azure-sas-token.yaml": {env: map[string]string{"AZURE_STORAGE_ACCOUNT": "STORAGE_ACCOUNT",
			"AZURE_STORAGE_SAS_TOKEN": secret("azure-creds", "AZURE_STORAGE_SAS_TOKEN")}},
		"azure-all-fields.yaml": {env: map[string]string{
			"AZURE_STORAGE_CONNECTION_STRING": secret("azure-creds", "AZURE_CONNECTION_STRING")}},
		"azure-ad.yaml":                  {opts: bconfig.Options{AzureCredential: azure.CredentialManagedIdentity}},
		"azure-default-credentials.yaml": {opts: bconfig.Options{AzureCredential: azure.CredentialDefault}},
		"azure-emulator.yaml": {env: map[string]string{
			"AZURE_STORAGE_CONNECTION_STRING": secret("azurite", "AZURE_CONNECTION_STRING")}},
		"gcs-key.yaml":          {env: map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": gcsKey}},
		"gcs-gke.yaml":          {},
		"file-destination.yaml": {},
		"full.yaml":             {env: awsKeys("minio"), opts: bconfig.Options{EndpointURL: "http://minio:9000"}},
	}
	for file, data := range sampleDocs(t) {
		var store apiv1.ObjectStore
		if err := yaml.Unmarshal(data, &store); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if store.Kind != "ObjectStore" {
			continue
		}
		c, ok := cases[file]
		if !ok {
			t.Errorf("%s has no documented command line in this test", file)
			continue
		}
		t.Run(file, func(t *testing.T) {
			sidecar := func(k string) string { return c.sidecar[k] }
			fromStore, err := bconfig.FromObjectStore(context.Background(), &store.Spec.Configuration, "ns", sampleSecrets,
				bconfig.ObjectStoreOptions{Getenv: sidecar})
			if err != nil {
				t.Fatal(err)
			}
			env := with(c.env)
			for k, v := range c.sidecar {
				env[k] = v
			}
			fromCLI, err := bconfig.FromEnv(store.Spec.Configuration.DestinationPath, c.opts, func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fromStore.WAL, fromCLI) {
				t.Errorf("ObjectStore resolves to %+v\ncommand line resolves to %+v", fromStore.WAL, fromCLI)
			}
		})
	}
}
