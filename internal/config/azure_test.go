package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bcloud-dev/bcloud/internal/config"
	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/storage/all"
	"github.com/bcloud-dev/bcloud/internal/storage/azure"
	"github.com/bcloud-dev/bcloud/internal/testenv"
)

func azureEnv(m map[string]string) config.Getenv {
	return func(k string) string { return m[k] }
}

func TestAzureFromEnvPrecedence(t *testing.T) {
	const dest = "https://acct.blob.core.windows.net/cont/some/path"
	secrets := map[string]string{
		"AZURE_STORAGE_CONNECTION_STRING": "AccountName=x;AccountKey=eA==",
		"AZURE_STORAGE_SAS_TOKEN":         "sv=1&sig=s",
		"AZURE_STORAGE_KEY":               "a2V5",
	}
	cases := []struct {
		name string
		env  []string
		cred azure.Credential
		want string // which secret is set: cs, sas, key, or the credential
	}{
		{"credential wins", []string{"AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_KEY"}, azure.CredentialManagedIdentity, "managed-identity"},
		{"connection string first", []string{"AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_KEY"}, "", "cs"},
		{"then SAS", []string{"AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_KEY"}, "", "sas"},
		{"then key", []string{"AZURE_STORAGE_KEY"}, "", "key"},
		{"else default", nil, "", "default"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{}
			for _, k := range c.env {
				env[k] = secrets[k]
			}
			st, err := config.FromEnv(dest, config.Options{AzureCredential: c.cred}, azureEnv(env))
			if err != nil {
				t.Fatal(err)
			}
			a := st.Azure
			if a.Container != "cont" || st.Prefix != "some/path" || a.Account != "acct" || a.AccountURL != "https://acct.blob.core.windows.net" {
				t.Fatalf("resolved %+v prefix %q", a, st.Prefix)
			}
			got := string(a.Credential)
			switch {
			case a.ConnectionString != "":
				got = "cs"
			case a.SASToken != "":
				got = "sas"
			case a.Key != "":
				got = "key"
			}
			if got != c.want {
				t.Fatalf("credential = %s, want %s", got, c.want)
			}
		})
	}
}

func TestAzureEmulatorNeedsSecret(t *testing.T) {
	_, err := config.FromEnv("http://127.0.0.1:10000/devstoreaccount1/cont", config.Options{}, azureEnv(nil))
	if err == nil || !strings.Contains(err.Error(), "AZURE_STORAGE_CONNECTION_STRING") {
		t.Fatalf("emulator URL without a secret = %v", err)
	}
}

func TestAzureCABundleFromEnv(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, []byte("PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := config.FromEnv("https://acct.blob.core.windows.net/cont", config.Options{},
		azureEnv(map[string]string{"AZURE_STORAGE_KEY": "a2V5", "REQUESTS_CA_BUNDLE": p}))
	if err != nil {
		t.Fatal(err)
	}
	if string(st.Azure.CABundle) != "PEM" {
		t.Fatalf("CABundle = %q", st.Azure.CABundle)
	}
}

// TestAzureDestinationsOpen resolves both URL forms from the environment
// and writes through all.Open to Azurite.
func TestAzureDestinationsOpen(t *testing.T) {
	srv := testenv.Azurite(t)
	c := srv.NewContainer(t)
	cases := map[string]struct {
		dest string
		env  map[string]string
	}{
		// The production URL form with a connection string: the host is
		// ignored, as barman-cloud ignores it.
		"connection string": {"https://devstoreaccount1.blob.core.windows.net/" + c + "/cs/pre",
			map[string]string{"AZURE_STORAGE_CONNECTION_STRING": srv.ConnectionString}},
		"emulator key": {srv.Endpoint + "/" + c + "/key/pre",
			map[string]string{"AZURE_STORAGE_KEY": srv.Key}},
		"emulator sas": {srv.Endpoint + "/" + c + "/sas/pre",
			map[string]string{"AZURE_STORAGE_SAS_TOKEN": srv.ContainerSAS(t, c, "racwdl")}},
	}
	raw, err := azure.Open(t.Context(), azure.Config{Container: c, ConnectionString: storage.Secret(srv.ConnectionString)})
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			st, err := config.FromEnv(tc.dest, config.Options{}, azureEnv(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			b, err := all.Open(t.Context(), st)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if err := b.Put(t.Context(), "obj", strings.NewReader(name), int64(len(name)), storage.PutOptions{}); err != nil {
				t.Fatalf("Put: %v", err)
			}
			got, err := storage.ReadAll(t.Context(), raw, st.Prefix+"/obj")
			if err != nil || string(got) != name {
				t.Fatalf("object at %s/obj = %q, %v", st.Prefix, got, err)
			}
		})
	}
}
