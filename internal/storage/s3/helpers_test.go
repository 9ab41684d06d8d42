package s3_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// request is what the recording proxy saw of one request.
type request struct {
	Method string
	Query  url.Values
	Header http.Header
}

// proxy forwards requests to an S3 server and records them. A request for
// which intercept returns true is answered by intercept instead.
type proxy struct {
	URL string

	mu   sync.Mutex
	seen []request
}

func newProxy(t *testing.T, target string, intercept func(http.ResponseWriter, *http.Request) bool) *proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			// The signature covers the Host header the client sent.
			pr.Out.Host = pr.In.Host
		},
	}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.seen = append(p.seen, request{Method: r.Method, Query: r.URL.Query(), Header: r.Header.Clone()})
		p.mu.Unlock()
		if intercept != nil && intercept(w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	p.URL = s.URL
	return p
}

// requests returns the recorded requests that match.
func (p *proxy) requests(match func(request) bool) []request {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []request
	for _, r := range p.seen {
		if match(r) {
			out = append(out, r)
		}
	}
	return out
}

// has reports whether r's query has the key (such as "uploadId" or "delete").
func (r request) has(key string) bool {
	_, ok := r.Query[key]
	return ok
}

// checksumHeaders lists the x-amz-checksum-* and x-amz-trailer headers of r.
func (r request) checksumHeaders() []string {
	var out []string
	for k := range r.Header {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "x-amz-checksum-") || lk == "x-amz-trailer" || lk == "x-amz-sdk-checksum-algorithm" {
			out = append(out, lk)
		}
	}
	return out
}

// s3Error writes an S3 XML error response.
func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + code +
		`</Code><Message>` + msg + `</Message><RequestId>test</RequestId></Error>`))
}

// endlessReader yields n pseudo-random bytes without holding them.
type endlessReader struct {
	n, off int64
	state  uint64
}

func (r *endlessReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	m := int(min(int64(len(p)), r.n-r.off))
	for i := range m {
		r.state = r.state*6364136223846793005 + 1442695040888963407
		p[i] = byte(r.state >> 56)
	}
	r.off += int64(m)
	return m, nil
}
