package testenv

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// echoServer answers every connection by echoing what it reads.
func echoServer(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); _ = c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(addr string, payload []byte) ([]byte, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	go func() { _, _ = c.Write(payload); _ = c.(*net.TCPConn).CloseWrite() }()
	return io.ReadAll(c)
}

func TestFaultProxy(t *testing.T) {
	p := NewFaultProxy(t, echoServer(t))
	payload := bytes.Repeat([]byte("wal"), 100_000)
	got, err := roundTrip(p.Addr, payload)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("clean proxy: %d bytes, %v", len(got), err)
	}

	p.ResetAfter(50_000)
	got, err = roundTrip(p.Addr, payload)
	if err == nil && len(got) == len(payload) {
		t.Fatal("reset fault let the whole payload through")
	}
	if p.Resets.Load() == 0 {
		t.Fatal("no reset counted")
	}
	p.Heal()

	p.SetDown(true)
	if got, err := roundTrip(p.Addr, payload); err == nil && len(got) > 0 {
		t.Fatal("down proxy forwarded data")
	}
	p.SetDown(false)

	p.SetBlackhole(true)
	start := time.Now()
	got, err = roundTrip(p.Addr, []byte("ping"))
	if err == nil || len(got) != 0 || time.Since(start) < 2*time.Second {
		t.Fatalf("black hole answered: %q, %v after %s", got, err, time.Since(start))
	}
	p.SetBlackhole(false)

	p.SetLatency(200 * time.Millisecond)
	start = time.Now()
	if _, err := roundTrip(p.Addr, []byte("ping")); err != nil || time.Since(start) < 200*time.Millisecond {
		t.Fatalf("latency not applied: %v after %s", err, time.Since(start))
	}
	p.Heal()
	got, err = roundTrip(p.Addr, payload)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("healed proxy: %d bytes, %v", len(got), err)
	}
}

func TestHTTPFaults(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer backend.Close()
	h := NewHTTPFaults(t, backend.URL)
	h.Fail(2, http.StatusServiceUnavailable)
	var codes []int
	for range 3 {
		resp, err := http.Get(h.URL + "/bucket/key")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		codes = append(codes, resp.StatusCode)
		if resp.StatusCode == 503 && !strings.Contains(string(body), "SlowDown") {
			t.Fatalf("503 body %q", body)
		}
	}
	if codes[0] != 503 || codes[1] != 503 || codes[2] != 200 || h.Injected.Load() != 2 {
		t.Fatalf("codes %v, injected %d", codes, h.Injected.Load())
	}
}
