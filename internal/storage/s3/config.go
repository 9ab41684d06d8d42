package s3

import (
	"time"

	"github.com/bcloud-dev/bcloud/internal/storage"
)

// Config configures the S3 driver. It is filled by internal/config from
// flags, environment or an ObjectStore; the driver reads no environment.
type Config struct {
	Bucket string
	// Endpoint overrides the AWS endpoint for S3-compatible stores
	// (--endpoint-url, endpointURL). Path-style addressing is used with it.
	Endpoint string
	Region   string
	// Static credentials. When AccessKeyID is empty the SDK's default
	// chain is used (inheritFromIAMRole: IRSA web identity, instance role,
	// shared config with Profile).
	AccessKeyID     string
	SecretAccessKey storage.Secret
	SessionToken    storage.Secret
	Profile         string
	// CABundle is PEM data of extra trusted CAs (endpointCA / AWS_CA_BUNDLE).
	CABundle []byte
	// ServerSideEncryption is "", "AES256" or "aws:kms"; SSEKMSKeyID goes with aws:kms.
	ServerSideEncryption string
	SSEKMSKeyID          string
	// RequestChecksumCalculation and ResponseChecksumValidation are
	// "when_supported" or "when_required" (the AWS_* variables of the same names).
	RequestChecksumCalculation string
	ResponseChecksumValidation string
	ReadTimeout                time.Duration
	// PartSize and Concurrency tune multipart uploads (0 = driver default).
	PartSize    int64
	Concurrency int
	// MaxAttempts bounds the tries of one request, the first included
	// (0 = driver default 5). Retries back off exponentially with jitter.
	MaxAttempts int
}
