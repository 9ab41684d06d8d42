package config

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/storage/azure"
)

// Options are the connection options of the barman-cloud command line.
type Options struct {
	Provider        Provider
	EndpointURL     string
	AWSProfile      string
	ReadTimeout     time.Duration
	AzureCredential azure.Credential
	// Server-side encryption (S3: AES256|aws:kms, with SSEKMSKeyID).
	Encryption      string
	SSEKMSKeyID     string
	EncryptionScope string
	KMSKeyName      string
}

// Getenv looks up an environment variable; os.Getenv in production, a map in tests.
type Getenv func(string) string

// FromEnv resolves a destination and the command-line options with
// credentials taken from the environment variables barman-cloud and the
// Barman Cloud plugin use.
func FromEnv(destination string, opts Options, getenv Getenv) (Storage, error) {
	loc, err := ParseDestination(destination, opts.Provider)
	if err != nil {
		return Storage{}, err
	}
	st := Storage{Provider: loc.Provider, Destination: destination, Prefix: loc.Prefix}
	switch loc.Provider {
	case ProviderFile:
		st.File.Root = loc.Bucket
	case ProviderS3:
		err = s3FromEnv(&st, loc, opts, getenv)
	case ProviderAzure:
		err = azureFromEnv(&st, loc, opts, getenv)
	case ProviderGCS:
		err = gcsFromEnv(&st, loc, opts, getenv)
	}
	return st, err
}

func s3FromEnv(st *Storage, loc Location, opts Options, getenv Getenv) error {
	c := &st.S3
	c.Bucket = loc.Bucket
	c.Endpoint = firstNonEmpty(opts.EndpointURL, getenv("AWS_ENDPOINT_URL_S3"), getenv("AWS_ENDPOINT_URL"))
	c.Region = firstNonEmpty(getenv("AWS_REGION"), getenv("AWS_DEFAULT_REGION"))
	c.Profile = firstNonEmpty(opts.AWSProfile, getenv("AWS_PROFILE"))
	c.AccessKeyID = getenv("AWS_ACCESS_KEY_ID")
	c.SecretAccessKey = storage.Secret(getenv("AWS_SECRET_ACCESS_KEY"))
	c.SessionToken = storage.Secret(getenv("AWS_SESSION_TOKEN"))
	c.ReadTimeout = opts.ReadTimeout
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		return fmt.Errorf("S3 credentials incomplete: set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither to use the default chain (IAM role, web identity, profile)")
	}
	switch opts.Encryption {
	case "", "AES256", "aws:kms":
		c.ServerSideEncryption = opts.Encryption
	default:
		return fmt.Errorf("unknown --encryption %q: use AES256 or aws:kms", opts.Encryption)
	}
	if opts.SSEKMSKeyID != "" && opts.Encryption != "aws:kms" {
		return fmt.Errorf("--sse-kms-key-id needs --encryption aws:kms")
	}
	c.SSEKMSKeyID = opts.SSEKMSKeyID
	var err error
	if c.RequestChecksumCalculation, err = checksumMode("AWS_REQUEST_CHECKSUM_CALCULATION", getenv); err != nil {
		return err
	}
	if c.ResponseChecksumValidation, err = checksumMode("AWS_RESPONSE_CHECKSUM_VALIDATION", getenv); err != nil {
		return err
	}
	if ca := getenv("AWS_CA_BUNDLE"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return fmt.Errorf("read AWS_CA_BUNDLE: %w", err)
		}
		c.CABundle = pem
	}
	return nil
}

func checksumMode(name string, getenv Getenv) (string, error) {
	v := strings.ToLower(strings.TrimSpace(getenv(name)))
	switch v {
	case "", "when_supported", "when_required":
		return v, nil
	}
	return "", fmt.Errorf("%s=%q is not valid: use when_supported or when_required", name, v)
}

func azureFromEnv(st *Storage, loc Location, opts Options, getenv Getenv) error {
	c := &st.Azure
	c.Container = loc.Bucket
	c.Account = firstNonEmpty(loc.AzureAccount, getenv("AZURE_STORAGE_ACCOUNT"))
	c.AccountURL = loc.AzureAccountURL
	c.Credential = opts.AzureCredential
	c.ClientID = getenv("AZURE_CLIENT_ID")
	c.ReadTimeout = opts.ReadTimeout
	c.EncryptionScope = opts.EncryptionScope
	// barman-cloud's precedence: explicit credential, connection string, SAS token, key.
	switch {
	case c.Credential != azure.CredentialNone:
	case getenv("AZURE_STORAGE_CONNECTION_STRING") != "":
		c.ConnectionString = storage.Secret(getenv("AZURE_STORAGE_CONNECTION_STRING"))
	case getenv("AZURE_STORAGE_SAS_TOKEN") != "":
		c.SASToken = storage.Secret(getenv("AZURE_STORAGE_SAS_TOKEN"))
	case getenv("AZURE_STORAGE_KEY") != "":
		c.Key = storage.Secret(getenv("AZURE_STORAGE_KEY"))
	default:
		c.Credential = azure.CredentialDefault
	}
	if loc.AzureEmulated && c.ConnectionString == "" && c.Key == "" && c.SASToken == "" {
		return fmt.Errorf("destination %q is an emulator URL: set AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN", st.Destination)
	}
	if ca := getenv("REQUESTS_CA_BUNDLE"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return fmt.Errorf("read REQUESTS_CA_BUNDLE: %w", err)
		}
		c.CABundle = pem
	}
	return nil
}

func gcsFromEnv(st *Storage, loc Location, opts Options, getenv Getenv) error {
	c := &st.GCS
	c.Bucket = loc.Bucket
	c.EmulatorHost = getenv("STORAGE_EMULATOR_HOST")
	c.KMSKeyName = opts.KMSKeyName
	if p := getenv("GOOGLE_APPLICATION_CREDENTIALS"); p != "" && c.EmulatorHost == "" {
		data, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("read GOOGLE_APPLICATION_CREDENTIALS: %w", err)
		}
		c.CredentialsJSON = storage.Secret(data)
	}
	return nil
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}
