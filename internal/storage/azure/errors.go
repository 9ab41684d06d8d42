package azure

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/bcloud-dev/bcloud/internal/storage"
)

// ErrContainerNotExist is matched (errors.Is) by the error of any operation
// on a container that does not exist.
var ErrContainerNotExist = errors.New("azure container does not exist")

// opError is a one-line error whose text this package builds, so that no
// request URL (which may carry a SAS signature) or response body reaches a
// message, while errors.Is and errors.As still reach the SDK's error and
// the storage sentinels. It stands in for fmt.Errorf("...: %w") here only
// because the SDK's own texts are multi-line and may hold secrets.
type opError struct {
	msg  string
	errs []error
}

func (e *opError) Error() string   { return e.msg }
func (e *opError) Unwrap() []error { return e.errs }

// sigPattern matches credential-bearing parameters of URLs and connection
// strings, in case one appears in a transport error's text.
var sigPattern = regexp.MustCompile(`(?i)(sig|accountkey|sharedaccesssignature)=[^&;\s"']+`)

// redact removes the configured secrets and any signature from s.
func (b *Bucket) redact(s string) string {
	for _, v := range b.secrets {
		if len(v) >= 8 {
			s = strings.ReplaceAll(s, v, "**redacted**")
		}
	}
	return sigPattern.ReplaceAllString(s, "$1=**redacted**")
}

// what names the target of an operation in a message.
func (b *Bucket) what(op, key string) string {
	if key == "" {
		return fmt.Sprintf("%s azure container %s", op, b.container)
	}
	return fmt.Sprintf("%s %s/%s", op, b.container, key)
}

// fail turns an SDK error into a one-line error naming the operation,
// matching storage.ErrNotExist for a missing blob.
func (b *Bucket) fail(op, key string, err error) error {
	what := b.what(op, key)
	// The SDK returns the caller's context error bare; a transport timeout
	// comes inside a *url.Error (and also matches DeadlineExceeded).
	var urlErr *url.Error
	if errors.As(err, &urlErr) && urlErr.Timeout() {
		return &opError{
			msg:  fmt.Sprintf("%s: the endpoint did not answer within %s: check the destination URL and the network", what, b.readTimeout),
			errs: []error{err},
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		reason := "context canceled"
		if errors.Is(err, context.DeadlineExceeded) {
			reason = "deadline exceeded"
		}
		return &opError{msg: what + ": " + reason, errs: []error{err}}
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return b.responseError(what, re, err)
	}
	if isCertError(err) {
		return &opError{
			msg:  fmt.Sprintf("%s: TLS certificate of the endpoint is not trusted (%s): give the CA that signed it in REQUESTS_CA_BUNDLE (PEM)", what, certReason(err)),
			errs: []error{storage.ErrPermanent, err},
		}
	}
	var authErr *azidentity.AuthenticationFailedError
	if errors.As(err, &authErr) || (b.tokenAuth && strings.Contains(err.Error(), "Credential")) {
		return &opError{
			msg:  fmt.Sprintf("%s: get Azure AD token: %s: check %s", what, firstLine(b.redact(err.Error())), b.authHint),
			errs: []error{storage.ErrPermanent, err},
		}
	}
	var dnsErr *net.DNSError
	var netErr *net.OpError
	switch {
	case errors.As(err, &dnsErr):
		return &opError{
			msg:  fmt.Sprintf("%s: cannot resolve endpoint host: %s: check the destination URL", what, dnsErr.Error()),
			errs: []error{err},
		}
	case errors.As(err, &netErr):
		return &opError{
			msg:  fmt.Sprintf("%s: cannot reach the endpoint: %s: check the destination URL and the network", what, netErr.Error()),
			errs: []error{err},
		}
	}
	return &opError{msg: what + ": " + firstLine(b.redact(err.Error())), errs: []error{err}}
}

func (b *Bucket) responseError(what string, re *azcore.ResponseError, err error) error {
	code := bloberror.Code(re.ErrorCode)
	status := re.StatusCode
	switch {
	case code == bloberror.ContainerNotFound:
		return &opError{
			msg: fmt.Sprintf("%s: container %q does not exist in storage account %q: create it (az storage container create --name %s) or correct the destination URL",
				what, b.container, b.account, b.container),
			errs: []error{ErrContainerNotExist, storage.ErrNoBucket, err},
		}
	case status == http.StatusNotFound:
		return &opError{msg: what + ": " + storage.ErrNotExist.Error(), errs: []error{storage.ErrNotExist, err}}
	case status == http.StatusForbidden || status == http.StatusUnauthorized:
		return &opError{
			msg:  fmt.Sprintf("%s: access denied (%d %s): check %s", what, status, orStatus(code, status), b.authHint),
			errs: []error{storage.ErrPermanent, err},
		}
	}
	return &opError{msg: fmt.Sprintf("%s: azure answered %d %s", what, status, orStatus(code, status)), errs: []error{err}}
}

// exists wraps storage.ErrExists for a conditional write that lost.
func (b *Bucket) exists(key string, err error) error {
	errs := []error{storage.ErrExists}
	if err != nil {
		errs = append(errs, err)
	}
	return &opError{msg: b.what("put", key) + ": " + storage.ErrExists.Error(), errs: errs}
}

// isExists reports whether err is Azure refusing an If-None-Match: * write
// because the blob is there.
func isExists(err error) bool {
	return bloberror.HasCode(err, bloberror.BlobAlreadyExists, bloberror.ConditionNotMet)
}

func orStatus(code bloberror.Code, status int) string {
	if code != "" {
		return string(code)
	}
	return http.StatusText(status)
}

func isCertError(err error) bool {
	var (
		unknown  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
		verify   *tls.CertificateVerificationError
	)
	return errors.As(err, &unknown) || errors.As(err, &invalid) || errors.As(err, &hostname) || errors.As(err, &verify)
}

func certReason(err error) string {
	var verify *tls.CertificateVerificationError
	if errors.As(err, &verify) && verify.Err != nil {
		return verify.Err.Error()
	}
	var unknown x509.UnknownAuthorityError
	if errors.As(err, &unknown) {
		return unknown.Error()
	}
	return "verification failed"
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	return s
}
