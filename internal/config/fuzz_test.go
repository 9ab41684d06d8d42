package config

import (
	"strings"
	"testing"
)

// FuzzParseDestination: any string parses or yields a one-line error.
func FuzzParseDestination(f *testing.F) {
	for _, s := range []string{"s3://b/p", "gs://b", "file:///x", "https://a.blob.core.windows.net/c/p",
		"http://127.0.0.1:10000/devstoreaccount1/c", "s3://", "://", "%zz", "https://console.cloud.google.com/storage/browser/b/x"} {
		f.Add(s, "")
	}
	f.Add("s3://b", "google-cloud-storage")
	f.Fuzz(func(t *testing.T, raw, provider string) {
		loc, err := ParseDestination(raw, Provider(provider))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err)
			}
			return
		}
		if loc.Provider == "" || (loc.Bucket == "" && loc.Provider != ProviderFile) {
			t.Fatalf("%q parsed to %+v", raw, loc)
		}
	})
}
