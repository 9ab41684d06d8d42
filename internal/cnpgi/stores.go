package cnpgi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	apiv1 "github.com/bcloud-dev/bcloud/api/v1"
	"github.com/bcloud-dev/bcloud/internal/config"
	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/storage/all"
)

// DefaultTTL is how long an ObjectStore or Secret read is reused, as
// upstream's sidecar client does: a credential rotation is seen within it.
const DefaultTTL = 10 * time.Second

// Stores turns the ObjectStores a Cluster names into open buckets for
// the sidecars. ObjectStores and their Secrets are read again once the
// TTL passes; buckets are reopened only when what they were built from
// changed (the ObjectStore's generation, a Secret's resourceVersion or
// the mounted CA), so an unchanged configuration reuses its connections.
type Stores struct {
	Client client.Reader
	// TTL bounds the age of a read (default DefaultTTL).
	TTL time.Duration
	// CertDir holds the projected endpoint CAs (default CertificatesDir).
	CertDir string
	// Getenv supplies the settings of instanceSidecarConfiguration.env
	// (default os.Getenv).
	Getenv config.Getenv
	// Open opens a bucket (default all.Open); tests may wrap it.
	Open func(context.Context, config.Storage) (storage.Bucket, error)

	mu    sync.Mutex
	reads map[string]cached
	open  map[types.NamespacedName]*Store
}

type cached struct {
	obj client.Object
	at  time.Time
}

// Store is an ObjectStore resolved and opened. Callers Release it when
// done; a Store replaced by a newer configuration closes its buckets once
// the last user releases it.
type Store struct {
	Object *apiv1.ObjectStore
	Config config.ObjectStore
	// WAL and Data are the buckets for WAL files and base backups; they
	// differ only in server-side encryption settings.
	WAL  storage.Bucket
	Data storage.Bucket

	fingerprint string
	refs        int
	stale       bool
}

// Get resolves the ObjectStore name in namespace and returns it opened.
func (s *Stores) Get(ctx context.Context, namespace, name string) (*Store, error) {
	if name == "" {
		return nil, fmt.Errorf("%w: no ObjectStore named: set the barmanObjectName plugin parameter", ErrConfiguration)
	}
	key := types.NamespacedName{Namespace: namespace, Name: name}
	var obj apiv1.ObjectStore
	if err := s.read(ctx, key, &obj); err != nil {
		return nil, fmt.Errorf("read ObjectStore %s: %w", key, err)
	}
	var versions []string
	getSecret := func(ctx context.Context, ns, name, k string) ([]byte, error) {
		var sec corev1.Secret
		if err := s.read(ctx, types.NamespacedName{Namespace: ns, Name: name}, &sec); err != nil {
			return nil, err
		}
		versions = append(versions, name+"@"+sec.ResourceVersion)
		v, ok := sec.Data[k]
		if !ok {
			return nil, fmt.Errorf("%w: Secret %s/%s has no key %q", ErrConfiguration, ns, name, k)
		}
		return v, nil
	}
	caFile := filepath.Join(s.certDir(), name, CertificateFile)
	cfg, err := config.FromObjectStore(ctx, &obj.Spec.Configuration, namespace, getSecret,
		config.ObjectStoreOptions{Getenv: s.getenv(), CAFile: caFile})
	if err != nil {
		if errors.Is(err, ErrNoPermission) || errors.Is(err, ErrConfiguration) {
			return nil, fmt.Errorf("ObjectStore %s: %w", key, err)
		}
		return nil, fmt.Errorf("ObjectStore %s: %w: %w", key, ErrConfiguration, err)
	}
	fp := fingerprint(&obj, versions, caFile)

	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.open[key]; cur != nil && cur.fingerprint == fp {
		cur.refs++
		cur.Object = &obj
		return cur, nil
	}
	st := &Store{Object: &obj, Config: cfg, fingerprint: fp, refs: 1}
	if st.WAL, err = s.openBucket(ctx, cfg.WAL); err != nil {
		return nil, fmt.Errorf("open ObjectStore %s: %w", key, err)
	}
	// FromObjectStore makes Data differ from WAL only in encryption.
	if cfg.Data.S3.ServerSideEncryption == cfg.WAL.S3.ServerSideEncryption {
		st.Data = st.WAL
	} else if st.Data, err = s.openBucket(ctx, cfg.Data); err != nil {
		_ = st.WAL.Close()
		return nil, fmt.Errorf("open ObjectStore %s: %w", key, err)
	}
	if s.open == nil {
		s.open = map[types.NamespacedName]*Store{}
	}
	if old := s.open[key]; old != nil {
		slog.InfoContext(ctx, "object store configuration changed: reopening", "objectStore", key.String())
		old.stale = true
		if old.refs == 0 {
			old.close()
		}
	}
	s.open[key] = st
	return st, nil
}

