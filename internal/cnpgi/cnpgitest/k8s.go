package cnpgitest

import (
	"context"
	"net"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	apiv1 "github.com/bcloud-dev/bcloud/api/v1"
	"github.com/bcloud-dev/bcloud/internal/cnpgi"
)

// Scheme returns a scheme with core, RBAC and ObjectStore types.
func Scheme(t testing.TB) *runtime.Scheme {
	t.Helper()
	s, err := newScheme()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, rbacv1.AddToScheme, apiv1.AddToScheme} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// FakeClient returns a controller-runtime fake client holding objs, with
// the ObjectStore status subresource.
func FakeClient(t testing.TB, objs ...client.Object) client.WithWatch {
	t.Helper()
	return fake.NewClientBuilder().WithScheme(Scheme(t)).WithObjects(objs...).
		WithStatusSubresource(&apiv1.ObjectStore{}).Build()
}

// FakeClientWith is FakeClient with interceptors, to inject API errors.
func FakeClientWith(t testing.TB, funcs interceptor.Funcs, objs ...client.Object) client.WithWatch {
	t.Helper()
	return fake.NewClientBuilder().WithScheme(Scheme(t)).WithObjects(objs...).
		WithStatusSubresource(&apiv1.ObjectStore{}).WithInterceptorFuncs(funcs).Build()
}

// Secret returns a Secret with string data.
func Secret(ns, name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

// Ref is a SecretKeySelector.
func Ref(name, key string) *apiv1.SecretKeySelector {
	return &apiv1.SecretKeySelector{LocalObjectReference: apiv1.LocalObjectReference{Name: name}, Key: key}
}

// S3ObjectStore returns an ObjectStore for an S3-compatible endpoint with
// keys in secret (keys ACCESS_KEY_ID and ACCESS_SECRET_KEY, as in the
// upstream examples).
func S3ObjectStore(ns, name, dest, endpoint, secret string) *apiv1.ObjectStore {
	return &apiv1.ObjectStore{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: apiv1.ObjectStoreSpec{Configuration: apiv1.BarmanObjectStoreConfiguration{
			DestinationPath: dest, EndpointURL: endpoint,
			BarmanCredentials: apiv1.BarmanCredentials{AWS: &apiv1.S3Credentials{
				AccessKeyIDReference:     Ref(secret, "ACCESS_KEY_ID"),
				SecretAccessKeyReference: Ref(secret, "ACCESS_SECRET_KEY"),
			}},
		}},
	}
}

// FileObjectStore returns an ObjectStore on a file:// destination.
func FileObjectStore(ns, name, dir string) *apiv1.ObjectStore {
	return &apiv1.ObjectStore{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: apiv1.ObjectStoreSpec{Configuration: apiv1.BarmanObjectStoreConfiguration{
			DestinationPath: "file://" + dir,
		}},
	}
}

// Serve runs srv until the test ends and returns its address.
func Serve(t testing.TB, srv *cnpgi.Server) net.Addr {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	srv.Ready = func(a net.Addr) { ready <- a }
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx) }()
	select {
	case a := <-ready:
		t.Cleanup(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("plugin server: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Error("plugin server did not stop")
			}
		})
		return a
	case err := <-errc:
		cancel()
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("plugin server did not start")
	}
	return nil
}
