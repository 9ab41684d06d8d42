package azure

import (
	"os"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/bcloud-dev/bcloud/internal/storage"
)

// Credentials are built without any request: these run with no network
// and no Azure AD; a token would be fetched only by the first operation.
func TestCredentialModesConstruct(t *testing.T) {
	for _, mode := range []Credential{CredentialDefault, CredentialManagedIdentity, CredentialAzureCLI} {
		t.Run(string(mode), func(t *testing.T) {
			b, err := Open(t.Context(), Config{
				AccountURL: "https://acct.blob.core.windows.net", Account: "acct",
				Container: "backups", Credential: mode, ClientID: "00000000-0000-0000-0000-000000000001",
			})
			if err != nil {
				t.Fatalf("Open with credential %s: %v", mode, err)
			}
			if got := b.(*Bucket).client.URL(); got != "https://acct.blob.core.windows.net/backups" {
				t.Errorf("container URL = %s", got)
			}
		})
	}
}

func TestWorkloadIdentityChain(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AZURE_FEDERATED_TOKEN_FILE", dir+"/token")
	t.Setenv("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000002")
	t.Setenv("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000003")
	cred, err := managedIdentity(Config{}, &azcore.ClientOptions{})
	if err != nil {
		t.Fatalf("managed identity with workload identity env: %v", err)
	}
	if _, ok := cred.(*azidentity.ChainedTokenCredential); !ok {
		t.Fatalf("credential is %T, want a chain of workload and managed identity", cred)
	}
	// t.Setenv above restores it after the test.
	if err := os.Unsetenv("AZURE_FEDERATED_TOKEN_FILE"); err != nil {
		t.Fatal(err)
	}
	cred, err = managedIdentity(Config{}, &azcore.ClientOptions{})
	if err != nil {
		t.Fatalf("managed identity: %v", err)
	}
	if _, ok := cred.(*azidentity.ManagedIdentityCredential); !ok {
		t.Fatalf("credential without workload identity env is %T, want ManagedIdentityCredential", cred)
	}
}

func TestOpenRejects(t *testing.T) {
	base := Config{AccountURL: "https://acct.blob.core.windows.net", Account: "acct", Container: "c"}
	cases := map[string]struct {
		mut  func(*Config)
		want string
	}{
		"no credentials":  {func(c *Config) {}, "AZURE_STORAGE_KEY"},
		"two credentials": {func(c *Config) { c.Key = "a2V5"; c.SASToken = "sv=1&sig=x" }, "more than one"},
		"no container":    {func(c *Config) { c.Key = "a2V5"; c.Container = "" }, "container"},
		"bad credential":  {func(c *Config) { c.Credential = "cert" }, "unknown credential"},
		"key, no account": {func(c *Config) { c.Key = "a2V5"; c.Account = "" }, "AZURE_STORAGE_ACCOUNT"},
		"bad url":         {func(c *Config) { c.Key = "a2V5"; c.AccountURL = "ftp://x" }, "not an http(s) URL"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := base
			tc.mut(&cfg)
			_, err := Open(t.Context(), cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestSASTokenForms(t *testing.T) {
	for _, tok := range []string{"sv=2020-01-01&sig=abc", "?sv=2020-01-01&sig=abc"} {
		b, err := Open(t.Context(), Config{
			AccountURL: "http://127.0.0.1:10000/devstoreaccount1", Account: "devstoreaccount1",
			Container: "c", SASToken: storage.Secret(tok),
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := b.(*Bucket).client.URL(); got != "http://127.0.0.1:10000/devstoreaccount1/c?sv=2020-01-01&sig=abc" {
			t.Errorf("token %q gives container URL %s", tok, got)
		}
	}
}