// Release returns a Store obtained from Get.
func (s *Stores) Release(st *Store) {
	if st == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st.refs--
	if st.refs == 0 && st.stale {
		st.close()
	}
}

// Close closes every open bucket.
func (s *Stores) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, st := range s.open {
		st.close()
		delete(s.open, k)
	}
}

func (st *Store) close() {
	_ = st.WAL.Close()
	if st.Data != st.WAL {
		_ = st.Data.Close()
	}
}

// read gets an object through the TTL cache. Forbidden becomes
// ErrNoPermission and NotFound ErrConfiguration.
func (s *Stores) read(ctx context.Context, key types.NamespacedName, obj client.Object) error {
	ck := cacheKey(obj, key)
	ttl := s.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	s.mu.Lock()
	c, ok := s.reads[ck]
	s.mu.Unlock()
	if ok && time.Since(c.at) < ttl {
		return copyInto(c.obj, obj)
	}
	if err := s.Client.Get(ctx, key, obj); err != nil {
		switch {
		case apierrors.IsForbidden(err):
			return fmt.Errorf("%w (the operator grants it at its next reconcile; retrying): %w", ErrNoPermission, err)
		case apierrors.IsNotFound(err):
			return fmt.Errorf("%w: %w", ErrConfiguration, err)
		}
		return err
	}
	s.mu.Lock()
	if s.reads == nil {
		s.reads = map[string]cached{}
	}
	s.reads[ck] = cached{obj: obj.DeepCopyObject().(client.Object), at: time.Now()}
	s.mu.Unlock()
	return nil
}

func cacheKey(obj client.Object, key types.NamespacedName) string {
	kind := "secret"
	if _, ok := obj.(*apiv1.ObjectStore); ok {
		kind = "objectstore"
	}
	return kind + "/" + key.String()
}

func copyInto(src, dst client.Object) error {
	switch d := dst.(type) {
	case *apiv1.ObjectStore:
		src.(*apiv1.ObjectStore).DeepCopyInto(d)
	case *corev1.Secret:
		src.(*corev1.Secret).DeepCopyInto(d)
	default:
		return fmt.Errorf("no cache for %T", dst)
	}
	return nil
}

func (s *Stores) certDir() string {
	if s.CertDir == "" {
		return CertificatesDir
	}
	return s.CertDir
}

func (s *Stores) getenv() config.Getenv {
	if s.Getenv == nil {
		return os.Getenv
	}
	return s.Getenv
}

func (s *Stores) openBucket(ctx context.Context, st config.Storage) (storage.Bucket, error) {
	if s.Open != nil {
		return s.Open(ctx, st)
	}
	return all.Open(ctx, st)
}

// fingerprint identifies what a Store was built from without holding
// any secret: versions, not values.
func fingerprint(obj *apiv1.ObjectStore, secretVersions []string, caFile string) string {
	sort.Strings(secretVersions)
	h := sha256.New()
	spec, _ := json.Marshal(obj.Spec) // references only, no secret values
	fmt.Fprintf(h, "%s\n%s\n", obj.UID, spec)
	for _, v := range secretVersions {
		fmt.Fprintln(h, v)
	}
	if data, err := os.ReadFile(caFile); err == nil {
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil))
}
