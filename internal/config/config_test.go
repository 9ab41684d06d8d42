package config

import (
	"strings"
	"testing"

	"github.com/bcloud-dev/bcloud/internal/storage/azure"
)

func TestParseDestination(t *testing.T) {
	for _, c := range []struct {
		raw      string
		provider Provider
		want     Location
	}{
		{"s3://bucket/path/to", "", Location{Provider: ProviderS3, Bucket: "bucket", Prefix: "path/to"}},
		{"s3://bucket", ProviderS3, Location{Provider: ProviderS3, Bucket: "bucket"}},
		{"s3://bucket/p/", "", Location{Provider: ProviderS3, Bucket: "bucket", Prefix: "p"}},
		{"gs://b/x/y", "", Location{Provider: ProviderGCS, Bucket: "b", Prefix: "x/y"}},
		{"https://console.cloud.google.com/storage/browser/b/x", "", Location{Provider: ProviderGCS, Bucket: "b", Prefix: "x"}},
		{"file:///var/backups", "", Location{Provider: ProviderFile, Bucket: "/var/backups"}},
		{"https://acct.blob.core.windows.net/cont/a/b", "", Location{Provider: ProviderAzure, Bucket: "cont", Prefix: "a/b",
			AzureAccount: "acct", AzureAccountURL: "https://acct.blob.core.windows.net"}},
		{"http://127.0.0.1:10000/devstoreaccount1/cont/p", ProviderAzure, Location{Provider: ProviderAzure, Bucket: "cont", Prefix: "p",
			AzureAccount: "devstoreaccount1", AzureAccountURL: "http://127.0.0.1:10000/devstoreaccount1", AzureEmulated: true}},
	} {
		got, err := ParseDestination(c.raw, c.provider)
		if err != nil || got != c.want {
			t.Errorf("ParseDestination(%q) = %+v, %v; want %+v", c.raw, got, err, c.want)
		}
	}
}

func TestParseDestinationErrors(t *testing.T) {
	for raw, want := range map[string]string{
		"":                                   "empty",
		"bucket/path":                        "no scheme",
		"ftp://x/y":                          "unknown scheme",
		"s3:///path":                         "no bucket",
		"file://relative/path":               "three slashes",
		"https://host:1/acct":                "lacks an account or container",
		"https://acct.blob.core.windows.net": "no container",
	} {
		_, err := ParseDestination(raw, "")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseDestination(%q) = %v, want error with %q", raw, err, want)
		}
	}
	if _, err := ParseDestination("s3://b/p", ProviderGCS); err == nil || !strings.Contains(err.Error(), "make them match") {
		t.Errorf("provider mismatch: %v", err)
	}
	if _, err := ParseProvider("aws"); err == nil {
		t.Error("unknown provider accepted")
	}
}

func env(m map[string]string) Getenv { return func(k string) string { return m[k] } }

func TestFromEnvS3(t *testing.T) {
	st, err := FromEnv("s3://b/p", Options{EndpointURL: "http://127.0.0.1:9000", Encryption: "aws:kms", SSEKMSKeyID: "k"}, env(map[string]string{
		"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "sekrit", "AWS_SESSION_TOKEN": "tok",
		"AWS_DEFAULT_REGION": "eu-west-1", "AWS_REQUEST_CHECKSUM_CALCULATION": "WHEN_REQUIRED",
	}))
	if err != nil {
		t.Fatal(err)
	}
	c := st.S3
	if c.Bucket != "b" || st.Prefix != "p" || c.Endpoint != "http://127.0.0.1:9000" || c.AccessKeyID != "AKID" ||
		c.SecretAccessKey.Reveal() != "sekrit" || c.SessionToken.Reveal() != "tok" || c.Region != "eu-west-1" ||
		c.RequestChecksumCalculation != "when_required" || c.ServerSideEncryption != "aws:kms" || c.SSEKMSKeyID != "k" {
		t.Fatalf("S3 config = %#v", c)
	}
	for _, s := range []string{"%v", "%+v", "%#v"} {
		if out := sprintf(s, st); strings.Contains(out, "sekrit") || strings.Contains(out, "tok\"") {
			t.Fatalf("secret printed with %s: %s", s, out)
		}
	}
	for name, e := range map[string]map[string]string{
		"half keys":    {"AWS_ACCESS_KEY_ID": "x"},
		"bad checksum": {"AWS_RESPONSE_CHECKSUM_VALIDATION": "always"},
		"missing CA":   {"AWS_CA_BUNDLE": "/nonexistent/ca.pem"},
	} {
		if _, err := FromEnv("s3://b", Options{}, env(e)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := FromEnv("s3://b", Options{SSEKMSKeyID: "k"}, env(nil)); err == nil {
		t.Error("--sse-kms-key-id without aws:kms accepted")
	}
}

func TestFromEnvAzurePrecedence(t *testing.T) {
	all := map[string]string{"AZURE_STORAGE_CONNECTION_STRING": "cs", "AZURE_STORAGE_SAS_TOKEN": "sas", "AZURE_STORAGE_KEY": "key"}
	st, _ := FromEnv("https://a.blob.core.windows.net/c", Options{}, env(all))
	if st.Azure.ConnectionString.Reveal() != "cs" || st.Azure.SASToken != "" || st.Azure.Key != "" {
		t.Fatalf("connection string must win: %#v", st.Azure)
	}
	delete(all, "AZURE_STORAGE_CONNECTION_STRING")
	st, _ = FromEnv("https://a.blob.core.windows.net/c", Options{}, env(all))
	if st.Azure.SASToken.Reveal() != "sas" || st.Azure.Key != "" {
		t.Fatalf("SAS must win over key: %#v", st.Azure)
	}
	st, _ = FromEnv("https://a.blob.core.windows.net/c", Options{AzureCredential: azure.CredentialManagedIdentity}, env(all))
	if st.Azure.Credential != azure.CredentialManagedIdentity || st.Azure.SASToken != "" {
		t.Fatalf("explicit credential must win: %#v", st.Azure)
	}
	st, _ = FromEnv("https://a.blob.core.windows.net/c", Options{}, env(nil))
	if st.Azure.Credential != azure.CredentialDefault {
		t.Fatalf("no secrets: want default credential, got %#v", st.Azure)
	}
	if _, err := FromEnv("http://127.0.0.1:10000/acct/c", Options{}, env(nil)); err == nil {
		t.Fatal("emulator URL without secrets accepted")
	}
}
