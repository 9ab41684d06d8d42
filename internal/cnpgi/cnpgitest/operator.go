// Package cnpgitest is a stand-in for CloudNativePG 1.30 in tests: it
// loads a plugin over gRPC the way the operator and the instance manager
// do (cnpg-i.md §3-§5), applies lifecycle patches as the operator does,
// and builds the JSON the operator sends.
package cnpgitest

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"testing"

	backuppb "github.com/cloudnative-pg/cnpg-i/pkg/backup"
	"github.com/cloudnative-pg/cnpg-i/pkg/identity"
	"github.com/cloudnative-pg/cnpg-i/pkg/lifecycle"
	metricspb "github.com/cloudnative-pg/cnpg-i/pkg/metrics"
	"github.com/cloudnative-pg/cnpg-i/pkg/operator"
	"github.com/cloudnative-pg/cnpg-i/pkg/postgres"
	"github.com/cloudnative-pg/cnpg-i/pkg/reconciler"
	jobpb "github.com/cloudnative-pg/cnpg-i/pkg/restore/job"
	walpb "github.com/cloudnative-pg/cnpg-i/pkg/wal"
	jsonpatch "github.com/evanphx/json-patch/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
)

// Plugin is a loaded plugin connection, with what LoadPlugin learned.
type Plugin struct {
	Conn     *grpc.ClientConn
	Metadata *identity.GetPluginMetadataResponse
	Services map[identity.PluginCapability_Service_Type]bool

	Lifecycle  *lifecycle.OperatorLifecycleCapabilitiesResponse
	Reconciler *reconciler.ReconcilerHooksCapabilitiesResult
	WAL        *walpb.WALCapabilitiesResult
	Backup     *backuppb.BackupCapabilitiesResult
	Restore    *jobpb.RestoreJobHooksCapabilitiesResult
	Metrics    *metricspb.MetricsCapabilitiesResult
}

// DialUnix connects to a sidecar socket as the instance manager does:
// insecure credentials over unix://<path>.
func DialUnix(t testing.TB, socket string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("dial %s: %v", socket, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// DialTLS connects to the operator-side plugin as the operator does:
// TLS 1.3, the server certificate as root CA, the operator's client
// certificate, ServerName the Service name.
func DialTLS(t testing.TB, addr, serverName string, serverCertPEM []byte, client tls.Certificate) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(ClientTLS(serverName, serverCertPEM, client))))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Load runs LoadPlugin: metadata, capabilities, the GetCapabilities of
// every advertised service (any failure drops the plugin), then Probe.
func Load(ctx context.Context, conn *grpc.ClientConn) (*Plugin, error) {
	id := identity.NewIdentityClient(conn)
	md, err := id.GetPluginMetadata(ctx, &identity.GetPluginMetadataRequest{})
	if err != nil {
		return nil, fmt.Errorf("GetPluginMetadata: %w", err)
	}
	caps, err := id.GetPluginCapabilities(ctx, &identity.GetPluginCapabilitiesRequest{})
	if err != nil {
		return nil, fmt.Errorf("GetPluginCapabilities: %w", err)
	}
	p := &Plugin{Conn: conn, Metadata: md, Services: map[identity.PluginCapability_Service_Type]bool{}}
	for _, c := range caps.GetCapabilities() {
		t := c.GetService().GetType()
		p.Services[t] = true
		switch t {
		case identity.PluginCapability_Service_TYPE_OPERATOR_SERVICE:
			_, err = operator.NewOperatorClient(conn).GetCapabilities(ctx, &operator.OperatorCapabilitiesRequest{})
		case identity.PluginCapability_Service_TYPE_LIFECYCLE_SERVICE:
			p.Lifecycle, err = lifecycle.NewOperatorLifecycleClient(conn).GetCapabilities(ctx, &lifecycle.OperatorLifecycleCapabilitiesRequest{})
		case identity.PluginCapability_Service_TYPE_RECONCILER_HOOKS:
			p.Reconciler, err = reconciler.NewReconcilerHooksClient(conn).GetCapabilities(ctx, &reconciler.ReconcilerHooksCapabilitiesRequest{})
		case identity.PluginCapability_Service_TYPE_WAL_SERVICE:
			p.WAL, err = walpb.NewWALClient(conn).GetCapabilities(ctx, &walpb.WALCapabilitiesRequest{})
		case identity.PluginCapability_Service_TYPE_BACKUP_SERVICE:
			p.Backup, err = backuppb.NewBackupClient(conn).GetCapabilities(ctx, &backuppb.BackupCapabilitiesRequest{})
		case identity.PluginCapability_Service_TYPE_RESTORE_JOB:
			p.Restore, err = jobpb.NewRestoreJobHooksClient(conn).GetCapabilities(ctx, &jobpb.RestoreJobHooksCapabilitiesRequest{})
		case identity.PluginCapability_Service_TYPE_POSTGRES:
			_, err = postgres.NewPostgresClient(conn).GetCapabilities(ctx, &postgres.PostgresCapabilitiesRequest{})
		case identity.PluginCapability_Service_TYPE_METRICS:
			p.Metrics, err = metricspb.NewMetricsClient(conn).GetCapabilities(ctx, &metricspb.MetricsCapabilitiesRequest{})
		}
		if err != nil {
			return nil, fmt.Errorf("%s advertised but GetCapabilities failed: %w", t, err)
		}
	}
	if _, err := id.Probe(ctx, &identity.ProbeRequest{}); err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	return p, nil
}

// Hook calls LifecycleHook and applies the returned patch to obj the way
// the operator does (evanphx/json-patch, then the universal deserializer).
// It returns the patch and the patched object's JSON.
func (p *Plugin) Hook(ctx context.Context, op lifecycle.OperatorOperationType_Type, cluster, obj []byte) (patch, out []byte, err error) {
	resp, err := lifecycle.NewOperatorLifecycleClient(p.Conn).LifecycleHook(ctx, &lifecycle.OperatorLifecycleRequest{
		OperationType:     &lifecycle.OperatorOperationType{Type: op},
		ClusterDefinition: cluster,
		ObjectDefinition:  obj,
	})
	if err != nil {
		return nil, nil, err
	}
	out, err = ApplyPatch(obj, resp.GetJsonPatch())
	return resp.GetJsonPatch(), out, err
}

// ApplyPatch applies a lifecycle patch as the operator does; an empty
// patch leaves the object unchanged. The result must still decode as a
// Kubernetes object: the patch may not lose kind or apiVersion.
func ApplyPatch(obj, patch []byte) ([]byte, error) {
	if len(bytes.TrimSpace(patch)) == 0 {
		return obj, nil
	}
	p, err := jsonpatch.DecodePatch(patch)
	if err != nil {
		return nil, fmt.Errorf("decode patch: %w", err)
	}
	out, err := p.Apply(obj)
	if err != nil {
		return nil, fmt.Errorf("apply patch: %w", err)
	}
	if _, _, err := scheme.Codecs.UniversalDeserializer().Decode(out, nil, nil); err != nil {
		return nil, fmt.Errorf("decode patched object: %w", err)
	}
	return out, nil
}

// Decode decodes object JSON into a typed object with the client-go scheme.
func Decode(data []byte) (runtime.Object, error) {
	obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(data, nil, nil)
	return obj, err
}
