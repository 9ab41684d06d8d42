package s3

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
)

// Transport limits. A stuck connection must never hang a call forever:
// dialing, the TLS handshake, waiting for response headers, every write and
// every read each have a bound.
const (
	dialTimeout         = 10 * time.Second
	tlsHandshakeTimeout = 10 * time.Second
	defaultReadTimeout  = 60 * time.Second
	idleConnTimeout     = 90 * time.Second
)

// newHTTPClient builds the client every SDK request goes through: TLS 1.2+
// with the system roots plus caPEM, bounded waits, and no redirects (the
// SDK's client never follows them; a redirect from S3 means a wrong region).
// It is the SDK's BuildableClient so that the SDK can still add a CA bundle
// named in the shared config. Reads use the SDK's rolling read deadline;
// writes get one here.
func newHTTPClient(caPEM []byte, readTimeout time.Duration, conns *connSet) (*awshttp.BuildableClient, error) {
	// Without a private CA, RootCAs stays nil: Go loads the system roots on
	// the first TLS handshake only, so a plain-HTTP endpoint (and every
	// archive_command call that never reaches TLS) does not pay for it.
	var roots *x509.CertPool
	if len(caPEM) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(caPEM) {
			return nil, errors.New("CA bundle (endpointCA / AWS_CA_BUNDLE) holds no PEM certificate")
		}
		roots = pool
	}
	dialer := &net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	return awshttp.NewBuildableClient().
		WithTransportOptions(func(tr *http.Transport) {
			tr.Proxy = http.ProxyFromEnvironment
			tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := dialer.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return conns.add(&writeDeadlineConn{Conn: c, timeout: readTimeout}), nil
			}
			tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
			tr.TLSHandshakeTimeout = tlsHandshakeTimeout
			tr.ResponseHeaderTimeout = readTimeout
			tr.ExpectContinueTimeout = time.Second
			tr.IdleConnTimeout = idleConnTimeout
			tr.MaxIdleConnsPerHost = 32
			// S3 speaks HTTP/1.1; one TCP connection per request keeps a
			// slow transfer from stalling the others.
			tr.ForceAttemptHTTP2 = false
		}).
		WithReadTimeout(readTimeout), nil
}

// writeDeadlineConn fails a write that makes no progress for timeout, so an
// upload to a peer that stopped reading does not block forever.
type writeDeadlineConn struct {
	net.Conn
	timeout time.Duration
	set     *connSet
}

func (c *writeDeadlineConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *writeDeadlineConn) Close() error {
	c.set.remove(c)
	return c.Conn.Close()
}

// connSet tracks a bucket's open connections so that Close can release
// them: the SDK's client does not expose its connection pool.
type connSet struct {
	mu    sync.Mutex
	conns map[*writeDeadlineConn]struct{}
}

func (s *connSet) add(c *writeDeadlineConn) net.Conn {
	c.set = s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns == nil {
		s.conns = map[*writeDeadlineConn]struct{}{}
	}
	s.conns[c] = struct{}{}
	return c
}

func (s *connSet) remove(c *writeDeadlineConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

// closeAll closes every tracked connection.
func (s *connSet) closeAll() {
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for c := range conns {
		_ = c.Conn.Close()
	}
}
