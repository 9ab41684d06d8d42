package testenv

import (
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// FaultProxy is a TCP proxy on loopback that injects network faults
// between a client and a server: latency, a bandwidth cap, connections
// reset after some bytes, refused connections, and a black hole that
// accepts but never answers.
type FaultProxy struct {
	Addr   string
	target string
	ln     net.Listener

	latency   atomic.Int64 // nanoseconds added before each forwarded chunk
	bandwidth atomic.Int64 // bytes per second per direction, 0 = unlimited
	resetEach atomic.Int64 // reset a connection after this many client bytes, 0 = never
	down      atomic.Bool  // refuse new connections
	blackhole atomic.Bool  // hold connections without forwarding

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed chan struct{}
	once   sync.Once
	// Resets counts connections the proxy cut on purpose.
	Resets atomic.Int64
}

// NewFaultProxy starts a proxy to target (host:port), closed at cleanup.
func NewFaultProxy(t testing.TB, target string) *FaultProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &FaultProxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]struct{}{}, closed: make(chan struct{})}
	go p.serve()
	t.Cleanup(p.Close)
	return p
}

// SetLatency adds d before every forwarded chunk, both ways.
func (p *FaultProxy) SetLatency(d time.Duration) { p.latency.Store(int64(d)) }

// SetBandwidth caps each direction of each connection to bps bytes/s (0: no cap).
func (p *FaultProxy) SetBandwidth(bps int64) { p.bandwidth.Store(bps) }

// ResetAfter cuts every connection with a TCP reset once the client has
// sent n bytes through it (0 stops the faults).
func (p *FaultProxy) ResetAfter(n int64) { p.resetEach.Store(n) }

// SetDown refuses (closes at once) new connections and cuts open ones.
func (p *FaultProxy) SetDown(down bool) {
	p.down.Store(down)
	if down {
		p.cutAll()
	}
}

// SetBlackhole makes the store stop answering: connections are accepted
// and held, and nothing is forwarded. Open connections are cut first.
func (p *FaultProxy) SetBlackhole(on bool) {
	p.blackhole.Store(on)
	if on {
		p.cutAll()
	}
}

// Heal removes every fault.
func (p *FaultProxy) Heal() {
	p.SetLatency(0)
	p.SetBandwidth(0)
	p.ResetAfter(0)
	p.SetDown(false)
	p.SetBlackhole(false)
}

// Close stops the proxy and cuts every connection.
func (p *FaultProxy) Close() {
	p.once.Do(func() { close(p.closed) })
	_ = p.ln.Close()
	p.cutAll()
}

func (p *FaultProxy) cutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		reset(c)
	}
}

func (p *FaultProxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // close with RST, not FIN
	}
	_ = c.Close()
}

func (p *FaultProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			reset(c)
			continue
		}
		go p.handle(c)
	}
}

func (p *FaultProxy) handle(client net.Conn) {
	p.track(client, true)
	defer p.track(client, false)
	if p.blackhole.Load() {
		// Hold the connection, drop what comes, answer nothing, until
		// the fault is lifted or the proxy closes.
		go func() { _, _ = io.Copy(io.Discard, client) }()
		for p.blackhole.Load() {
			select {
			case <-p.closed:
				reset(client)
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
		reset(client)
		return
	}
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		reset(client)
		return
	}
	p.track(server, true)
	defer p.track(server, false)
	cut := make(chan bool, 2)
	go func() { cut <- p.pipe(server, client, true) }()
	go func() { cut <- p.pipe(client, server, false) }()
	if <-cut {
		reset(client)
		reset(server)
		<-cut
		return
	}
	if <-cut {
		reset(client)
		reset(server)
		return
	}
	_ = client.Close()
	_ = server.Close()
}

// pipe copies src to dst applying the faults. upstream is client->server.
// It reports whether the connection must be cut (a fault or an error);
// a clean end of stream is passed on as a half-close.
func (p *FaultProxy) pipe(dst, src net.Conn, upstream bool) bool {
	buf := make([]byte, 32<<10)
	var sent int64
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if d := time.Duration(p.latency.Load()); d > 0 {
				time.Sleep(d)
			}
			if bps := p.bandwidth.Load(); bps > 0 {
				time.Sleep(time.Duration(int64(n) * int64(time.Second) / bps))
			}
			if p.blackhole.Load() || p.down.Load() {
				return true
			}
			if limit := p.resetEach.Load(); upstream && limit > 0 && sent+int64(n) > limit {
				p.Resets.Add(1)
				return true
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return true
			}
			sent += int64(n)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return true
			}
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			return false
		}
	}
}

// HTTPFaults is a reverse proxy in front of an HTTP object store that
// answers some requests itself with an error status, as an overloaded
// store does (500, 503 SlowDown).
type HTTPFaults struct {
	URL string
	srv *http.Server
	// failNext requests are answered with status; <0 means every request.
	failNext atomic.Int64
	status   atomic.Int64
	// Injected counts the requests answered with an injected error.
	Injected atomic.Int64
}

// NewHTTPFaults starts a reverse proxy to target (an http:// URL).
func NewHTTPFaults(t testing.TB, target string) *HTTPFaults {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &HTTPFaults{URL: "http://" + ln.Addr().String()}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // upstream faults are the point; keep test output readable
	h.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := h.failNext.Load(); n != 0 {
			if n > 0 {
				h.failNext.Add(-1)
			}
			h.Injected.Add(1)
			_, _ = io.Copy(io.Discard, r.Body)
			code := int(h.status.Load())
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(code)
			_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
			return
		}
		rp.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = h.srv.Serve(ln) }()
	t.Cleanup(func() { _ = h.srv.Close() })
	return h
}

// Fail answers the next n requests with status (n < 0: all, until Fail(0, 0)).
func (h *HTTPFaults) Fail(n int64, status int) {
	h.status.Store(int64(status))
	h.failNext.Store(n)
}
