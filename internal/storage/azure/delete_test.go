package azure

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/testenv"
)

func TestBatchDelete(t *testing.T) {
	srv := testenv.Azurite(t)
	c := srv.NewContainer(t)
	cfgs := map[string]Config{
		"key":               {AccountURL: srv.Endpoint, Account: srv.Account, Container: c, Key: storage.Secret(srv.Key)},
		"connection string": {Container: c, ConnectionString: storage.Secret(srv.ConnectionString)},
		"sas":               {AccountURL: srv.Endpoint, Account: srv.Account, Container: c, SASToken: storage.Secret(srv.ContainerSAS(t, c, "racwdl"))},
	}
	for name, cfg := range cfgs {
		t.Run(name, func(t *testing.T) {
			sb, err := Open(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			b := sb.(*Bucket)
			// More than one batch of 256.
			keys := make([]string, 270)
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Go(func() {
					for i := w; i < len(keys); i += 8 {
						keys[i] = fmt.Sprintf("batch/%s/%04d", strings.ReplaceAll(name, " ", "-"), i)
						if err := b.Put(t.Context(), keys[i], strings.NewReader("x"), 1, storage.PutOptions{}); err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			for _, k := range []string{"batch/sp ace/ü & +=?#;%20", "batch/quote'\"dq"} {
				if err := b.Put(t.Context(), k, strings.NewReader("x"), 1, storage.PutOptions{}); err != nil {
					t.Fatal(err)
				}
				keys = append(keys, k)
			}
			keys = append(keys, "batch/missing")
			if err := b.Delete(t.Context(), keys...); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if !b.batch.Load() || b.Properties().DeleteBatch != batchMax {
				t.Errorf("Azurite accepts Blob Batch, yet the driver fell back to per-key deletes")
			}
			var left []string
			_ = b.List(t.Context(), "batch/", func(o storage.ObjectInfo) error { left = append(left, o.Key); return nil })
			if len(left) != 0 {
				t.Fatalf("%d objects left after Delete, first %s", len(left), left[0])
			}
		})
	}
}

func TestDeleteFallbackAndDenied(t *testing.T) {
	srv := testenv.Azurite(t)
	c := srv.NewContainer(t)
	sb, err := Open(t.Context(), Config{AccountURL: srv.Endpoint, Account: srv.Account, Container: c, Key: storage.Secret(srv.Key)})
	if err != nil {
		t.Fatal(err)
	}
	b := sb.(*Bucket)
	b.batch.Store(false) // as after a service refused a batch
	keys := []string{"a", "b/c", "d e"}
	for _, k := range keys {
		if err := b.Put(t.Context(), k, strings.NewReader("x"), 1, storage.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if b.Properties().DeleteBatch != 1 {
		t.Errorf("DeleteBatch = %d without batches, want 1", b.Properties().DeleteBatch)
	}
	if err := b.Delete(t.Context(), append(keys, "missing")...); err != nil {
		t.Fatalf("per-key Delete: %v", err)
	}
	for _, k := range keys {
		if _, err := b.Stat(t.Context(), k); err == nil {
			t.Errorf("%s survived Delete", k)
		}
	}

	// A read-only token: the refusal is reported, without the token.
	if err := b.Put(t.Context(), "kept", strings.NewReader("x"), 1, storage.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	token := srv.ContainerSAS(t, c, "rl")
	ro, err := Open(t.Context(), Config{AccountURL: srv.Endpoint, Account: srv.Account, Container: c, SASToken: storage.Secret(token)})
	if err != nil {
		t.Fatal(err)
	}
	err = ro.Delete(t.Context(), "kept")
	if err == nil || !strings.Contains(err.Error(), "access denied") || strings.Contains(err.Error(), token) {
		t.Fatalf("Delete with a read-only token = %v, want access denied without the token", err)
	}
	if _, err := b.Stat(t.Context(), "kept"); err != nil {
		t.Fatalf("object deleted by a read-only token: %v", err)
	}
}

// TestBatchRefused: a service that answers a batch with 400 (as one without
// Blob Batch does) gets per-key deletes instead, from then on.
func TestBatchRefused(t *testing.T) {
	srv := testenv.Azurite(t)
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var batches atomic.Int32
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("comp") == "batch" {
			batches.Add(1)
			w.Header().Set("x-ms-error-code", "InvalidQueryParameterValue")
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	sb, err := Open(t.Context(), Config{
		AccountURL: front.URL + "/" + srv.Account, Account: srv.Account, Container: srv.NewContainer(t),
		Key: storage.Secret(srv.Key),
	})
	if err != nil {
		t.Fatal(err)
	}
	b := sb.(*Bucket)
	for round := range 2 {
		keys := []string{fmt.Sprintf("r%d/a", round), fmt.Sprintf("r%d/b", round)}
		for _, k := range keys {
			if err := b.Put(t.Context(), k, strings.NewReader("x"), 1, storage.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Delete(t.Context(), keys...); err != nil {
			t.Fatalf("Delete after a refused batch: %v", err)
		}
		for _, k := range keys {
			if _, err := b.Stat(t.Context(), k); err == nil {
				t.Errorf("%s survived Delete", k)
			}
		}
	}
	if n := batches.Load(); n != 1 {
		t.Errorf("%d batch requests, want 1 (then per-key deletes)", n)
	}
	if b.Properties().DeleteBatch != 1 {
		t.Errorf("DeleteBatch = %d after a refused batch, want 1", b.Properties().DeleteBatch)
	}
}
