package cli

import (
	"strings"
	"testing"

	"github.com/bcloud-dev/bcloud/internal/testenv"
)

// TestCheckStorageEveryProvider runs check-storage against every driver's
// real emulator and a file:// destination: every step must pass and be
// printed, and nothing may be left behind.
func TestCheckStorageEveryProvider(t *testing.T) {
	s3 := testenv.VersityGW(t)
	az := testenv.Azurite(t)
	gcs := testenv.FakeGCS(t)
	cases := []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"file", nil, []string{"file://" + t.TempDir() + "/store"}},
		{"s3", map[string]string{"AWS_ACCESS_KEY_ID": s3.AccessKey, "AWS_SECRET_ACCESS_KEY": s3.Secret, "AWS_DEFAULT_REGION": s3.Region},
			[]string{"--endpoint-url", s3.Endpoint, "s3://" + s3.NewBucket(t) + "/some/prefix"}},
		{"azure connection string", map[string]string{"AZURE_STORAGE_CONNECTION_STRING": az.ConnectionString},
			[]string{az.Endpoint + "/" + az.NewContainer(t) + "/p"}},
		{"azure key", map[string]string{"AZURE_STORAGE_KEY": az.Key},
			[]string{az.Endpoint + "/" + az.NewContainer(t) + "/p"}},
		{"gcs", map[string]string{"STORAGE_EMULATOR_HOST": gcs.Host}, []string{"gs://" + gcs.NewBucket(t) + "/p"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			code, out := runMain(t, append([]string{"check-storage"}, c.args...)...)
			if code != 0 {
				t.Fatalf("exit %d:\n%s", code, out)
			}
			for _, step := range []string{"write", "read back", "ranged read", "list", "conditional put", "missing object", "delete"} {
				if !strings.Contains(out, step) {
					t.Errorf("step %q not reported:\n%s", step, out)
				}
			}
			if strings.Contains(out, "FAIL") {
				t.Fatalf("a step failed:\n%s", out)
			}
		})
	}
}

// TestBadInputErrors: each kind of bad input gives one line naming what
// to fix and a non-zero exit.
func TestBadInputErrors(t *testing.T) {
	s3 := testenv.VersityGW(t)
	bucket := s3.NewBucket(t)
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"malformed URL", nil, []string{"check-storage", "s3://%zz/x"}, "not a URL"},
		{"unknown scheme", nil, []string{"check-storage", "ftp://host/x"}, "unknown scheme"},
		{"no scheme", nil, []string{"check-storage", "bucket/path"}, "no scheme"},
		{"half credentials", map[string]string{"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": ""}, []string{"check-storage", "s3://b/p"}, "AWS_SECRET_ACCESS_KEY"},
		{"wrong key", map[string]string{"AWS_ACCESS_KEY_ID": s3.AccessKey, "AWS_SECRET_ACCESS_KEY": "wrong-secret-value", "AWS_DEFAULT_REGION": s3.Region},
			[]string{"check-storage", "--endpoint-url", s3.Endpoint, "s3://" + bucket}, "AWS_SECRET_ACCESS_KEY"},
		{"missing bucket", map[string]string{"AWS_ACCESS_KEY_ID": s3.AccessKey, "AWS_SECRET_ACCESS_KEY": s3.Secret, "AWS_DEFAULT_REGION": s3.Region},
			[]string{"check-storage", "--endpoint-url", s3.Endpoint, "s3://no-such-bucket-x"}, "create it"},
		{"unreachable endpoint", map[string]string{"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"},
			[]string{"check-storage", "--endpoint-url", closedPort(t), "s3://b"}, "cannot reach"},
		{"emulator URL without credentials", nil, []string{"check-storage", "http://127.0.0.1:1/acct/cont"}, "AZURE_STORAGE_CONNECTION_STRING"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			code, out := runMain(t, c.args...)
			if code == 0 || !strings.Contains(out, c.want) {
				t.Fatalf("exit %d, want non-zero and %q in:\n%s", code, c.want, out)
			}
			if strings.Contains(out, "wrong-secret-value") {
				t.Fatalf("secret printed:\n%s", out)
			}
			var errLines []string
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				if strings.HasPrefix(l, "ERROR:") {
					errLines = append(errLines, l)
				}
			}
			if len(errLines) != 1 {
				t.Fatalf("want exactly one ERROR line, got:\n%s", out)
			}
		})
	}
}
