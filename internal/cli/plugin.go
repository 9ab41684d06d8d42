package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	apiv1 "github.com/bcloud-dev/bcloud/api/v1"
	"github.com/bcloud-dev/bcloud/internal/cnpgi"
	"github.com/bcloud-dev/bcloud/internal/cnpgi/instance"
	"github.com/bcloud-dev/bcloud/internal/cnpgi/operator"
	"github.com/bcloud-dev/bcloud/internal/cnpgi/restore"
	"github.com/bcloud-dev/bcloud/internal/postgres"
)

// newPlugin is `bcloud plugin`: the CloudNativePG plugin processes, a
// drop-in replacement of plugin-barman-cloud's manager sub-commands.
func newPlugin() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "Run the CloudNativePG Barman Cloud plugin (operator side, instance or restore sidecar)",
	}
	cmd.AddCommand(newPluginOperator(), newPluginInstance(), newPluginRestore(), newPluginHealthcheck())
	return cmd
}

// pluginLogging sets a JSON logger at upstream's level names, and hands it
// to controller-runtime too.
type pluginLogging struct{ level string }

func (l *pluginLogging) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&l.level, "log-level", "info", "log level: error, warning, info, debug or trace")
}

func (l *pluginLogging) setup(stderr io.Writer) error {
	levels := map[string]slog.Level{"error": slog.LevelError, "warning": slog.LevelWarn, "info": slog.LevelInfo,
		"debug": slog.LevelDebug, "trace": slog.LevelDebug - 4}
	lvl, ok := levels[strings.ToLower(l.level)]
	if !ok {
		return withCode(ExitUsage, fmt.Errorf("--log-level %q: use error, warning, info, debug or trace", l.level))
	}
	h := slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lvl})
	slog.SetDefault(slog.New(h))
	log.SetLogger(logr.FromSlogHandler(h))
	cnpgi.Version = Version
	return nil
}

func newPluginOperator() *cobra.Command {
	var (
		logs                                   pluginLogging
		srv                                    cnpgi.Server
		leaderElect, metricsSecure, enableHTTP bool
		probeAddr, metricsAddr                 string
	)
	cmd := &cobra.Command{
		Use:   "operator",
		Short: "Serve the operator-side CNPG-I services (TCP with mutual TLS) and the ObjectStore controller",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := logs.setup(cmd.ErrOrStderr()); err != nil {
				return err
			}
			tcp := srv.Address != "" || srv.ServerCertPath != "" || srv.ServerKeyPath != "" || srv.ClientCertPath != ""
			complete := srv.Address != "" && srv.ServerCertPath != "" && srv.ServerKeyPath != "" && srv.ClientCertPath != ""
			if tcp == (srv.PluginPath != "") || (tcp && !complete) {
				return withCode(ExitUsage, errors.New("give --server-address with --server-cert, --server-key and --client-cert (mutual TLS), or --plugin-path"))
			}
			cfg, err := ctrl.GetConfig()
			if err != nil {
				return fmt.Errorf("find the Kubernetes API: %w", err)
			}
			return operator.Start(cmd.Context(), operator.Options{
				RestConfig: cfg, SidecarImage: os.Getenv("SIDECAR_IMAGE"), Server: srv,
				LeaderElection: leaderElect, HealthProbeAddress: probeAddr, MetricsAddress: metricsAddr,
			})
		},
	}
	logs.register(cmd)
	fs := cmd.Flags()
	fs.StringVar(&srv.Address, "server-address", "", "address to serve gRPC on with mutual TLS, e.g. :9090")
	fs.StringVar(&srv.ServerCertPath, "server-cert", "", "server certificate (PEM), read at every handshake")
	fs.StringVar(&srv.ServerKeyPath, "server-key", "", "server private key (PEM)")
	fs.StringVar(&srv.ClientCertPath, "client-cert", "", "certificate (PEM) the operator's client certificate must verify against")
	fs.StringVar(&srv.PluginPath, "plugin-path", "", "serve on a unix socket in this directory instead of TCP")
	fs.BoolVar(&leaderElect, "leader-elect", false, "elect a leader for the ObjectStore controller")
	fs.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "address of the /healthz and /readyz endpoints")
	fs.StringVar(&metricsAddr, "metrics-bind-address", "0", "address of the controller metrics endpoint (0 = off)")
	fs.BoolVar(&metricsSecure, "metrics-secure", true, "accepted for compatibility with the upstream plugin")
	fs.BoolVar(&enableHTTP, "enable-http2", false, "accepted for compatibility with the upstream plugin")
	return cmd
}

