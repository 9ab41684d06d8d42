package v1

// The types below mirror the barman-cloud configuration embedded in the
// upstream ObjectStore (its BarmanObjectStoreConfiguration), field for field
// and tag for tag, so that the generated schema accepts exactly what the
// upstream CRD accepts.

// SecretKeySelector selects one key of a Secret in the ObjectStore's namespace.
type SecretKeySelector struct {
	// The name of the referent.
	LocalObjectReference `json:",inline"`

	// The key to select
	Key string `json:"key"`
}

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	// Name of the referent.
	Name string `json:"name"`
}

// CompressionType is a compression algorithm for WAL files or base backups.
type CompressionType string

// Compression algorithms. The empty value means no compression.
const (
	CompressionTypeNone   CompressionType = ""
	CompressionTypeGzip   CompressionType = "gzip"
	CompressionTypeBzip2  CompressionType = "bzip2"
	CompressionTypeLz4    CompressionType = "lz4"
	CompressionTypeSnappy CompressionType = "snappy"
	CompressionTypeXz     CompressionType = "xz"
	CompressionTypeZstd   CompressionType = "zstd"
)

// EncryptionType is the server-side encryption requested from the store.
type EncryptionType string

// Encryption types. The empty value leaves the bucket policy in charge.
const (
	EncryptionTypeNone   EncryptionType = ""
	EncryptionTypeAES256 EncryptionType = "AES256"
	EncryptionTypeKMS    EncryptionType = "aws:kms"
)

// BarmanObjectStoreConfiguration is where and how backups and WAL files are
// stored.
type BarmanObjectStoreConfiguration struct {
	// The potential credentials for each cloud provider
	BarmanCredentials `json:",inline"`

	// Endpoint to be used to upload data to the cloud,
	// overriding the automatic endpoint discovery
	// +optional
	EndpointURL string `json:"endpointURL,omitempty"`

	// EndpointCA store the CA bundle of the barman endpoint.
	// Useful when using self-signed certificates to avoid
	// errors with certificate issuer and barman-cloud-wal-archive
	// +optional
	EndpointCA *SecretKeySelector `json:"endpointCA,omitempty"`

	// The path where to store the backup (i.e. s3://bucket/path/to/folder)
	// this path, with different destination folders, will be used for WALs
	// and for data
	// +kubebuilder:validation:MinLength=1
	DestinationPath string `json:"destinationPath"`

	// The server name on S3, the cluster name is used if this
	// parameter is omitted
	// +optional
	ServerName string `json:"serverName,omitempty"`

	// The configuration for the backup of the WAL stream.
	// When not defined, WAL files will be stored uncompressed and may be
	// unencrypted in the object store, according to the bucket default policy.
	// +optional
	Wal *WalBackupConfiguration `json:"wal,omitempty"`

	// The configuration to be used to backup the data files
	// When not defined, base backups files will be stored uncompressed and may
	// be unencrypted in the object store, according to the bucket default
	// policy.
	// +optional
	Data *DataBackupConfiguration `json:"data,omitempty"`

	// Tags is a list of key value pairs that will be passed to the
	// Barman --tags option.
	// +optional
	Tags map[string]string `json:"tags,omitempty"`

	// HistoryTags is a list of key value pairs that will be passed to the
	// Barman --history-tags option.
	// +optional
	HistoryTags map[string]string `json:"historyTags,omitempty"`
}

// BarmanCredentials holds the credentials of one cloud provider.
type BarmanCredentials struct {
	// The credentials to use to upload data to Google Cloud Storage
	// +optional
	Google *GoogleCredentials `json:"googleCredentials,omitempty"`

	// The credentials to use to upload data to S3
	// +optional
	AWS *S3Credentials `json:"s3Credentials,omitempty"`

	// The credentials to use to upload data to Azure Blob Storage
	// +optional
	Azure *AzureCredentials `json:"azureCredentials,omitempty"`
}

// S3Credentials is the way to authenticate to S3 or an S3-compatible store.
type S3Credentials struct {
	// The reference to the access key id
	// +optional
	AccessKeyIDReference *SecretKeySelector `json:"accessKeyId,omitempty"`

	// The reference to the secret access key
	// +optional
	SecretAccessKeyReference *SecretKeySelector `json:"secretAccessKey,omitempty"`

	// The reference to the secret containing the region name
	// +optional
	RegionReference *SecretKeySelector `json:"region,omitempty"`

	// The references to the session key
	// +optional
	SessionToken *SecretKeySelector `json:"sessionToken,omitempty"`

	// Use the role based authentication without providing explicitly the keys.
	// +optional
	InheritFromIAMRole bool `json:"inheritFromIAMRole,omitempty"`
}

