package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bcloud-dev/bcloud/internal/config"
	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/storage/all"
	"github.com/bcloud-dev/bcloud/internal/storage/gcs"
	"github.com/bcloud-dev/bcloud/internal/testenv"
)

func gcsEnv(m map[string]string) config.Getenv {
	return func(k string) string { return m[k] }
}

func TestGCSFromEnvCredentialsFile(t *testing.T) {
	key := filepath.Join(t.TempDir(), "key.json")
	const content = `{"type": "service_account"}`
	if err := os.WriteFile(key, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := config.FromEnv("gs://bucket/pg/main", config.Options{KMSKeyName: "projects/p/locations/l/keyRings/r/cryptoKeys/k"},
		gcsEnv(map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": key}))
	if err != nil {
		t.Fatal(err)
	}
	got := st.GCS
	if st.Provider != config.ProviderGCS || got.Bucket != "bucket" || st.Prefix != "pg/main" ||
		got.CredentialsJSON.Reveal() != content || got.EmulatorHost != "" ||
		got.KMSKeyName != "projects/p/locations/l/keyRings/r/cryptoKeys/k" {
		t.Fatalf("GCS config = %#v (prefix %q)", got, st.Prefix)
	}
}

func TestGCSFromEnvApplicationDefault(t *testing.T) {
	st, err := config.FromEnv("gs://bucket", config.Options{}, gcsEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if st.GCS.CredentialsJSON != "" || st.GCS.EmulatorHost != "" {
		t.Fatalf("no variables set, yet GCS config = %#v", st.GCS)
	}
}

func TestGCSFromEnvMissingCredentialsFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.json")
	_, err := config.FromEnv("gs://bucket", config.Options{}, gcsEnv(map[string]string{"GOOGLE_APPLICATION_CREDENTIALS": missing}))
	if err == nil || !strings.Contains(err.Error(), "GOOGLE_APPLICATION_CREDENTIALS") {
		t.Fatalf("missing key file: %v", err)
	}
}

// TestGCSDestinationOpens resolves a gs:// destination with
// STORAGE_EMULATOR_HOST, where credentials are neither read nor needed,
// and writes through all.Open under the destination's prefix.
func TestGCSDestinationOpens(t *testing.T) {
	srv := testenv.FakeGCS(t)
	bucket := srv.NewBucket(t)
	env := map[string]string{
		"STORAGE_EMULATOR_HOST":          srv.Host,
		"GOOGLE_APPLICATION_CREDENTIALS": filepath.Join(t.TempDir(), "absent.json"),
	}
	st, err := config.FromEnv("gs://"+bucket+"/pg/main", config.Options{}, gcsEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	b, err := all.Open(t.Context(), st)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Put(t.Context(), "obj", strings.NewReader("via config"), 10, storage.PutOptions{}); err != nil {
		t.Fatalf("Put: %v", err)
	}
	raw, err := gcs.Open(t.Context(), gcs.Config{Bucket: bucket, EmulatorHost: srv.Host})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	got, err := storage.ReadAll(t.Context(), raw, "pg/main/obj")
	if err != nil || string(got) != "via config" {
		t.Fatalf("object at pg/main/obj = %q, %v", got, err)
	}
}
