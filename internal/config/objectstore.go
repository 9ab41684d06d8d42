package config

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	apiv1 "github.com/bcloud-dev/bcloud/api/v1"
	"github.com/bcloud-dev/bcloud/internal/compress"
	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/storage/azure"
)

// SecretGetter returns the value of one key of a Secret. The plugin passes a
// function that reads through the Kubernetes API; tests pass a map. Errors
// are wrapped unchanged, so a caller can still tell Forbidden from NotFound.
type SecretGetter func(ctx context.Context, namespace, name, key string) ([]byte, error)

// ObjectStoreOptions are what FromObjectStore takes from outside the
// ObjectStore.
type ObjectStoreOptions struct {
	// Getenv supplies the settings upstream users pass through
	// instanceSidecarConfiguration.env: AWS_DEFAULT_REGION/AWS_REGION,
	// AWS_ENDPOINT_URL(_S3), AWS_REQUEST_CHECKSUM_CALCULATION,
	// AWS_RESPONSE_CHECKSUM_VALIDATION, AZURE_CLIENT_ID and
	// STORAGE_EMULATOR_HOST. Nil means none.
	Getenv Getenv
	// CAFile is the endpointCA PEM as the sidecar injection mounts it
	// (/barman-certificates/<objectstore>/barman-ca.crt). When set and
	// present it is read instead of the Secret, which the sidecar's Role
	// does not cover.
	CAFile string
}

// ObjectStore is an ObjectStore's configuration resolved for bcloud.
type ObjectStore struct {
	// WAL is the storage WAL files go to, with the wal.encryption setting.
	WAL Storage
	// Data is the storage base backups go to, with the data.encryption
	// setting. It differs from WAL only in server-side encryption.
	Data Storage

	WALCompression  compress.Algorithm
	DataCompression compress.Algorithm
	// MaxParallel is wal.maxParallel, at least 1.
	MaxParallel int
	// Jobs is data.jobs; 0 means the default.
	Jobs                int
	ImmediateCheckpoint bool
	// Tags go on every object written; HistoryTags on .history files
	// instead of Tags.
	Tags        map[string]string
	HistoryTags map[string]string
	// Notes tell which given settings were ignored, for a log line. The
	// admission rules reject these combinations; objects created before
	// the rules existed still work the way they did upstream.
	Notes []string
}

// FromObjectStore resolves spec.configuration of an ObjectStore in
// namespace into the same typed configuration FromEnv produces, reading the
// referenced Secrets with getSecret. The credential modes follow what the
// upstream plugin hands to barman-cloud (plugin-barman-cloud.md §6.1), with
// one difference: s3Credentials.region is honoured with inheritFromIAMRole.
// Combinations upstream tolerates resolve as upstream resolves them, with a
// note. Errors name the field to fix and never carry a secret value.
func FromObjectStore(ctx context.Context, cfg *apiv1.BarmanObjectStoreConfiguration, namespace string,
	getSecret SecretGetter, opts ObjectStoreOptions) (ObjectStore, error) {
	if cfg == nil {
		return ObjectStore{}, errors.New("resolve ObjectStore: spec.configuration is missing")
	}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	r := &resolver{ctx: ctx, ns: namespace, get: getSecret}

	provider, err := credentialProvider(cfg)
	if err != nil {
		return ObjectStore{}, err
	}
	loc, err := ParseDestination(cfg.DestinationPath, "")
	if err != nil {
		return ObjectStore{}, fmt.Errorf("spec.configuration.destinationPath: %w", err)
	}
	if err := matchProvider(cfg.DestinationPath, loc.Provider, provider); err != nil {
		return ObjectStore{}, err
	}

	st := Storage{Provider: loc.Provider, Destination: cfg.DestinationPath, Prefix: loc.Prefix}
	switch loc.Provider {
	case ProviderFile:
		st.File.Root = loc.Bucket
	case ProviderS3:
		err = r.s3(&st, loc, cfg, getenv, opts.CAFile)
	case ProviderAzure:
		err = r.azure(&st, loc, cfg, getenv, opts.CAFile)
	case ProviderGCS:
		err = r.gcs(&st, loc, cfg, getenv)
	}
	if err != nil {
		return ObjectStore{}, err
	}

	out := ObjectStore{WAL: st, Data: st, MaxParallel: 1, Tags: cfg.Tags, HistoryTags: cfg.HistoryTags, Notes: r.notes}
	if w := cfg.Wal; w != nil {
		if out.WALCompression, err = compress.Parse(string(w.Compression)); err != nil {
			return ObjectStore{}, fmt.Errorf("spec.configuration.wal.compression: %w", err)
		}
		if w.MaxParallel > 1 {
			out.MaxParallel = w.MaxParallel
		}
		if out.WAL.S3.ServerSideEncryption, err = encryption("wal", w.Encryption); err != nil {
			return ObjectStore{}, err
		}
	}
	if d := cfg.Data; d != nil {
		if out.DataCompression, err = compress.Parse(string(d.Compression)); err != nil {
			return ObjectStore{}, fmt.Errorf("spec.configuration.data.compression: %w", err)
		}
		if d.Jobs != nil {
			out.Jobs = int(*d.Jobs)
		}
		out.ImmediateCheckpoint = d.ImmediateCheckpoint
		if out.Data.S3.ServerSideEncryption, err = encryption("data", d.Encryption); err != nil {
			return ObjectStore{}, err
		}
	}
	return out, nil
}

