// Package cnpgi holds what the three CNPG-I plugin processes share: the
// plugin's identity, the view of a CloudNativePG Cluster the plugin needs,
// the gRPC server wiring and the mapping of domain errors to gRPC codes.
// Each process lives in a sub-package: operator, instance and restore.
package cnpgi

// PluginName is the plugin's name: the socket file name, the name in
// Cluster.spec.plugins and the value of the Service's cnpg.io/pluginName
// label. It is the upstream plugin's, so Clusters switch without change.
const PluginName = "barman-cloud.cloudnative-pg.io"

// Identity metadata reported by every process, as upstream does.
const (
	DisplayName   = "BarmanCloudInstance"
	Description   = "Barman Cloud compatible backups and WAL archiving, native Go (bcloud)"
	License       = "APACHE 2.0"
	LicenseURL    = "https://www.apache.org/licenses/LICENSE-2.0.txt"
	Maturity      = "alpha"
	Vendor        = "bcloud"
	ProjectURL    = "https://github.com/bcloud-dev/bcloud"
	RepositoryURL = "https://github.com/bcloud-dev/bcloud"
)

// Version is the version reported in the plugin metadata, in Backup
// pluginMetadata and in the RBAC labels. The command line sets it from
// the build version.
var Version = "dev"

// Labels and names shared with the upstream plugin.
const (
	// ClusterLabel marks the per-cluster RBAC objects with the Cluster name.
	ClusterLabel = "barmancloud.cnpg.io/cluster"
	// SidecarName is the name of the injected sidecar container.
	SidecarName = "plugin-barman-cloud"
	// CheckEmptyWALArchiveFile is the marker file, in PGDATA, that asks
	// for the empty-archive check before the first archived WAL.
	CheckEmptyWALArchiveFile = ".check-empty-wal-archive"
	// SkipEmptyWALArchiveCheck is the Cluster annotation that disables
	// the empty-archive check when set to "enabled".
	SkipEmptyWALArchiveCheck = "cnpg.io/skipEmptyWalArchiveCheck"
	// CertificatesDir is where the sidecar finds the endpoint CA of each
	// ObjectStore: <dir>/<objectstore>/<CertificateFile>.
	CertificatesDir = "/barman-certificates"
	// CertificateFile is the file name of a projected endpoint CA.
	CertificateFile = "barman-ca.crt"
	// DefaultSpoolDir is the spool of the sidecars (SPOOL_DIRECTORY).
	DefaultSpoolDir = "/controller/wal-restore-spool"
	// DefaultPluginPath is the directory holding the plugin sockets.
	DefaultPluginPath = "/plugins"
)

// Parameter names read from the Cluster's plugin configurations.
const (
	ParamBarmanObjectName = "barmanObjectName"
	ParamServerName       = "serverName"
)
