// Package operator is the operator-side plugin process (`bcloud plugin
// operator`): the CNPG-I services CloudNativePG calls over TCP with mutual
// TLS (Identity, OperatorLifecycle for sidecar injection, ReconcilerHooks
// for the per-Cluster RBAC) and the ObjectStore controller.
package operator

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudnative-pg/cnpg-i/pkg/identity"
	"github.com/cloudnative-pg/cnpg-i/pkg/lifecycle"
	"github.com/cloudnative-pg/cnpg-i/pkg/reconciler"
	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	apiv1 "github.com/bcloud-dev/bcloud/api/v1"
	"github.com/bcloud-dev/bcloud/internal/cnpgi"
	"github.com/bcloud-dev/bcloud/internal/controller"
)

// LeaderElectionID is upstream's, so that an upgrade from the upstream
// plugin never runs two controllers at once.
const LeaderElectionID = "822e3f5c.cnpg.io"

// Services are the capabilities of the operator-side process. The
// instance sidecar injection capability must be advertised here for the
// instance manager to use the sidecar's metrics.
var Services = []identity.PluginCapability_Service_Type{
	identity.PluginCapability_Service_TYPE_RECONCILER_HOOKS,
	identity.PluginCapability_Service_TYPE_LIFECYCLE_SERVICE,
	identity.PluginCapability_Service_TYPE_INSTANCE_SIDECAR_INJECTION,
}

// Options configure the operator-side process.
type Options struct {
	RestConfig   *rest.Config
	SidecarImage string
	// Server is the gRPC endpoint: Address and the certificate paths
	// (TCP, mutual TLS), or PluginPath (a unix socket, for an operator
	// sidecar deployment).
	Server cnpgi.Server
	// LeaderElection guards the ObjectStore controller.
	LeaderElection bool
	// HealthProbeAddress serves /healthz and /readyz ("" or "0" = off).
	HealthProbeAddress string
	// MetricsAddress serves controller metrics ("" or "0" = off).
	MetricsAddress string
}

// Scheme returns the types the operator side reads and writes.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, rbacv1.AddToScheme, apiv1.AddToScheme} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("build scheme: %w", err)
		}
	}
	return s, nil
}

// Handlers returns the gRPC registrations of the operator side.
func Handlers(c client.Client, sidecarImage string) []func(*grpc.Server) {
	return []func(*grpc.Server){func(s *grpc.Server) {
		lifecycle.RegisterOperatorLifecycleServer(s, &Lifecycle{Client: c, SidecarImage: sidecarImage})
		reconciler.RegisterReconcilerHooksServer(s, &Reconciler{Client: c})
	}}
}

// Start runs the controller manager and the gRPC server until ctx is done.
func Start(ctx context.Context, o Options) error {
	if o.SidecarImage == "" {
		return errors.New("the sidecar image is not set: set SIDECAR_IMAGE")
	}
	scheme, err := Scheme()
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(o.RestConfig, ctrl.Options{
		Scheme:                 scheme,
		LeaderElection:         o.LeaderElection,
		LeaderElectionID:       LeaderElectionID,
		HealthProbeBindAddress: orOff(o.HealthProbeAddress),
		Metrics:                metricsserver.Options{BindAddress: orOff(o.MetricsAddress)},
	})
	if err != nil {
		return fmt.Errorf("create controller manager: %w", err)
	}
	// The gRPC handlers read and write through the API server, not the
	// cache: a Role just created must be seen at once.
	direct, err := client.New(o.RestConfig, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("create API client: %w", err)
	}
	rec := &controller.ObjectStoreReconciler{Client: mgr.GetClient(), Reader: mgr.GetAPIReader()}
	if err := rec.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("set up the ObjectStore controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("add health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("add ready check: %w", err)
	}
	srv := o.Server
	srv.Identity = &cnpgi.Identity{Services: Services}
	srv.Register = Handlers(direct, o.SidecarImage)
	if err := mgr.Add(grpcRunnable{srv: &srv}); err != nil {
		return fmt.Errorf("add gRPC server: %w", err)
	}
	return mgr.Start(ctx)
}

// grpcRunnable serves gRPC on every replica, leader or not.
type grpcRunnable struct{ srv *cnpgi.Server }

func (g grpcRunnable) Start(ctx context.Context) error { return g.srv.Serve(ctx) }
func (g grpcRunnable) NeedLeaderElection() bool        { return false }

func orOff(addr string) string {
	if addr == "" {
		return "0"
	}
	return addr
}
