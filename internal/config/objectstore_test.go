package config_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	apiv1 "github.com/bcloud-dev/bcloud/api/v1"
	"github.com/bcloud-dev/bcloud/internal/compress"
	"github.com/bcloud-dev/bcloud/internal/config"
	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/storage/azure"
	"github.com/bcloud-dev/bcloud/internal/storage/gcs"
	"github.com/bcloud-dev/bcloud/internal/storage/s3"
)

const testCA = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"

// secretValues are the values of the fake Secrets; none may ever appear in
// an error message.
var secretValues = map[string]string{
	"aws/ACCESS_KEY_ID":           "AKIAEXAMPLEKEYID",
	"aws/ACCESS_SECRET_KEY":       "s3cr3t-access-key-value\n",
	"aws/ACCESS_SESSION_TOKEN":    "session-token-value",
	"aws/ACCESS_REGION":           "eu-west-3",
	"azure/AZURE_CONNECTION_STR":  "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Y29ubmVjdGlvbmtleQ==",
	"azure/AZURE_STORAGE_ACCOUNT": "acct",
	"azure/AZURE_STORAGE_KEY":     "YXp1cmUtc3RvcmFnZS1rZXk=",
	"azure/AZURE_STORAGE_SAS":     "sv=2024&sig=sas-signature-value",
	"azure/OTHER_ACCOUNT":         "otheracct",
	"gcs/gcsCredentials":          `{"type":"service_account","private_key":"gcs-private-key-value"}`,
	"gcs/notjson":                 "gcs-not-json-value",
	"ca/ca.crt":                   testCA,
	"ca/bad":                      "not-a-pem-value",
	"empty/key":                   "",
}

var errForbidden = errors.New("secrets is forbidden")

func fakeSecrets(t *testing.T) config.SecretGetter {
	return func(ctx context.Context, namespace, name, key string) ([]byte, error) {
		if namespace != "ns" {
			t.Errorf("Secret %s read from namespace %q, want ns", name, namespace)
		}
		if name == "forbidden" {
			return nil, fmt.Errorf("get secret %s: %w", name, errForbidden)
		}
		v, ok := secretValues[name+"/"+key]
		if !ok {
			return nil, fmt.Errorf("secret %q has no key %q", name, key)
		}
		return []byte(v), nil
	}
}

func sel(name, key string) *apiv1.SecretKeySelector {
	return &apiv1.SecretKeySelector{LocalObjectReference: apiv1.LocalObjectReference{Name: name}, Key: key}
}