func newPluginInstance() *cobra.Command {
	var (
		logs       pluginLogging
		pluginPath string
		pprof      string
	)
	cmd := &cobra.Command{
		Use:   "instance",
		Short: "Serve the instance sidecar: WAL archive and restore, backups, metrics, catalog maintenance",
		Args:  cobra.ArbitraryArgs, // ObjectStore additionalContainerArgs may add more
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := logs.setup(cmd.ErrOrStderr()); err != nil {
				return err
			}
			env, err := requireEnv("NAMESPACE", "CLUSTER_NAME", "POD_NAME")
			if err != nil {
				return err
			}
			c, err := sidecarClient()
			if err != nil {
				return err
			}
			return instance.Start(cmd.Context(), instance.Options{
				Client: c, Namespace: env["NAMESPACE"], ClusterName: env["CLUSTER_NAME"], PodName: env["POD_NAME"],
				ClusterGVK: clusterGVK(),
				ConnInfo:   postgres.BuildConnInfo(os.Getenv("PGHOST"), os.Getenv("PGPORT"), "postgres", "postgres"),
				SpoolDir:   os.Getenv("SPOOL_DIRECTORY"), PluginPath: pluginPath, PGData: os.Getenv("PGDATA"),
			})
		},
	}
	logs.register(cmd)
	cmd.Flags().StringVar(&pluginPath, "plugin-path", cnpgi.DefaultPluginPath, "directory of the plugin socket")
	cmd.Flags().StringVar(&pprof, "pprof-server", "", "accepted for compatibility with the upstream plugin")
	cmd.Flags().SetInterspersed(true)
	cmd.FParseErrWhitelist.UnknownFlags = true
	return cmd
}

func newPluginRestore() *cobra.Command {
	var (
		logs       pluginLogging
		pluginPath string
	)
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Serve the recovery Job sidecar: restore the base backup and the WAL files recovery asks for",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := logs.setup(cmd.ErrOrStderr()); err != nil {
				return err
			}
			env, err := requireEnv("NAMESPACE", "POD_NAME", "PGDATA")
			if err != nil {
				return err
			}
			c, err := sidecarClient()
			if err != nil {
				return err
			}
			return restore.Start(cmd.Context(), restore.Options{
				Client: c, PodName: env["POD_NAME"], PGData: env["PGDATA"],
				SpoolDir: os.Getenv("SPOOL_DIRECTORY"), PluginPath: pluginPath,
			})
		},
	}
	logs.register(cmd)
	cmd.Flags().StringVar(&pluginPath, "plugin-path", cnpgi.DefaultPluginPath, "directory of the plugin socket")
	return cmd
}

// Exit codes of `plugin healthcheck`, as upstream's.
const (
	healthUnknown    = 2
	healthNotServing = 3
	healthOther      = 125
)

func newPluginHealthcheck() *cobra.Command {
	var pluginPath string
	cmd := &cobra.Command{
		Use:   "healthcheck unix",
		Short: "Check that the sidecar serves (its startup probe): exit 0 when serving",
		Args:  positional(1, 1, "unix"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] != "unix" {
				return withCode(ExitUsage, fmt.Errorf("unknown transport %q: only unix is supported", args[0]))
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
			defer cancel()
			return healthcheck(ctx, "unix://"+strings.TrimSuffix(pluginPath, "/")+"/"+cnpgi.PluginName)
		},
	}
	cmd.Flags().StringVar(&pluginPath, "plugin-path", cnpgi.DefaultPluginPath, "directory of the plugin socket")
	return cmd
}

func healthcheck(ctx context.Context, target string) error {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return withCode(ExitFailed, fmt.Errorf("connect to %s: %w", target, err))
	}
	defer func() { _ = conn.Close() }()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return withCode(ExitFailed, fmt.Errorf("health check of %s: %w", target, err))
	}
	switch resp.GetStatus() {
	case healthpb.HealthCheckResponse_SERVING:
		return nil
	case healthpb.HealthCheckResponse_UNKNOWN:
		return withCode(healthUnknown, errors.New("health check: status UNKNOWN"))
	case healthpb.HealthCheckResponse_NOT_SERVING:
		return withCode(healthNotServing, errors.New("health check: NOT_SERVING"))
	}
	return withCode(healthOther, fmt.Errorf("health check: status %s", resp.GetStatus()))
}

func requireEnv(names ...string) (map[string]string, error) {
	out := map[string]string{}
	var missing []string
	for _, n := range names {
		v := os.Getenv(n)
		if v == "" {
			missing = append(missing, n)
		}
		out[n] = v
	}
	if len(missing) > 0 {
		return nil, withCode(ExitUsage, fmt.Errorf("environment variables %s are not set: the operator injects them into the sidecar", strings.Join(missing, ", ")))
	}
	return out, nil
}

// sidecarClient talks to the API server as the pod's ServiceAccount,
// without caches: the sidecar's Role allows only named gets.
func sidecarClient() (client.Client, error) {
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("find the Kubernetes API: %w", err)
	}
	s := runtime.NewScheme()
	if err := corev1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("build scheme: %w", err)
	}
	if err := apiv1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("build scheme: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		return nil, fmt.Errorf("create API client: %w", err)
	}
	return c, nil
}

// clusterGVK is the Cluster API the operator side saw (a fork may use
// another group).
func clusterGVK() schema.GroupVersionKind {
	gvk := schema.GroupVersionKind{Group: os.Getenv("CUSTOM_CNPG_GROUP"), Version: os.Getenv("CUSTOM_CNPG_VERSION"), Kind: "Cluster"}
	if gvk.Group == "" {
		gvk.Group = cnpgi.CNPGGroup
	}
	if gvk.Version == "" {
		gvk.Version = cnpgi.CNPGVersion
	}
	return gvk
}