// credentialProvider returns the provider the credentials name, "" for none.
func credentialProvider(cfg *apiv1.BarmanObjectStoreConfiguration) (Provider, error) {
	var set []Provider
	if cfg.AWS != nil {
		set = append(set, ProviderS3)
	}
	if cfg.Azure != nil {
		set = append(set, ProviderAzure)
	}
	if cfg.Google != nil {
		set = append(set, ProviderGCS)
	}
	if len(set) > 1 {
		return "", errors.New("spec.configuration: set only one of s3Credentials, azureCredentials or googleCredentials")
	}
	if len(set) == 0 {
		return "", nil
	}
	return set[0], nil
}

func matchProvider(dest string, fromURL, fromCreds Provider) error {
	field := map[Provider]string{ProviderS3: "s3Credentials", ProviderAzure: "azureCredentials", ProviderGCS: "googleCredentials"}
	switch {
	case fromURL == ProviderFile && fromCreds != "":
		return fmt.Errorf("spec.configuration: a file:// destinationPath takes no credentials: remove %s", field[fromCreds])
	case fromURL == ProviderFile:
		return nil
	case fromCreds == "":
		return fmt.Errorf("spec.configuration: destinationPath %q needs %s", dest, field[fromURL])
	case fromCreds != fromURL:
		return fmt.Errorf("spec.configuration: destinationPath %q is a %s URL but %s are set: use %s or change the destination",
			dest, fromURL, field[fromCreds], field[fromURL])
	}
	return nil
}

func encryption(section string, e apiv1.EncryptionType) (string, error) {
	switch e {
	case apiv1.EncryptionTypeNone, apiv1.EncryptionTypeAES256, apiv1.EncryptionTypeKMS:
		return string(e), nil
	}
	return "", fmt.Errorf("spec.configuration.%s.encryption %q is not valid: use AES256 or aws:kms", section, e)
}

type resolver struct {
	ctx   context.Context
	ns    string
	get   SecretGetter
	notes []string
}

func (r *resolver) note(msg string) { r.notes = append(r.notes, msg) }

// secret reads the value a selector points at. field is the path shown in
// errors, relative to spec.configuration.
func (r *resolver) secret(field string, sel *apiv1.SecretKeySelector) ([]byte, error) {
	if sel == nil {
		return nil, fmt.Errorf("spec.configuration.%s is required", field)
	}
	if sel.Name == "" || sel.Key == "" {
		return nil, fmt.Errorf("spec.configuration.%s needs both name and key", field)
	}
	if r.get == nil {
		return nil, fmt.Errorf("read spec.configuration.%s: no Secret reader", field)
	}
	v, err := r.get(r.ctx, r.ns, sel.Name, sel.Key)
	if err != nil {
		return nil, fmt.Errorf("read spec.configuration.%s (Secret %s/%s, key %q): %w", field, r.ns, sel.Name, sel.Key, err)
	}
	if len(v) == 0 {
		return nil, fmt.Errorf("spec.configuration.%s: key %q of Secret %s/%s is empty", field, sel.Key, r.ns, sel.Name)
	}
	return v, nil
}

