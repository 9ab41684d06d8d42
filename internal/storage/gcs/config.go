package gcs

import "github.com/bcloud-dev/bcloud/internal/storage"

// Config configures the Google Cloud Storage driver.
type Config struct {
	Bucket string
	// CredentialsJSON is a service-account key. Empty means Application
	// Default Credentials (gkeEnvironment / workload identity).
	CredentialsJSON storage.Secret
	// EmulatorHost is STORAGE_EMULATOR_HOST (host:port or URL); when set
	// no credentials are used.
	EmulatorHost string
	KMSKeyName   string
	// ChunkSize is the largest piece of an object sent in one upload
	// request, and the memory each Put buffers; 0 means 8 MiB. The client
	// library rounds it up to a multiple of 256 KiB.
	ChunkSize int
}
