package cnpgi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"strings"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"

	"github.com/bcloud-dev/bcloud/internal/cnpgi"
	"github.com/bcloud-dev/bcloud/internal/cnpgi/cnpgitest"
	"github.com/bcloud-dev/bcloud/internal/storage"
	"github.com/bcloud-dev/bcloud/internal/wal"
)

func TestStatusCodes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("restore: %w", wal.ErrNotFound), codes.NotFound},
		{fmt.Errorf("open: %w", storage.ErrNoBucket), codes.NotFound},
		{fmt.Errorf("%w: %w", cnpgi.ErrEndOfWAL, wal.ErrNotFound), codes.OutOfRange},
		{fmt.Errorf("x: %w", wal.ErrInvalidName), codes.InvalidArgument},
		{fmt.Errorf("secret: %w", cnpgi.ErrNoPermission), codes.FailedPrecondition},
		{fmt.Errorf("store: %w", cnpgi.ErrConfiguration), codes.FailedPrecondition},
		{fmt.Errorf("check: %w", wal.ErrArchiveNotEmpty), codes.FailedPrecondition},
		{fmt.Errorf("archive: %w", wal.ErrConflict), codes.AlreadyExists},
		{fmt.Errorf("put: %w", storage.Permanent(errors.New("403 access denied"))), codes.Internal},
		{&fs.PathError{Op: "open", Path: "/x", Err: fs.ErrPermission}, codes.Internal},
		{errors.New("read tcp 127.0.0.1: connection reset by peer"), codes.Unavailable},
		{context.DeadlineExceeded, codes.DeadlineExceeded},
		{status.Error(codes.Aborted, "kept"), codes.Aborted},
	} {
		got := cnpgi.Status(tc.err)
		if s, _ := status.FromError(got); s.Code() != tc.want {
			t.Errorf("Status(%v) = %v, want %v", tc.err, s.Code(), tc.want)
		}
		if s, _ := status.FromError(got); !strings.Contains(tc.err.Error(), s.Message()) {
			t.Errorf("Status(%v) message %q lost the error text", tc.err, s.Message())
		}
	}
	if cnpgi.Status(nil) != nil {
		t.Error("Status(nil) is not nil")
	}
}

func TestCreatePatch(t *testing.T) {
	base := &corev1.Pod{}
	base.Kind, base.APIVersion, base.Name = "Pod", "v1", "p"
	base.Labels = map[string]string{"a": "1", "b/c": "2", "d~e": "3"}
	base.Spec.Containers = []corev1.Container{{Name: "postgres", Env: []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}}}}
	base.Spec.Volumes = []corev1.Volume{{Name: "v1"}, {Name: "v2"}, {Name: "v3"}}

	mod := base.DeepCopy()
	mod.Labels["b/c"] = "changed"
	delete(mod.Labels, "a")
	mod.Labels["new"] = ""
	mod.Spec.Containers[0].Env = mod.Spec.Containers[0].Env[:1]
	mod.Spec.Containers[0].Args = []string{"x"}
	mod.Spec.Volumes = []corev1.Volume{{Name: "v1"}, {Name: "other"}}
	no := false
	mod.Spec.AutomountServiceAccountToken = &no
	mod.Spec.InitContainers = []corev1.Container{{Name: "side"}}

	patch, err := cnpgi.CreatePatch(base, mod)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, _ := cnpgi.CreatePatch(base, mod)
		if !bytes.Equal(again, patch) {
			t.Fatalf("patch not deterministic:\n%s\n%s", patch, again)
		}
	}
	orig, _ := json.Marshal(base)
	want, _ := json.Marshal(mod)
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Apply(orig)
	if err != nil {
		t.Fatalf("apply %s: %v", patch, err)
	}
	if !jsonEqual(t, got, want) {
		t.Fatalf("patched object differs:\n got %s\nwant %s\npatch %s", got, want, patch)
	}
	if p, err := cnpgi.CreatePatch(base, base.DeepCopy()); err != nil || p != nil {
		t.Fatalf("equal objects: patch %q, %v; want nil", p, err)
	}
	// A null added value must be written, or the add is invalid.
	nul, err := cnpgi.CreatePatch(map[string]any{}, map[string]any{"k": nil})
	if err != nil || string(nul) != `[{"op":"add","path":"/k","value":null}]` {
		t.Fatalf("null add: %s %v", nul, err)
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}

func TestConfigFromCluster(t *testing.T) {
	no := false
	for _, tc := range []struct {
		name    string
		cluster cnpgitest.Cluster
		want    cnpgi.Config
	}{
		{"archive, default server name", cnpgitest.Cluster{Name: "pg", Namespace: "ns", Archive: map[string]string{"barmanObjectName": "store"}},
			cnpgi.Config{Namespace: "ns", BarmanObjectName: "store", ServerName: "pg"}},
		{"archive with server name", cnpgitest.Cluster{Name: "pg", Namespace: "ns", TypeMeta: true,
			Archive: map[string]string{"barmanObjectName": "store", "serverName": "srv"}},
			cnpgi.Config{Namespace: "ns", BarmanObjectName: "store", ServerName: "srv"}},
		{"disabled plugin keeps the store, not the server name", cnpgitest.Cluster{Name: "pg", Namespace: "ns", Enabled: &no,
			Archive: map[string]string{"barmanObjectName": "store", "serverName": "srv"}},
			cnpgi.Config{Namespace: "ns", BarmanObjectName: "store", ServerName: "pg"}},
		{"recovery defaults to the new cluster's name", cnpgitest.Cluster{Name: "new", Namespace: "ns",
			Recovery: map[string]string{"barmanObjectName": "old-store"}},
			cnpgi.Config{Namespace: "ns", ServerName: "new", RecoveryBarmanObjectName: "old-store", RecoveryServerName: "new"}},
		{"recovery, replica and archive", cnpgitest.Cluster{Name: "r", Namespace: "ns",
			Archive:  map[string]string{"barmanObjectName": "mine"},
			Recovery: map[string]string{"barmanObjectName": "src", "serverName": "origin"},
			Replica:  map[string]string{"barmanObjectName": "src", "serverName": "origin"}},
			cnpgi.Config{Namespace: "ns", BarmanObjectName: "mine", ServerName: "r", RecoveryBarmanObjectName: "src",
				RecoveryServerName: "origin", ReplicaSourceBarmanObjectName: "src", ReplicaSourceServerName: "origin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := cnpgi.DecodeCluster(tc.cluster.JSON(t))
			if err != nil {
				t.Fatal(err)
			}
			if got := cnpgi.ConfigFromCluster(c); got != tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	if _, err := cnpgi.DecodeCluster(nil); err == nil {
		t.Error("empty cluster definition decoded")
	}
	if _, err := cnpgi.DecodeCluster([]byte(`{"spec":{}}`)); err == nil {
		t.Error("cluster without a name decoded")
	}
}
