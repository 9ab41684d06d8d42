package e2e

import (
	"context"
	"fmt"
	"strings"

	s3api "github.com/aws/aws-sdk-go-v2/service/s3"
	cnpgv1 "github.com/cloudnative-pg/api/pkg/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	"github.com/bcloud-dev/bcloud/internal/testenv"
)

// pgImage is the image name the Clusters ask for: the operator reads the
// PostgreSQL major version from its tag; the kubelet runs the host's
// PostgreSQL 15 for it.
const pgImage = "ghcr.io/cloudnative-pg/postgresql:15"

// createObjectStore creates a credentials Secret and an ObjectStore (as a
// user's manifest, unstructured) pointing at s3://bucket/ on the S3 server.
func (h *Harness) createObjectStore(ctx context.Context, ns, name, bucket string, s3 testenv.S3Server) error {
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-creds"},
		StringData: map[string]string{"ACCESS_KEY_ID": s3.AccessKey, "ACCESS_SECRET_KEY": s3.Secret, "REGION": s3.Region},
	}
	if err := h.Client.Create(ctx, secret); err != nil {
		return fmt.Errorf("create secret %s: %w", secret.Name, err)
	}
	ref := func(key string) map[string]any { return map[string]any{"name": secret.Name, "key": key} }
	store := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "barmancloud.cnpg.io/v1",
		"kind":       "ObjectStore",
		"metadata":   map[string]any{"namespace": ns, "name": name},
		"spec": map[string]any{
			"configuration": map[string]any{
				"destinationPath": "s3://" + bucket + "/",
				"endpointURL":     s3.Endpoint,
				"s3Credentials": map[string]any{
					"accessKeyId":     ref("ACCESS_KEY_ID"),
					"secretAccessKey": ref("ACCESS_SECRET_KEY"),
					"region":          ref("REGION"),
				},
				"wal": map[string]any{"compression": "gzip"},
			},
			// Retention and the recovery window are checked every few
			// seconds rather than every half hour.
			"retentionPolicy":              "7d",
			"instanceSidecarConfiguration": map[string]any{"retentionPolicyIntervalSeconds": int64(3)},
		},
	}}
	if err := h.Client.Create(ctx, store); err != nil {
		return fmt.Errorf("create object store %s: %w", name, err)
	}
	return nil
}

// pluginCluster is a one-instance Cluster archiving through the plugin to
// the ObjectStore store.
func pluginCluster(ns, name, store string) *cnpgv1.Cluster {
	return &cnpgv1.Cluster{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: cnpgv1.ClusterSpec{
			Instances:            1,
			ImageName:            pgImage,
			StorageConfiguration: cnpgv1.StorageConfiguration{Size: "1Gi"},
			Plugins: []cnpgv1.PluginConfiguration{{
				Name:          pluginName,
				IsWALArchiver: ptr.To(true),
				Parameters:    map[string]string{"barmanObjectName": store},
			}},
		},
	}
}

// listKeys lists the object keys under prefix in the bucket.
func listKeys(ctx context.Context, s3 testenv.S3Server, bucket, prefix string) ([]string, error) {
	var keys []string
	p := s3api.NewListObjectsV2Paginator(s3.Client(), &s3api.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list s3://%s/%s: %w", bucket, prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, *o.Key)
		}
	}
	return keys, nil
}

// clusterCondition returns the status of a Cluster condition, or "".
func clusterCondition(c *cnpgv1.Cluster, typ string) (metav1.ConditionStatus, string) {
	for _, cond := range c.Status.Conditions {
		if cond.Type == typ {
			return cond.Status, cond.Message
		}
	}
	return "", ""
}

// hasWAL reports whether keys hold a WAL segment (not only .history or
// .backup files).
func hasWAL(keys []string) bool {
	for _, k := range keys {
		base := k[strings.LastIndex(k, "/")+1:]
		if len(base) >= 24 && !strings.Contains(base, ".history") && !strings.Contains(base, ".backup") && !strings.HasSuffix(base, ".partial") {
			return true
		}
	}
	return false
}
