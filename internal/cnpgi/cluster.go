package cnpgi

import (
	"encoding/json"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// CNPGGroup and CNPGVersion are CloudNativePG's API group and version. A
// fork may use another group: the sidecars read CUSTOM_CNPG_GROUP and
// CUSTOM_CNPG_VERSION, which the operator side sets from the Cluster it sees.
const (
	CNPGGroup   = "postgresql.cnpg.io"
	CNPGVersion = "v1"
)

// Cluster is the part of a CloudNativePG Cluster the plugin reads. The
// operator sends Clusters as JSON, sometimes without kind and apiVersion,
// so they are decoded leniently: unknown fields are ignored.
type Cluster struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ClusterSpec   `json:"spec"`
	Status            ClusterStatus `json:"status"`
}

// ClusterSpec is the part of a Cluster's spec the plugin reads.
type ClusterSpec struct {
	ImagePullPolicy  corev1.PullPolicy     `json:"imagePullPolicy,omitempty"`
	Plugins          []PluginConfiguration `json:"plugins,omitempty"`
	ExternalClusters []ExternalCluster     `json:"externalClusters,omitempty"`
	Bootstrap        *Bootstrap            `json:"bootstrap,omitempty"`
	ReplicaCluster   *ReplicaCluster       `json:"replica,omitempty"`
	WalStorage       *json.RawMessage      `json:"walStorage,omitempty"`
}

// PluginConfiguration is an entry of spec.plugins or externalClusters[].plugin.
type PluginConfiguration struct {
	Name          string            `json:"name"`
	Enabled       *bool             `json:"enabled,omitempty"`
	IsWALArchiver *bool             `json:"isWALArchiver,omitempty"`
	Parameters    map[string]string `json:"parameters,omitempty"`
}

// IsEnabled reports whether the plugin is enabled (nil means true).
func (p PluginConfiguration) IsEnabled() bool { return p.Enabled == nil || *p.Enabled }

// ExternalCluster is an entry of spec.externalClusters.
type ExternalCluster struct {
	Name                 string               `json:"name"`
	ConnectionParameters map[string]string    `json:"connectionParameters,omitempty"`
	Plugin               *PluginConfiguration `json:"plugin,omitempty"`
}

// Bootstrap is spec.bootstrap; only recovery matters here.
type Bootstrap struct {
	Recovery *Recovery `json:"recovery,omitempty"`
}

// Recovery is spec.bootstrap.recovery.
type Recovery struct {
	Source         string          `json:"source,omitempty"`
	RecoveryTarget *RecoveryTarget `json:"recoveryTarget,omitempty"`
}

// RecoveryTarget is spec.bootstrap.recovery.recoveryTarget.
type RecoveryTarget struct {
	BackupID        string `json:"backupID,omitempty"`
	TargetTLI       string `json:"targetTLI,omitempty"`
	TargetXID       string `json:"targetXID,omitempty"`
	TargetName      string `json:"targetName,omitempty"`
	TargetLSN       string `json:"targetLSN,omitempty"`
	TargetTime      string `json:"targetTime,omitempty"`
	TargetImmediate *bool  `json:"targetImmediate,omitempty"`
	Exclusive       *bool  `json:"exclusive,omitempty"`
}

// ReplicaCluster is spec.replica.
type ReplicaCluster struct {
	Enabled *bool  `json:"enabled,omitempty"`
	Source  string `json:"source,omitempty"`
	Primary string `json:"primary,omitempty"`
}

// ClusterStatus is the part of a Cluster's status the plugin reads.
type ClusterStatus struct {
	CurrentPrimary string `json:"currentPrimary,omitempty"`
	TargetPrimary  string `json:"targetPrimary,omitempty"`
}

// DecodeCluster decodes Cluster JSON as the operator sends it.
func DecodeCluster(data []byte) (*Cluster, error) {
	if len(data) == 0 {
		return nil, errors.New("decode cluster: the request carries no cluster definition")
	}
	var c Cluster
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("decode cluster: %w", err)
	}
	if c.Name == "" {
		return nil, errors.New("decode cluster: the cluster definition has no metadata.name")
	}
	return &c, nil
}

// GroupVersionKind returns the Cluster's GVK, CloudNativePG's when the
// JSON carried none.
func (c *Cluster) GroupVersionKind() schema.GroupVersionKind {
	gvk := c.TypeMeta.GroupVersionKind()
	if gvk.Group == "" && gvk.Version == "" {
		gvk = schema.GroupVersionKind{Group: CNPGGroup, Version: CNPGVersion}
	}
	if gvk.Kind == "" {
		gvk.Kind = "Cluster"
	}
	return gvk
}

