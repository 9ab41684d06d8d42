package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bcloud-dev/bcloud/internal/config"
	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/storage/all"
	"github.com/bcloud-dev/bcloud/internal/storage/s3"
	"github.com/bcloud-dev/bcloud/internal/testenv"
)

func s3Env(m map[string]string) config.Getenv {
	return func(k string) string { return m[k] }
}

func TestS3FromEnvPrecedence(t *testing.T) {
	cases := []struct {
		name     string
		opts     config.Options
		env      map[string]string
		endpoint string
		region   string
		profile  string
	}{
		{"flag endpoint wins", config.Options{EndpointURL: "https://flag"},
			map[string]string{"AWS_ENDPOINT_URL_S3": "https://s3var", "AWS_ENDPOINT_URL": "https://generic"}, "https://flag", "", ""},
		{"service endpoint before generic", config.Options{},
			map[string]string{"AWS_ENDPOINT_URL_S3": "https://s3var", "AWS_ENDPOINT_URL": "https://generic"}, "https://s3var", "", ""},
		{"generic endpoint", config.Options{},
			map[string]string{"AWS_ENDPOINT_URL": "https://generic"}, "https://generic", "", ""},
		{"AWS_REGION before AWS_DEFAULT_REGION", config.Options{},
			map[string]string{"AWS_REGION": "eu-west-3", "AWS_DEFAULT_REGION": "us-west-2"}, "", "eu-west-3", ""},
		{"flag profile wins", config.Options{AWSProfile: "flag"},
			map[string]string{"AWS_PROFILE": "env"}, "", "", "flag"},
		{"env profile", config.Options{},
			map[string]string{"AWS_PROFILE": "env"}, "", "", "env"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, err := config.FromEnv("s3://bucket/some/prefix", c.opts, s3Env(c.env))
			if err != nil {
				t.Fatal(err)
			}
			got := st.S3
			if got.Bucket != "bucket" || st.Prefix != "some/prefix" || got.Endpoint != c.endpoint ||
				got.Region != c.region || got.Profile != c.profile {
				t.Fatalf("S3 config = %+v (prefix %q)", got, st.Prefix)
			}
			if got.AccessKeyID != "" {
				t.Fatalf("no keys in the environment, yet AccessKeyID = %q", got.AccessKeyID)
			}
		})
	}
}

func TestS3FromEnvChecksumModes(t *testing.T) {
	st, err := config.FromEnv("s3://b", config.Options{}, s3Env(map[string]string{
		"AWS_REQUEST_CHECKSUM_CALCULATION": " When_Supported ",
		"AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if st.S3.RequestChecksumCalculation != "when_supported" || st.S3.ResponseChecksumValidation != "when_required" {
		t.Fatalf("checksum modes = %q, %q", st.S3.RequestChecksumCalculation, st.S3.ResponseChecksumValidation)
	}
	_, err = config.FromEnv("s3://b", config.Options{}, s3Env(map[string]string{"AWS_REQUEST_CHECKSUM_CALCULATION": "never"}))
	if err == nil || !strings.Contains(err.Error(), "AWS_REQUEST_CHECKSUM_CALCULATION") {
		t.Fatalf("bad checksum mode accepted or unclear: %v", err)
	}
}

func TestS3FromEnvEncryption(t *testing.T) {
	st, err := config.FromEnv("s3://b", config.Options{Encryption: "AES256"}, s3Env(nil))
	if err != nil || st.S3.ServerSideEncryption != "AES256" {
		t.Fatalf("AES256: %+v, %v", st.S3, err)
	}
	if _, err := config.FromEnv("s3://b", config.Options{Encryption: "aes"}, s3Env(nil)); err == nil {
		t.Fatal("unknown --encryption accepted")
	}
}

// TestS3DestinationOpens resolves an s3:// destination from barman-cloud's
// environment, over HTTPS with AWS_CA_BUNDLE, and writes through all.Open.
func TestS3DestinationOpens(t *testing.T) {
	srv := testenv.VersityGWTLS(t)
	bucket := srv.NewBucket(t)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, srv.CAPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"AWS_ACCESS_KEY_ID":     srv.AccessKey,
		"AWS_SECRET_ACCESS_KEY": srv.Secret,
		"AWS_ENDPOINT_URL":      srv.Endpoint,
		"AWS_DEFAULT_REGION":    srv.Region,
		"AWS_CA_BUNDLE":         ca,
	}
	st, err := config.FromEnv("s3://"+bucket+"/pg/main", config.Options{}, s3Env(env))
	if err != nil {
		t.Fatal(err)
	}
	if len(st.S3.CABundle) == 0 {
		t.Fatal("AWS_CA_BUNDLE not read")
	}
	b, err := all.Open(t.Context(), st)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Put(t.Context(), "obj", strings.NewReader("via config"), 10, storage.PutOptions{}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	raw, err := s3.Open(t.Context(), s3.Config{Bucket: bucket, Endpoint: srv.Endpoint, Region: srv.Region,
		AccessKeyID: srv.AccessKey, SecretAccessKey: storage.Secret(srv.Secret), CABundle: srv.CAPEM})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	got, err := storage.ReadAll(t.Context(), raw, "pg/main/obj")
	if err != nil || string(got) != "via config" {
		t.Fatalf("object at pg/main/obj = %q, %v", got, err)
	}
}