// AzureCredentials is the way to authenticate to Azure Blob Storage.
type AzureCredentials struct {
	// The connection string to be used
	// +optional
	ConnectionString *SecretKeySelector `json:"connectionString,omitempty"`

	// The storage account where to upload data
	// +optional
	StorageAccount *SecretKeySelector `json:"storageAccount,omitempty"`

	// The storage account key to be used in conjunction
	// with the storage account name
	// +optional
	StorageKey *SecretKeySelector `json:"storageKey,omitempty"`

	// A shared-access-signature to be used in conjunction with
	// the storage account name
	// +optional
	StorageSasToken *SecretKeySelector `json:"storageSasToken,omitempty"`

	// Use the Azure AD based authentication without providing explicitly the keys.
	// +optional
	InheritFromAzureAD bool `json:"inheritFromAzureAD,omitempty"`

	// Use the default Azure authentication flow, which includes DefaultAzureCredential.
	// This allows authentication using environment variables and managed identities.
	// +optional
	UseDefaultAzureCredentials bool `json:"useDefaultAzureCredentials,omitempty"`
}

// GoogleCredentials is the way to authenticate to Google Cloud Storage.
type GoogleCredentials struct {
	// The secret containing the Google Cloud Storage JSON file with the credentials
	// +optional
	ApplicationCredentials *SecretKeySelector `json:"applicationCredentials,omitempty"`

	// If set to true, will presume that it's running inside a GKE environment,
	// default to false.
	// +optional
	GKEEnvironment bool `json:"gkeEnvironment,omitempty"`
}

// WalBackupConfiguration is the configuration of the backup of the WAL stream.
type WalBackupConfiguration struct {
	// Compress a WAL file before sending it to the object store. Available
	// options are empty string (no compression, default), `gzip`, `bzip2`,
	// `lz4`, `snappy`, `xz`, and `zstd`.
	// +kubebuilder:validation:Enum=bzip2;gzip;lz4;snappy;xz;zstd
	// +optional
	Compression CompressionType `json:"compression,omitempty"`

	// Whenever to force the encryption of files (if the bucket is
	// not already configured for that).
	// Allowed options are empty string (use the bucket policy, default),
	// `AES256` and `aws:kms`
	// +kubebuilder:validation:Enum=AES256;"aws:kms"
	// +optional
	Encryption EncryptionType `json:"encryption,omitempty"`

	// Number of WAL files to be either archived in parallel (when the
	// PostgreSQL instance is archiving to a backup object store) or
	// restored in parallel (when a PostgreSQL standby is fetching WAL
	// files from a recovery object store). If not specified, WAL files
	// will be processed one at a time. It accepts a positive integer as a
	// value - with 1 being the minimum accepted value.
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxParallel int `json:"maxParallel,omitempty"`

	// Additional arguments that can be appended to the 'barman-cloud-wal-archive'
	// command-line invocation. bcloud accepts the options it implements and
	// ignores the others with a warning.
	// +optional
	ArchiveAdditionalCommandArgs []string `json:"archiveAdditionalCommandArgs,omitempty"`

	// Additional arguments that can be appended to the 'barman-cloud-wal-restore'
	// command-line invocation. bcloud accepts the options it implements and
	// ignores the others with a warning.
	// +optional
	RestoreAdditionalCommandArgs []string `json:"restoreAdditionalCommandArgs,omitempty"`
}

// DataBackupConfiguration is the configuration of the backup of the data
// directory.
type DataBackupConfiguration struct {
	// Compress a backup file (a tar file per tablespace) while streaming it
	// to the object store. Available options are empty string (no
	// compression, default), `gzip`, `bzip2`, `lz4` and `snappy`.
	// +kubebuilder:validation:Enum=bzip2;gzip;lz4;snappy
	// +optional
	Compression CompressionType `json:"compression,omitempty"`

	// Whenever to force the encryption of files (if the bucket is
	// not already configured for that).
	// Allowed options are empty string (use the bucket policy, default),
	// `AES256` and `aws:kms`
	// +kubebuilder:validation:Enum=AES256;"aws:kms"
	// +optional
	Encryption EncryptionType `json:"encryption,omitempty"`

	// The number of parallel jobs to be used to upload the backup, defaults
	// to 2
	// +kubebuilder:validation:Minimum=1
	// +optional
	Jobs *int32 `json:"jobs,omitempty"`

	// Control whether the I/O workload for the backup initial checkpoint will
	// be limited, according to the `checkpoint_completion_target` setting on
	// the PostgreSQL server. If set to true, an immediate checkpoint will be
	// used, meaning PostgreSQL will complete the checkpoint as soon as
	// possible. `false` by default.
	// +optional
	ImmediateCheckpoint bool `json:"immediateCheckpoint,omitempty"`

	// AdditionalCommandArgs represents additional arguments that can be appended
	// to the 'barman-cloud-backup' command-line invocation.
	// +optional
	AdditionalCommandArgs []string `json:"additionalCommandArgs,omitempty"`

	// RestoreAdditionalCommandArgs represents additional arguments that can be
	// appended to the 'barman-cloud-restore' command-line invocation.
	// +optional
	RestoreAdditionalCommandArgs []string `json:"restoreAdditionalCommandArgs,omitempty"`
}
