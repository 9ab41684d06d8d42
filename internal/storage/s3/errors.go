package s3

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/bcloud-dev/bcloud/internal/storage"
)

// opError carries a short, actionable message while errors.Is and errors.As
// still reach the sentinel and the SDK's own error.
type opError struct {
	msg  string
	errs []error
}

func (e *opError) Error() string   { return e.msg }
func (e *opError) Unwrap() []error { return e.errs }

// credentialsError marks a failure of the credential provider itself, so
// that it can be told apart from a request S3 rejected.
type credentialsError struct{ err error }

func (e *credentialsError) Error() string { return e.err.Error() }
func (e *credentialsError) Unwrap() error { return e.err }

// checkedProvider wraps the SDK's credential chain to tag its errors.
type checkedProvider struct{ p aws.CredentialsProvider }

func (c checkedProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	creds, err := c.p.Retrieve(ctx)
	if err != nil {
		return creds, &credentialsError{err: err}
	}
	return creds, nil
}

const keysHint = "check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN if set)"

// apiCode returns the S3 error code and HTTP status of err, if any.
func apiCode(err error) (string, int) {
	code, status := "", 0
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		status = re.Response.StatusCode
	}
	return code, status
}

// isNotFound reports whether err means the key has no object.
func isNotFound(err error) bool {
	code, status := apiCode(err)
	switch code {
	case "NoSuchKey", "NotFound":
		return true
	case "NoSuchBucket", "NoSuchUpload":
		return false
	}
	return status == http.StatusNotFound
}

// isPreconditionFailed reports whether a conditional write lost to an
// existing object (412) or to a concurrent conditional write (409).
func isPreconditionFailed(err error) bool {
	code, status := apiCode(err)
	switch code {
	case "PreconditionFailed", "ConditionalRequestConflict":
		return true
	}
	return status == http.StatusPreconditionFailed
}

// wrap turns an SDK error into one naming the operation and key and, for
// the failures users hit most, the fix. Secrets never appear: the SDK's
// errors carry no credentials and neither does anything added here.
func (b *Bucket) wrap(ctx context.Context, op, key string, err error) error {
	if err == nil {
		return nil
	}
	what := op
	if key != "" {
		what = op + " " + key
	}
	fail := func(format string, args ...any) error {
		return &opError{msg: what + ": " + fmt.Sprintf(format, args...), errs: []error{err}}
	}
	// permanent marks failures that no retry cures, so the retry
	// decorator gives up at once; kind adds the matching sentinel.
	permanent := func(kind error, format string, args ...any) error {
		return &opError{msg: what + ": " + fmt.Sprintf(format, args...), errs: []error{kind, err}}
	}
	code, status := apiCode(err)
	var credErr *credentialsError
	var certErr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalidCert x509.CertificateInvalidError
	var dnsErr *net.DNSError
	var netErr *net.OpError
	switch {
	case errors.As(err, &credErr):
		// Checked first: an STS refusal is an API error too.
		return permanent(storage.ErrPermanent, "no usable AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or give the pod an IAM role (inheritFromIAMRole), or set AWS_PROFILE: %v", credErr.err)
	case code == "NoSuchBucket":
		return permanent(storage.ErrNoBucket, "bucket %q does not exist at %s: create it or correct the destination URL (%s)", b.name, b.where(), code)
	case code == "InvalidAccessKeyId" || code == "SignatureDoesNotMatch" || code == "InvalidToken" ||
		code == "ExpiredToken" || code == "TokenRefreshRequired" || code == "InvalidSecurity":
		return permanent(storage.ErrPermanent, "%s rejected the credentials (%s): %s", b.where(), code, keysHint)
	case code == "AccessDenied" || code == "AllAccessDisabled" || status == http.StatusForbidden:
		return permanent(storage.ErrPermanent, "access denied to bucket %q (%s): %s, and that the key or IAM role may use this bucket", b.name, orStatus(code, status), keysHint)
	case code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed" || status == http.StatusMovedPermanently:
		return permanent(storage.ErrPermanent, "bucket %q is not served by region %q at %s (%s)%s: set AWS_REGION/AWS_DEFAULT_REGION (or the ObjectStore region) to the bucket's region",
			b.name, b.region, b.where(), orStatus(code, status), bucketRegion(err))
	case errors.As(err, &certErr) || errors.As(err, &unknownCA) || errors.As(err, &hostErr) || errors.As(err, &invalidCert):
		return permanent(storage.ErrPermanent, "TLS certificate of %s is not trusted: if it is signed by a private CA, set endpointCA (plugin) or AWS_CA_BUNDLE to that CA's PEM file: %v", b.where(), rootCause(err))
	case errors.As(err, &dnsErr) || (errors.As(err, &netErr) && netErr.Op == "dial"):
		return fail("cannot reach S3 endpoint %s: %v", b.where(), rootCause(err))
	}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return &opError{msg: fmt.Sprintf("%s: %v: %v", what, ctxErr, err), errs: []error{ctxErr, err}}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// where names the endpoint in messages: the URL, or AWS S3 and its region.
func (b *Bucket) where() string {
	if b.endpoint != "" {
		return b.endpoint
	}
	return "AWS S3 (region " + b.region + ")"
}

func orStatus(code string, status int) string {
	if code != "" {
		return code
	}
	return fmt.Sprintf("HTTP %d", status)
}

// bucketRegion returns ", the bucket is in REGION" when S3 said so.
func bucketRegion(err error) string {
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.Response != nil {
		if r := re.Response.Header.Get("X-Amz-Bucket-Region"); r != "" {
			return ", the bucket is in " + r
		}
	}
	return ""
}

// rootCause returns the innermost network or TLS error, which reads better
// than the SDK's layered text.
func rootCause(err error) error {
	var netErr *net.OpError
	if errors.As(err, &netErr) {
		return netErr
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr
	}
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return certErr.Err
	}
	return err
}

// notExist builds the error for a missing key.
func notExist(what string, err error) error {
	return &opError{msg: what + ": " + storage.ErrNotExist.Error(), errs: []error{storage.ErrNotExist, err}}
}

// exists builds the error for a conditional put that found the key taken.
func exists(what string, err error) error {
	errs := []error{storage.ErrExists}
	if err != nil {
		errs = append(errs, err)
	}
	return &opError{msg: what + ": " + storage.ErrExists.Error(), errs: errs}
}