// ExternalCluster returns the external cluster called name.
func (c *Cluster) ExternalCluster(name string) (ExternalCluster, bool) {
	for _, ec := range c.Spec.ExternalClusters {
		if ec.Name == name {
			return ec, true
		}
	}
	return ExternalCluster{}, false
}

// Plugin returns the last spec.plugins entry for this plugin, as
// upstream's NewPlugin does (enabled or not), and whether there is one.
func (c *Cluster) Plugin() (PluginConfiguration, bool) {
	var found PluginConfiguration
	ok := false
	for _, p := range c.Spec.Plugins {
		if p.Name == PluginName {
			found, ok = p, true
		}
	}
	return found, ok
}

// RecoverySourcePlugin returns the plugin stanza of the external cluster
// the Cluster bootstraps from, when it names this plugin.
func (c *Cluster) RecoverySourcePlugin() *PluginConfiguration {
	b := c.Spec.Bootstrap
	if b == nil || b.Recovery == nil || b.Recovery.Source == "" {
		return nil
	}
	ec, ok := c.ExternalCluster(b.Recovery.Source)
	if !ok || ec.Plugin == nil || ec.Plugin.Name != PluginName {
		return nil
	}
	return ec.Plugin
}

// ReplicaSource returns the external cluster a replica cluster follows,
// when its plugin stanza names this plugin.
func (c *Cluster) ReplicaSource() (ExternalCluster, bool) {
	r := c.Spec.ReplicaCluster
	if r == nil || r.Source == "" {
		return ExternalCluster{}, false
	}
	ec, ok := c.ExternalCluster(r.Source)
	if !ok || ec.Plugin == nil || ec.Plugin.Name != PluginName {
		return ExternalCluster{}, false
	}
	return ec, true
}

// EmptyWALArchiveCheckEnabled reports whether the Cluster's annotation
// leaves the empty-archive check on.
func (c *Cluster) EmptyWALArchiveCheckEnabled() bool {
	return c.Annotations[SkipEmptyWALArchiveCheck] != "enabled"
}

// Config is what a Cluster asks of the plugin: the ObjectStore and server
// name for backups and WAL archiving, for the recovery source, and for the
// replica source. Empty object names mean "not configured".
type Config struct {
	Namespace string

	BarmanObjectName string
	ServerName       string

	RecoveryBarmanObjectName string
	RecoveryServerName       string

	ReplicaSourceBarmanObjectName string
	ReplicaSourceServerName       string
}

// ConfigFromCluster derives the plugin configuration with upstream's
// rules: serverName defaults to the Cluster's name in every role.
func ConfigFromCluster(c *Cluster) Config {
	cfg := Config{Namespace: c.Namespace, ServerName: c.Name}
	if p, ok := c.Plugin(); ok {
		cfg.BarmanObjectName = p.Parameters[ParamBarmanObjectName]
	}
	for _, p := range c.Spec.Plugins {
		if p.Name == PluginName && p.IsEnabled() {
			if s, ok := p.Parameters[ParamServerName]; ok && s != "" {
				cfg.ServerName = s
			}
		}
	}
	if p := c.RecoverySourcePlugin(); p != nil {
		cfg.RecoveryBarmanObjectName = p.Parameters[ParamBarmanObjectName]
		cfg.RecoveryServerName = orDefault(p.Parameters[ParamServerName], c.Name)
	}
	if ec, ok := c.ReplicaSource(); ok {
		cfg.ReplicaSourceBarmanObjectName = ec.Plugin.Parameters[ParamBarmanObjectName]
		cfg.ReplicaSourceServerName = orDefault(ec.Plugin.Parameters[ParamServerName], c.Name)
	}
	return cfg
}

// Configured reports whether the Cluster names any ObjectStore for this
// plugin (upstream's Validate).
func (cfg Config) Configured() bool {
	return cfg.BarmanObjectName != "" || cfg.RecoveryBarmanObjectName != "" || cfg.ReplicaSourceBarmanObjectName != ""
}

// ObjectStoreNames returns the distinct ObjectStores the Cluster names, in
// the order backup, recovery, replica source.
func (cfg Config) ObjectStoreNames() []string {
	var out []string
	for _, n := range []string{cfg.BarmanObjectName, cfg.RecoveryBarmanObjectName, cfg.ReplicaSourceBarmanObjectName} {
		if n == "" {
			continue
		}
		dup := false
		for _, o := range out {
			dup = dup || o == n
		}
		if !dup {
			out = append(out, n)
		}
	}
	return out
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
