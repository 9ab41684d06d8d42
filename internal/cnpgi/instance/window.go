package instance

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	apiv1 "github.com/bcloud-dev/bcloud/api/v1"
	"github.com/bcloud-dev/bcloud/internal/catalog"
	"github.com/bcloud-dev/bcloud/internal/retention"
	"github.com/bcloud-dev/bcloud/internal/storage"
)

// Window keeps an ObjectStore's status.serverRecoveryWindow, which
// `kubectl cnpg status` and the plugin's metrics read. The sidecar's Role
// allows only update on objectstores/status, so it reads, changes and
// updates, retrying on conflicts.
type Window struct {
	Client client.Client
}

// Refresh sets the first recoverability point and the last successful
// backup time of server from the catalog in b; the last failed backup
// time is kept.
func (w *Window) Refresh(ctx context.Context, key types.NamespacedName, server string, b storage.Bucket) (retention.RecoveryWindow, error) {
	entries, err := (&catalog.Catalog{Bucket: b, Server: server}).List(ctx)
	if err != nil {
		return retention.RecoveryWindow{}, fmt.Errorf("list backups of %s: %w", server, err)
	}
	rw := retention.Window(retention.FromCatalog(entries, nil))
	err = w.update(ctx, key, server, func(cur *apiv1.RecoveryWindow) {
		cur.FirstRecoverabilityPoint = metaTime(rw.FirstRecoverabilityPoint)
		cur.LastSuccessfulBackupTime = metaTime(rw.LastSuccessfulBackupTime)
	})
	return rw, err
}

// Failed records a failed backup of server at t.
func (w *Window) Failed(ctx context.Context, key types.NamespacedName, server string, t time.Time) error {
	return w.update(ctx, key, server, func(cur *apiv1.RecoveryWindow) {
		cur.LastFailedBackupTime = metaTime(t)
	})
}

func (w *Window) update(ctx context.Context, key types.NamespacedName, server string, change func(*apiv1.RecoveryWindow)) error {
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		var os apiv1.ObjectStore
		if err := w.Client.Get(ctx, key, &os); err != nil {
			return err
		}
		cur := os.Status.ServerRecoveryWindow[server]
		before := cur
		change(&cur)
		if equalWindow(before, cur) {
			return nil
		}
		if os.Status.ServerRecoveryWindow == nil {
			os.Status.ServerRecoveryWindow = map[string]apiv1.RecoveryWindow{}
		}
		os.Status.ServerRecoveryWindow[server] = cur
		return w.Client.Status().Update(ctx, &os)
	})
	if err != nil {
		return fmt.Errorf("update recovery window of %s in ObjectStore %s: %w", server, key, err)
	}
	return nil
}

func metaTime(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	mt := metav1.NewTime(t)
	return &mt
}

func equalWindow(a, b apiv1.RecoveryWindow) bool {
	eq := func(x, y *metav1.Time) bool {
		if x == nil || y == nil {
			return x == y
		}
		// The API keeps whole seconds.
		return x.Unix() == y.Unix()
	}
	return eq(a.FirstRecoverabilityPoint, b.FirstRecoverabilityPoint) &&
		eq(a.LastSuccessfulBackupTime, b.LastSuccessfulBackupTime) &&
		eq(a.LastFailedBackupTime, b.LastFailedBackupTime)
}
