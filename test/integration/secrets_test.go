package integration

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bcloud-dev/bcloud/internal/testenv"
)

// TestSecretsNeverPrinted runs every command, at the highest verbosity,
// with credentials in the environment, on paths that succeed and paths
// that fail (wrong key, missing bucket, unreachable store), and checks
// that no secret value appears in anything bcloud prints.
func TestSecretsNeverPrinted(t *testing.T) {
	bin := bcloudBin(t)
	srv := testenv.VersityGW(t)
	bucket := srv.NewBucket(t)
	az := testenv.Azurite(t)
	dir := t.TempDir()
	walPath := filepath.Join(dir, "000000010000000000000001")
	_ = os.WriteFile(walPath, []byte("wal"), 0o600)

	secret := "s3cr3t-" + strings.Repeat("Z", 20)
	token := "t0ken-" + strings.Repeat("Q", 24)
	azureKey := base64.StdEncoding.EncodeToString([]byte("azure-key-that-is-wrong-" + strings.Repeat("K", 16)))
	sas := "sv=2024-01-01&sig=" + strings.Repeat("S", 30)
	secrets := []string{secret, token, azureKey, sas, srv.Secret, az.Key}

	s3Wrong := []string{"AWS_ACCESS_KEY_ID=" + srv.AccessKey, "AWS_SECRET_ACCESS_KEY=" + secret, "AWS_SESSION_TOKEN=" + token, "AWS_DEFAULT_REGION=us-east-1"}
	s3Right := append(s3Env(srv), "AWS_SESSION_TOKEN=")
	good := "s3://" + bucket + "/p"
	ep := []string{"--endpoint-url", srv.Endpoint}
	type run struct {
		env  []string
		args []string
	}
	var runs []run
	for _, env := range [][]string{s3Wrong, s3Right} {
		for _, dest := range []string{good, "s3://no-such-bucket/p"} {
			runs = append(runs,
				run{env, append([]string{"wal-archive", "-vv"}, append(ep, dest, "srv", walPath)...)},
				run{env, append([]string{"wal-restore", "-vv"}, append(ep, dest, "srv", "000000010000000000000001", filepath.Join(dir, "out"))...)},
				run{env, append([]string{"check-wal-archive", "-vv"}, append(ep, dest, "srv")...)},
				run{env, append([]string{"backup-list", "-vv", "--format", "json"}, append(ep, dest, "srv")...)},
				run{env, append([]string{"backup-show", "-vv"}, append(ep, dest, "srv", "latest")...)},
				run{env, append([]string{"backup-delete", "-vv", "-r", "REDUNDANCY 1"}, append(ep, dest, "srv")...)},
				run{env, append([]string{"backup-keep", "-vv", "--status"}, append(ep, dest, "srv", "latest")...)},
				run{env, append([]string{"restore", "-vv"}, append(ep, dest, "srv", "latest", filepath.Join(dir, "restore"))...)},
				run{env, append([]string{"verify", "-vv"}, append(ep, dest, "srv")...)},
				run{env, append([]string{"check-storage", "-vv"}, append(ep, dest)...)},
			)
		}
	}
	runs = append(runs, run{s3Wrong, append([]string{"wal-archive", "-vv", "--endpoint-url", "http://127.0.0.1:1"}, good, "srv", walPath)})
	azDest := az.Endpoint + "/" + az.NewContainer(t) + "/p"
	for _, env := range [][]string{
		{"AZURE_STORAGE_CONNECTION_STRING=" + strings.Replace(az.ConnectionString, az.Key, azureKey, 1)},
		{"AZURE_STORAGE_ACCOUNT=" + az.Account, "AZURE_STORAGE_KEY=" + azureKey},
		{"AZURE_STORAGE_ACCOUNT=" + az.Account, "AZURE_STORAGE_SAS_TOKEN=" + sas},
		{"AZURE_STORAGE_CONNECTION_STRING=" + az.ConnectionString},
	} {
		runs = append(runs,
			run{env, []string{"wal-archive", "-vv", "--cloud-provider", "azure-blob-storage", azDest, "srv", walPath}},
			run{env, []string{"check-storage", "-vv", azDest}},
			run{env, []string{"backup-list", "-vv", azDest, "srv"}},
		)
	}
	for _, r := range runs {
		_, out := exitCode(t, r.env, bin, r.args...)
		for _, s := range secrets {
			if s != "" && strings.Contains(out, s) {
				t.Errorf("bcloud %s printed a secret:\n%s", strings.Join(r.args, " "), out)
			}
		}
	}
	t.Logf("%d command runs checked for %d secret values", len(runs), len(secrets))
}