func TestFromObjectStore(t *testing.T) {
	jobs := int32(4)
	cases := []struct {
		name string
		cfg  apiv1.BarmanObjectStoreConfiguration
		env  map[string]string
		want func(*config.ObjectStore)
	}{
		{
			name: "s3 keys, session token, region, endpoint, CA",
			cfg: apiv1.BarmanObjectStoreConfiguration{
				DestinationPath: "s3://backups/pg",
				EndpointURL:     "https://minio.local:9000",
				EndpointCA:      sel("ca", "ca.crt"),
				BarmanCredentials: apiv1.BarmanCredentials{AWS: &apiv1.S3Credentials{
					AccessKeyIDReference:     sel("aws", "ACCESS_KEY_ID"),
					SecretAccessKeyReference: sel("aws", "ACCESS_SECRET_KEY"),
					SessionToken:             sel("aws", "ACCESS_SESSION_TOKEN"),
					RegionReference:          sel("aws", "ACCESS_REGION"),
				}},
			},
			env: map[string]string{"AWS_DEFAULT_REGION": "us-east-1", "AWS_REQUEST_CHECKSUM_CALCULATION": "WHEN_REQUIRED"},
			want: func(o *config.ObjectStore) {
				o.WAL = config.Storage{Provider: config.ProviderS3, Destination: "s3://backups/pg", Prefix: "pg", S3: s3.Config{
					Bucket: "backups", Endpoint: "https://minio.local:9000", Region: "eu-west-3",
					AccessKeyID: "AKIAEXAMPLEKEYID", SecretAccessKey: "s3cr3t-access-key-value", SessionToken: "session-token-value",
					CABundle: []byte(testCA), RequestChecksumCalculation: "when_required",
				}}
			},
		},
		{
			name: "s3 IAM role keeps the region from the environment",
			cfg: apiv1.BarmanObjectStoreConfiguration{
				DestinationPath:   "s3://backups",
				BarmanCredentials: apiv1.BarmanCredentials{AWS: &apiv1.S3Credentials{InheritFromIAMRole: true}},
			},
			env: map[string]string{"AWS_DEFAULT_REGION": "us-east-2", "AWS_ENDPOINT_URL": "http://gw:7070"},
			want: func(o *config.ObjectStore) {
				o.WAL = config.Storage{Provider: config.ProviderS3, Destination: "s3://backups",
					S3: s3.Config{Bucket: "backups", Region: "us-east-2", Endpoint: "http://gw:7070"}}
			},
		},
		{
			name: "s3 IAM role with a region Secret",
			cfg: apiv1.BarmanObjectStoreConfiguration{
				DestinationPath: "s3://backups/x",
				BarmanCredentials: apiv1.BarmanCredentials{AWS: &apiv1.S3Credentials{
					InheritFromIAMRole: true, RegionReference: sel("aws", "ACCESS_REGION")}},
			},
			want: func(o *config.ObjectStore) {
				o.WAL = config.Storage{Provider: config.ProviderS3, Destination: "s3://backups/x", Prefix: "x",
					S3: s3.Config{Bucket: "backups", Region: "eu-west-3"}}
			},
		},
		{
			name: "wal and data settings, tags",
			cfg: apiv1.BarmanObjectStoreConfiguration{
				DestinationPath:   "s3://b/p",
				BarmanCredentials: apiv1.BarmanCredentials{AWS: &apiv1.S3Credentials{InheritFromIAMRole: true}},
				Wal:               &apiv1.WalBackupConfiguration{Compression: "zstd", Encryption: "aws:kms", MaxParallel: 8},
				Data:              &apiv1.DataBackupConfiguration{Compression: "snappy", Encryption: "AES256", Jobs: &jobs, ImmediateCheckpoint: true},
				Tags:              map[string]string{"env": "prod"},
				HistoryTags:       map[string]string{"kind": "history"},
			},
			want: func(o *config.ObjectStore) {
				o.WAL = config.Storage{Provider: config.ProviderS3, Destination: "s3://b/p", Prefix: "p",
					S3: s3.Config{Bucket: "b", ServerSideEncryption: "aws:kms"}}
				o.Data = o.WAL
				o.Data.S3.ServerSideEncryption = "AES256"
				o.WALCompression, o.DataCompression = compress.Zstd, compress.Snappy
				o.MaxParallel, o.Jobs, o.ImmediateCheckpoint = 8, 4, true
				o.Tags = map[string]string{"env": "prod"}
				o.HistoryTags = map[string]string{"kind": "history"}
			},
		},
		{
			name: "azure connection string on the emulator path form",
			cfg: apiv1.BarmanObjectStoreConfiguration{
				DestinationPath:   "http://azurite:10000/storageaccountname/backups/pg",
				BarmanCredentials: apiv1.BarmanCredentials{Azure: &apiv1.AzureCredentials{ConnectionString: sel("azure", "AZURE_CONNECTION_STR")}},
			},
			want: func(o *config.ObjectStore) {
				o.WAL = config.Storage{Provider: config.ProviderAzure, Destination: "http://azurite:10000/storageaccountname/backups/pg", Prefix: "pg",
					Azure: azure.Config{Container: "backups", Account: "storageaccountname", AccountURL: "http://azurite:10000/storageaccountname",
						ConnectionString: storage.Secret(secretValues["azure/AZURE_CONNECTION_STR"])}}
			},
		},
		{
			name: "azure account and key, CA",
			cfg: apiv1.BarmanObjectStoreConfiguration{
				DestinationPath: "https://acct.blob.core.windows.net/cont/pg",
				EndpointCA:      sel("ca", "ca.crt"),
				BarmanCredentials: apiv1.BarmanCredentials{Azure: &apiv1.AzureCredentials{
					StorageAccount: sel("azure", "AZURE_STORAGE_ACCOUNT"), StorageKey: sel("azure", "AZURE_STORAGE_KEY")}},
			},
			want: func(o *config.ObjectStore) {
				o.WAL = config.Storage{Provider: config.ProviderAzure, Destination: "https://acct.blob.core.windows.net/cont/pg", Prefix: "pg",
					Azure: azure.Config{Container: "cont", Account: "acct", AccountURL: "https://acct.blob.core.windows.net",
						Key: storage.Secret(secretValues["azure/AZURE_STORAGE_KEY"]), CABundle: []byte(testCA)}}
			},
		},
		{
			name: "azure account and SAS token",
			cfg: apiv1.BarmanObjectStoreConfiguration{
				DestinationPath: "https://acct.blob.core.windows.net/cont",
				BarmanCredentials: apiv1.BarmanCredentials{Azure: &apiv1.AzureCredentials{
					StorageAccount: sel("azure", "AZURE_STORAGE_ACCOUNT"), StorageSasToken: sel("azure", "AZURE_STORAGE_SAS")}},
			},
			want: func(o *config.ObjectStore) {
				o.WAL = config.Storage{Provider: config.ProviderAzure, Destination: "https://acct.blob.core.windows.net/cont",
					Azure: azure.Config{Container: "cont", Account: "acct", AccountURL: "https://acct.blob.core.windows.net",
						SASToken: storage.Secret(secretValues["azure/AZURE_STORAGE_SAS"])}}
			},
		},
		{
			name: "azure AD is a managed identity",
			cfg: apiv1.BarmanObjectStoreConfiguration{
				DestinationPath:   "https://acct.blob.core.windows.net/cont",
				BarmanCredentials: apiv1.BarmanCredentials{Azure: &apiv1.AzureCredentials{InheritFromAzureAD: true}},
			},
			env: map[string]string{"AZURE_CLIENT_ID": "client-id"},
			want: func(o *config.ObjectStore) {
				o.WAL = config.Storage{Provider: config.ProviderAzure, Destination: "https://acct.blob.core.windows.net/cont",
					Azure: azure.Config{Container: "cont", Account: "acct", AccountURL: "https://acct.blob.core.windows.net",
						Credential: azure.CredentialManagedIdentity, ClientID: "client-id"}}
			},
		},
		{
			name: "azure default credential",
			cfg: apiv1.BarmanObjectStoreConfiguration{
				DestinationPath:   "https://acct.blob.core.windows.net/cont",
				BarmanCredentials: apiv1.BarmanCredentials{Azure: &apiv1.AzureCredentials{UseDefaultAzureCredentials: true}},
			},
			want: func(o *config.ObjectStore) {
				o.WAL = config.Storage{Provider: config.ProviderAzure, Destination: "https://acct.blob.core.windows.net/cont",
					Azure: azure.Config{Container: "cont", Account: "acct", AccountURL: "https://acct.blob.core.windows.net",
						Credential: azure.CredentialDefault}}
			},
		},
		{
			name: "gcs key file and emulator",
			cfg: apiv1.BarmanObjectStoreConfiguration{
				DestinationPath:   "gs://bucket/pg",
				BarmanCredentials: apiv1.BarmanCredentials{Google: &apiv1.GoogleCredentials{ApplicationCredentials: sel("gcs", "gcsCredentials")}},
			},
			env: map[string]string{"STORAGE_EMULATOR_HOST": "http://fake-gcs:4443"},
			want: func(o *config.ObjectStore) {
				o.WAL = config.Storage{Provider: config.ProviderGCS, Destination: "gs://bucket/pg", Prefix: "pg",
					GCS: gcs.Config{Bucket: "bucket", EmulatorHost: "http://fake-gcs:4443",
						CredentialsJSON: storage.Secret(secretValues["gcs/gcsCredentials"])}}
			},
		},
		{
			name: "gcs workload identity",
			cfg: apiv1.BarmanObjectStoreConfiguration{
				DestinationPath:   "gs://bucket",
				BarmanCredentials: apiv1.BarmanCredentials{Google: &apiv1.GoogleCredentials{GKEEnvironment: true}},
			},
			want: func(o *config.ObjectStore) {
				o.WAL = config.Storage{Provider: config.ProviderGCS, Destination: "gs://bucket", GCS: gcs.Config{Bucket: "bucket"}}
			},
		},
		{
			name: "file destination without credentials",
			cfg:  apiv1.BarmanObjectStoreConfiguration{DestinationPath: "file:///var/lib/backups"},
			want: func(o *config.ObjectStore) {
				o.WAL = config.Storage{Provider: config.ProviderFile, Destination: "file:///var/lib/backups"}
				o.WAL.File.Root = "/var/lib/backups"
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := config.FromObjectStore(context.Background(), &c.cfg, "ns", fakeSecrets(t),
				config.ObjectStoreOptions{Getenv: func(k string) string { return c.env[k] }})
			if err != nil {
				t.Fatal(err)
			}
			want := config.ObjectStore{MaxParallel: 1}
			c.want(&want)
			if want.Data.Provider == "" {
				want.Data = want.WAL
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestFromObjectStoreErrors(t *testing.T) {
	s3 := func(c *apiv1.S3Credentials) apiv1.BarmanObjectStoreConfiguration {
		return apiv1.BarmanObjectStoreConfiguration{DestinationPath: "s3://b/p", BarmanCredentials: apiv1.BarmanCredentials{AWS: c}}
	}
	az := func(c *apiv1.AzureCredentials) apiv1.BarmanObjectStoreConfiguration {
		return apiv1.BarmanObjectStoreConfiguration{DestinationPath: "https://acct.blob.core.windows.net/c", BarmanCredentials: apiv1.BarmanCredentials{Azure: c}}
	}
	keys := &apiv1.S3Credentials{AccessKeyIDReference: sel("aws", "ACCESS_KEY_ID"), SecretAccessKeyReference: sel("aws", "ACCESS_SECRET_KEY")}
	cases := []struct {
		name string
		cfg  apiv1.BarmanObjectStoreConfiguration
		want string
	}{
		{"two providers", apiv1.BarmanObjectStoreConfiguration{DestinationPath: "s3://b", BarmanCredentials: apiv1.BarmanCredentials{
			AWS: keys, Google: &apiv1.GoogleCredentials{GKEEnvironment: true}}}, "set only one of"},
		{"no provider", apiv1.BarmanObjectStoreConfiguration{DestinationPath: "s3://b"}, "needs s3Credentials"},
		{"credentials on a file destination", apiv1.BarmanObjectStoreConfiguration{DestinationPath: "file:///x",
			BarmanCredentials: apiv1.BarmanCredentials{AWS: keys}}, "takes no credentials"},
		{"provider and URL disagree", apiv1.BarmanObjectStoreConfiguration{DestinationPath: "gs://b",
			BarmanCredentials: apiv1.BarmanCredentials{AWS: keys}}, "use googleCredentials"},
		{"bad destination", apiv1.BarmanObjectStoreConfiguration{DestinationPath: "bucket/path"}, "spec.configuration.destinationPath"},
		{"s3 only access key", s3(&apiv1.S3Credentials{AccessKeyIDReference: sel("aws", "ACCESS_KEY_ID")}), "s3Credentials.secretAccessKey is required"},
		{"s3 nothing", s3(&apiv1.S3Credentials{}), "needs accessKeyId and secretAccessKey, or inheritFromIAMRole"},
		{"s3 missing secret key", s3(&apiv1.S3Credentials{AccessKeyIDReference: sel("aws", "ACCESS_KEY_ID"),
			SecretAccessKeyReference: sel("aws", "NOPE")}), `s3Credentials.secretAccessKey (Secret ns/aws, key "NOPE")`},
		{"s3 empty value", s3(&apiv1.S3Credentials{AccessKeyIDReference: sel("empty", "key"),
			SecretAccessKeyReference: sel("aws", "ACCESS_SECRET_KEY")}), "is empty"},
		{"s3 bad checksum env", apiv1.BarmanObjectStoreConfiguration{DestinationPath: "s3://b", EndpointCA: sel("ca", "ca.crt"),
			BarmanCredentials: apiv1.BarmanCredentials{AWS: &apiv1.S3Credentials{InheritFromIAMRole: true}}}, ""},
		{"CA not PEM", apiv1.BarmanObjectStoreConfiguration{DestinationPath: "s3://b", EndpointCA: sel("ca", "bad"),
			BarmanCredentials: apiv1.BarmanCredentials{AWS: keys}}, "holds no PEM certificate"},
		{"azure key without account", az(&apiv1.AzureCredentials{StorageKey: sel("azure", "AZURE_STORAGE_KEY")}), "storageAccount is required"},
		{"azure none", az(&apiv1.AzureCredentials{}), "needs one of connectionString"},
		{"azure account differs from URL", az(&apiv1.AzureCredentials{StorageAccount: sel("azure", "OTHER_ACCOUNT"),
			StorageKey: sel("azure", "AZURE_STORAGE_KEY")}), "names another account"},
		{"azure emulator with identity", apiv1.BarmanObjectStoreConfiguration{DestinationPath: "http://azurite:10000/a/c",
			BarmanCredentials: apiv1.BarmanCredentials{Azure: &apiv1.AzureCredentials{InheritFromAzureAD: true}}}, "emulator URL"},
		{"gcs none", apiv1.BarmanObjectStoreConfiguration{DestinationPath: "gs://b", BarmanCredentials: apiv1.BarmanCredentials{
			Google: &apiv1.GoogleCredentials{}}}, "needs applicationCredentials or gkeEnvironment"},
		{"gcs not JSON", apiv1.BarmanObjectStoreConfiguration{DestinationPath: "gs://b", BarmanCredentials: apiv1.BarmanCredentials{
			Google: &apiv1.GoogleCredentials{ApplicationCredentials: sel("gcs", "notjson")}}}, "is not a JSON key file"},
		{"bad wal compression", apiv1.BarmanObjectStoreConfiguration{DestinationPath: "file:///x",
			Wal: &apiv1.WalBackupConfiguration{Compression: "rar"}}, "spec.configuration.wal.compression"},
		{"bad data encryption", apiv1.BarmanObjectStoreConfiguration{DestinationPath: "file:///x",
			Data: &apiv1.DataBackupConfiguration{Encryption: "rot13"}}, "spec.configuration.data.encryption"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := map[string]string{}
			if c.want == "" {
				env["AWS_RESPONSE_CHECKSUM_VALIDATION"] = "sometimes"
				c.want = "AWS_RESPONSE_CHECKSUM_VALIDATION"
			}
			_, err := config.FromObjectStore(context.Background(), &c.cfg, "ns", fakeSecrets(t),
				config.ObjectStoreOptions{Getenv: func(k string) string { return env[k] }})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
			for k, v := range secretValues {
				if v = strings.TrimSpace(v); len(v) > 4 && k != "azure/AZURE_STORAGE_ACCOUNT" && strings.Contains(err.Error(), v) {
					t.Errorf("error reveals the value of %s: %v", k, err)
				}
			}
		})
	}
}

func TestFromObjectStoreKeepsGetterError(t *testing.T) {
	cfg := apiv1.BarmanObjectStoreConfiguration{DestinationPath: "s3://b", BarmanCredentials: apiv1.BarmanCredentials{
		AWS: &apiv1.S3Credentials{AccessKeyIDReference: sel("forbidden", "k"), SecretAccessKeyReference: sel("forbidden", "s")}}}
	_, err := config.FromObjectStore(context.Background(), &cfg, "ns", fakeSecrets(t), config.ObjectStoreOptions{})
	if !errors.Is(err, errForbidden) {
		t.Fatalf("err = %v, want it to wrap the getter's error", err)
	}
	if _, err := config.FromObjectStore(context.Background(), nil, "ns", fakeSecrets(t), config.ObjectStoreOptions{}); err == nil {
		t.Fatal("nil configuration accepted")
	}
}

func TestFromObjectStoreCAFile(t *testing.T) {
	dir := t.TempDir()
	mounted := filepath.Join(dir, "barman-ca.crt")
	const filePEM = "-----BEGIN CERTIFICATE-----\nMIIBfromfile\n-----END CERTIFICATE-----\n"
	if err := os.WriteFile(mounted, []byte(filePEM), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := apiv1.BarmanObjectStoreConfiguration{DestinationPath: "s3://b", EndpointCA: sel("forbidden", "ca.crt"),
		BarmanCredentials: apiv1.BarmanCredentials{AWS: &apiv1.S3Credentials{InheritFromIAMRole: true}}}
	// The mounted file wins, so the Secret (forbidden here) is not read.
	got, err := config.FromObjectStore(context.Background(), &cfg, "ns", fakeSecrets(t), config.ObjectStoreOptions{CAFile: mounted})
	if err != nil {
		t.Fatal(err)
	}
	if string(got.WAL.S3.CABundle) != filePEM {
		t.Errorf("CA bundle = %q, want the mounted file", got.WAL.S3.CABundle)
	}
	// A CA file that is not mounted falls back to the Secret.
	cfg.EndpointCA = sel("ca", "ca.crt")
	got, err = config.FromObjectStore(context.Background(), &cfg, "ns", fakeSecrets(t),
		config.ObjectStoreOptions{CAFile: filepath.Join(dir, "absent.crt")})
	if err != nil {
		t.Fatal(err)
	}
	if string(got.WAL.S3.CABundle) != testCA {
		t.Errorf("CA bundle = %q, want the Secret's", got.WAL.S3.CABundle)
	}
}

// The same credentials given as an ObjectStore and as the environment the
// upstream plugin would set resolve to the same Storage.
func TestFromObjectStoreMatchesFromEnv(t *testing.T) {
	cfg := apiv1.BarmanObjectStoreConfiguration{
		DestinationPath: "s3://backups/pg", EndpointURL: "http://gw:7070",
		BarmanCredentials: apiv1.BarmanCredentials{AWS: &apiv1.S3Credentials{
			AccessKeyIDReference: sel("aws", "ACCESS_KEY_ID"), SecretAccessKeyReference: sel("aws", "ACCESS_SECRET_KEY"),
			RegionReference: sel("aws", "ACCESS_REGION")}},
	}
	fromOS, err := config.FromObjectStore(context.Background(), &cfg, "ns", fakeSecrets(t), config.ObjectStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEYID", "AWS_SECRET_ACCESS_KEY": "s3cr3t-access-key-value", "AWS_DEFAULT_REGION": "eu-west-3",
	}
	fromEnv, err := config.FromEnv("s3://backups/pg", config.Options{EndpointURL: "http://gw:7070"}, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromOS.WAL, fromEnv) {
		t.Errorf("FromObjectStore %+v\nFromEnv         %+v", fromOS.WAL, fromEnv)
	}
}

// Combinations the admission rules reject but upstream tolerates resolve as
// upstream resolves them, with a note.
func TestFromObjectStoreUpstreamPrecedence(t *testing.T) {
	cases := []struct {
		name  string
		cfg   apiv1.BarmanObjectStoreConfiguration
		check func(config.Storage) bool
	}{
		{"IAM role wins over keys", apiv1.BarmanObjectStoreConfiguration{DestinationPath: "s3://b", BarmanCredentials: apiv1.BarmanCredentials{
			AWS: &apiv1.S3Credentials{InheritFromIAMRole: true, AccessKeyIDReference: sel("aws", "ACCESS_KEY_ID")}}},
			func(s config.Storage) bool { return s.S3.AccessKeyID == "" }},
		{"connection string wins over the storage fields (the upstream all-fields example)", apiv1.BarmanObjectStoreConfiguration{
			DestinationPath: "https://acct.blob.core.windows.net/c", BarmanCredentials: apiv1.BarmanCredentials{Azure: &apiv1.AzureCredentials{
				ConnectionString: sel("azure", "AZURE_CONNECTION_STR"), StorageAccount: sel("azure", "AZURE_STORAGE_ACCOUNT"),
				StorageKey: sel("azure", "AZURE_STORAGE_KEY"), StorageSasToken: sel("azure", "AZURE_STORAGE_SAS")}}},
			func(s config.Storage) bool {
				return s.Azure.ConnectionString != "" && s.Azure.Key == "" && s.Azure.SASToken == ""
			}},
		{"identity wins over a connection string", apiv1.BarmanObjectStoreConfiguration{
			DestinationPath: "https://acct.blob.core.windows.net/c", BarmanCredentials: apiv1.BarmanCredentials{Azure: &apiv1.AzureCredentials{
				ConnectionString: sel("azure", "AZURE_CONNECTION_STR"), InheritFromAzureAD: true}}},
			func(s config.Storage) bool {
				return s.Azure.Credential == azure.CredentialManagedIdentity && s.Azure.ConnectionString == ""
			}},
		{"SAS token wins over key", apiv1.BarmanObjectStoreConfiguration{
			DestinationPath: "https://acct.blob.core.windows.net/c", BarmanCredentials: apiv1.BarmanCredentials{Azure: &apiv1.AzureCredentials{
				StorageAccount: sel("azure", "AZURE_STORAGE_ACCOUNT"), StorageKey: sel("azure", "AZURE_STORAGE_KEY"),
				StorageSasToken: sel("azure", "AZURE_STORAGE_SAS")}}},
			func(s config.Storage) bool { return s.Azure.SASToken != "" && s.Azure.Key == "" }},
		{"key file wins over gkeEnvironment", apiv1.BarmanObjectStoreConfiguration{DestinationPath: "gs://b", BarmanCredentials: apiv1.BarmanCredentials{
			Google: &apiv1.GoogleCredentials{GKEEnvironment: true, ApplicationCredentials: sel("gcs", "gcsCredentials")}}},
			func(s config.Storage) bool { return s.GCS.CredentialsJSON != "" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := config.FromObjectStore(context.Background(), &c.cfg, "ns", fakeSecrets(t), config.ObjectStoreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(got.WAL) {
				t.Errorf("unexpected resolution %+v", got.WAL)
			}
			if len(got.Notes) != 1 {
				t.Errorf("notes = %q, want one", got.Notes)
			}
		})
	}
}
