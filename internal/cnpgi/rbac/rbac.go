// Package rbac builds and keeps the per-Cluster Role and RoleBinding
// `<cluster>-barman-cloud` that let a Cluster's sidecars read exactly the
// ObjectStores the Cluster names and the Secrets those ObjectStores
// reference, and update their status.
package rbac

import (
	"sort"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	apiv1 "github.com/bcloud-dev/bcloud/api/v1"
	"github.com/bcloud-dev/bcloud/internal/cnpgi"
)

// Name returns the name of a Cluster's Role and RoleBinding.
func Name(cluster string) string { return cluster + "-barman-cloud" }

// Labels returns the labels of a Cluster's RBAC objects, as upstream.
func Labels(cluster string) map[string]string {
	return map[string]string{
		cnpgi.ClusterLabel:             cluster,
		"app.kubernetes.io/name":       "barman-cloud-plugin",
		"app.kubernetes.io/instance":   cluster,
		"app.kubernetes.io/version":    cnpgi.Version,
		"app.kubernetes.io/component":  "database",
		"app.kubernetes.io/managed-by": "plugin-barman-cloud",
	}
}

// SecretNames lists the Secrets an ObjectStore's credentials reference.
// endpointCA is left out: the operator mounts it, the sidecar never reads it.
func SecretNames(c *apiv1.BarmanCredentials) []string {
	var sels []*apiv1.SecretKeySelector
	if s3 := c.AWS; s3 != nil {
		sels = append(sels, s3.AccessKeyIDReference, s3.SecretAccessKeyReference, s3.RegionReference, s3.SessionToken)
	}
	if az := c.Azure; az != nil && !az.InheritFromAzureAD && !az.UseDefaultAzureCredentials {
		sels = append(sels, az.ConnectionString, az.StorageAccount, az.StorageKey, az.StorageSasToken)
	}
	if g := c.Google; g != nil {
		sels = append(sels, g.ApplicationCredentials)
	}
	var out []string
	for _, s := range sels {
		if s != nil && s.Name != "" {
			out = append(out, s.Name)
		}
	}
	return sortedSet(out)
}

// Rules returns the Role rules for the given ObjectStores: get them,
// update their status, get their Secrets, each limited by name. A rule
// with no name would grant every object of its kind, so it is left out.
func Rules(stores []apiv1.ObjectStore) []rbacv1.PolicyRule {
	var names, secrets []string
	for i := range stores {
		names = append(names, stores[i].Name)
		secrets = append(secrets, SecretNames(&stores[i].Spec.Configuration.BarmanCredentials)...)
	}
	names, secrets = sortedSet(names), sortedSet(secrets)
	rules := []rbacv1.PolicyRule{}
	if len(names) > 0 {
		rules = append(rules,
			rbacv1.PolicyRule{APIGroups: []string{apiv1.GroupVersion.Group}, Resources: []string{"objectstores"},
				Verbs: []string{"get", "watch", "list"}, ResourceNames: names},
			rbacv1.PolicyRule{APIGroups: []string{apiv1.GroupVersion.Group}, Resources: []string{"objectstores/status"},
				Verbs: []string{"update"}, ResourceNames: names},
		)
	}
	if len(secrets) > 0 {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"},
			Verbs: []string{"get", "watch", "list"}, ResourceNames: secrets})
	}
	return rules
}

// ObjectStoreNames returns the ObjectStores a Role's rules grant, which is
// how the ObjectStore controller finds the Roles to refresh.
func ObjectStoreNames(role *rbacv1.Role) []string {
	for _, r := range role.Rules {
		if len(r.APIGroups) == 1 && r.APIGroups[0] == apiv1.GroupVersion.Group &&
			len(r.Resources) == 1 && r.Resources[0] == "objectstores" {
			return r.ResourceNames
		}
	}
	return nil
}

// Role builds a Cluster's Role, owned by the Cluster.
func Role(c *cnpgi.Cluster, stores []apiv1.ObjectStore) *rbacv1.Role {
	return &rbacv1.Role{
		ObjectMeta: meta(c),
		Rules:      Rules(stores),
	}
}

// RoleBinding binds a Cluster's Role to the Cluster's ServiceAccount,
// which CloudNativePG names after the Cluster.
func RoleBinding(c *cnpgi.Cluster) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: meta(c),
		Subjects: []rbacv1.Subject{{
			Kind: rbacv1.ServiceAccountKind, APIGroup: "", Name: c.Name, Namespace: c.Namespace,
		}},
		RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: Name(c.Name)},
	}
}

func meta(c *cnpgi.Cluster) metav1.ObjectMeta {
	gvk := c.GroupVersionKind()
	yes := true
	return metav1.ObjectMeta{
		Name:      Name(c.Name),
		Namespace: c.Namespace,
		Labels:    Labels(c.Name),
		OwnerReferences: []metav1.OwnerReference{{
			APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Name: c.Name, UID: c.UID,
			Controller: &yes, BlockOwnerDeletion: &yes,
		}},
	}
}

func sortedSet(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	s := append([]string(nil), in...)
	sort.Strings(s)
	out := s[:1]
	for _, v := range s[1:] {
		if v != out[len(out)-1] {
			out = append(out, v)
		}
	}
	return out
}