// line reads a one-line value, dropping the trailing newline `echo` and
// editors leave behind.
func (r *resolver) line(field string, sel *apiv1.SecretKeySelector) (string, error) {
	v, err := r.secret(field, sel)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(v))
	if s == "" {
		return "", fmt.Errorf("spec.configuration.%s: key %q of Secret %s/%s holds only whitespace", field, sel.Key, r.ns, sel.Name)
	}
	return s, nil
}

func (r *resolver) ca(cfg *apiv1.BarmanObjectStoreConfiguration, caFile string) ([]byte, error) {
	if cfg.EndpointCA == nil {
		return nil, nil
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err == nil {
			return pem, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("read endpointCA file: %w", err)
		}
	}
	pem, err := r.secret("endpointCA", cfg.EndpointCA)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(string(pem), "-----BEGIN CERTIFICATE-----") {
		return nil, fmt.Errorf("spec.configuration.endpointCA: key %q of Secret %s/%s holds no PEM certificate", cfg.EndpointCA.Key, r.ns, cfg.EndpointCA.Name)
	}
	return pem, nil
}

func (r *resolver) s3(st *Storage, loc Location, cfg *apiv1.BarmanObjectStoreConfiguration, getenv Getenv, caFile string) error {
	cr := cfg.AWS
	c := &st.S3
	c.Bucket = loc.Bucket
	c.Endpoint = firstNonEmpty(cfg.EndpointURL, getenv("AWS_ENDPOINT_URL_S3"), getenv("AWS_ENDPOINT_URL"))
	c.Region = firstNonEmpty(getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION"))
	var err error
	if cr.RegionReference != nil {
		if c.Region, err = r.line("s3Credentials.region", cr.RegionReference); err != nil {
			return err
		}
	}
	switch {
	case cr.InheritFromIAMRole:
		// The SDK default chain: IRSA web identity, pod identity, instance
		// role. Keys given as well are ignored, as upstream does.
		if cr.AccessKeyIDReference != nil || cr.SecretAccessKeyReference != nil || cr.SessionToken != nil {
			r.note("s3Credentials: inheritFromIAMRole is true, so accessKeyId, secretAccessKey and sessionToken are ignored")
		}
	case cr.AccessKeyIDReference == nil && cr.SecretAccessKeyReference == nil:
		return errors.New("spec.configuration.s3Credentials needs accessKeyId and secretAccessKey, or inheritFromIAMRole: true")
	default:
		if c.AccessKeyID, err = r.line("s3Credentials.accessKeyId", cr.AccessKeyIDReference); err != nil {
			return err
		}
		secret, err := r.line("s3Credentials.secretAccessKey", cr.SecretAccessKeyReference)
		if err != nil {
			return err
		}
		c.SecretAccessKey = storage.Secret(secret)
		if cr.SessionToken != nil {
			token, err := r.line("s3Credentials.sessionToken", cr.SessionToken)
			if err != nil {
				return err
			}
			c.SessionToken = storage.Secret(token)
		}
	}
	if c.RequestChecksumCalculation, err = checksumMode("AWS_REQUEST_CHECKSUM_CALCULATION", getenv); err != nil {
		return err
	}
	if c.ResponseChecksumValidation, err = checksumMode("AWS_RESPONSE_CHECKSUM_VALIDATION", getenv); err != nil {
		return err
	}
	c.CABundle, err = r.ca(cfg, caFile)
	return err
}

func (r *resolver) azure(st *Storage, loc Location, cfg *apiv1.BarmanObjectStoreConfiguration, getenv Getenv, caFile string) error {
	cr := cfg.Azure
	c := &st.Azure
	c.Container = loc.Bucket
	c.Account = loc.AzureAccount
	c.AccountURL = loc.AzureAccountURL
	c.ClientID = getenv("AZURE_CLIENT_ID")
	// The plugin passes an identity as barman-cloud's --credential, which
	// wins; otherwise barman-cloud takes the connection string, then the SAS
	// token, then the key.
	var err error
	switch {
	case cr.InheritFromAzureAD:
		c.Credential = azure.CredentialManagedIdentity
		if cr.UseDefaultAzureCredentials || cr.ConnectionString != nil || cr.StorageKey != nil || cr.StorageSasToken != nil {
			r.note("azureCredentials: inheritFromAzureAD is true, so the other credentials are ignored")
		}
	case cr.UseDefaultAzureCredentials:
		c.Credential = azure.CredentialDefault
		if cr.ConnectionString != nil || cr.StorageKey != nil || cr.StorageSasToken != nil {
			r.note("azureCredentials: useDefaultAzureCredentials is true, so the Secrets are ignored")
		}
	case cr.ConnectionString != nil:
		cs, err := r.line("azureCredentials.connectionString", cr.ConnectionString)
		if err != nil {
			return err
		}
		c.ConnectionString = storage.Secret(cs)
		if cr.StorageAccount != nil || cr.StorageKey != nil || cr.StorageSasToken != nil {
			r.note("azureCredentials: connectionString is set, so storageAccount, storageKey and storageSasToken are ignored")
		}
	case cr.StorageKey == nil && cr.StorageSasToken == nil:
		return errors.New("spec.configuration.azureCredentials needs one of connectionString, storageAccount with storageKey or storageSasToken, inheritFromAzureAD: true or useDefaultAzureCredentials: true")
	default:
		if cr.StorageAccount == nil {
			return errors.New("spec.configuration.azureCredentials.storageAccount is required with storageKey or storageSasToken")
		}
		account, err := r.line("azureCredentials.storageAccount", cr.StorageAccount)
		if err != nil {
			return err
		}
		if c.Account != "" && c.Account != account {
			return fmt.Errorf("spec.configuration.azureCredentials.storageAccount (Secret %s/%s) names another account than destinationPath %q: make them match",
				r.ns, cr.StorageAccount.Name, cfg.DestinationPath)
		}
		c.Account = account
		if cr.StorageSasToken != nil {
			sas, err := r.line("azureCredentials.storageSasToken", cr.StorageSasToken)
			if err != nil {
				return err
			}
			c.SASToken = storage.Secret(sas)
			if cr.StorageKey != nil {
				r.note("azureCredentials: storageSasToken is set, so storageKey is ignored")
			}
		} else {
			key, err := r.line("azureCredentials.storageKey", cr.StorageKey)
			if err != nil {
				return err
			}
			c.Key = storage.Secret(key)
		}
	}
	if loc.AzureEmulated && c.Credential != azure.CredentialNone {
		return fmt.Errorf("spec.configuration: destinationPath %q is an emulator URL: use connectionString, storageKey or storageSasToken", cfg.DestinationPath)
	}
	c.CABundle, err = r.ca(cfg, caFile)
	return err
}

func (r *resolver) gcs(st *Storage, loc Location, cfg *apiv1.BarmanObjectStoreConfiguration, getenv Getenv) error {
	cr := cfg.Google
	c := &st.GCS
	c.Bucket = loc.Bucket
	c.EmulatorHost = getenv("STORAGE_EMULATOR_HOST")
	switch {
	case cr.ApplicationCredentials != nil:
		// Upstream writes the key file whenever one is given.
		if cr.GKEEnvironment {
			r.note("googleCredentials: applicationCredentials is set, so gkeEnvironment is ignored")
		}
		data, err := r.secret("googleCredentials.applicationCredentials", cr.ApplicationCredentials)
		if err != nil {
			return err
		}
		if !json.Valid(data) {
			return fmt.Errorf("spec.configuration.googleCredentials.applicationCredentials: key %q of Secret %s/%s is not a JSON key file",
				cr.ApplicationCredentials.Key, r.ns, cr.ApplicationCredentials.Name)
		}
		c.CredentialsJSON = storage.Secret(data)
	case cr.GKEEnvironment:
		// Application Default Credentials: GKE workload identity.
	default:
		return errors.New("spec.configuration.googleCredentials needs applicationCredentials or gkeEnvironment: true")
	}
	// endpointCA is ignored, as upstream does: barman-cloud has no CA
	// option for Google Cloud Storage.
	return nil
}
