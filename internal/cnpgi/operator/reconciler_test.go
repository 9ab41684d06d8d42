package operator_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/cloudnative-pg/cnpg-i/pkg/reconciler"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	apiv1 "github.com/bcloud-dev/bcloud/api/v1"
	"github.com/bcloud-dev/bcloud/internal/cnpgi"
	"github.com/bcloud-dev/bcloud/internal/cnpgi/cnpgitest"
)

func pre(t *testing.T, p *cnpgitest.Plugin, cluster []byte) (*reconciler.ReconcilerHooksResult, error) {
	t.Helper()
	return reconciler.NewReconcilerHooksClient(p.Conn).Pre(ctx(t), &reconciler.ReconcilerHooksRequest{
		ClusterDefinition: cluster, ResourceDefinition: cluster})
}

func TestReconcilerRBAC(t *testing.T) {
	archive := cnpgitest.S3ObjectStore("db", "store", "s3://bucket/pg", "", "minio")
	archive.Spec.Configuration.AWS.RegionReference = cnpgitest.Ref("region", "REGION")
	origin := &apiv1.ObjectStore{ObjectMeta: metav1.ObjectMeta{Namespace: "db", Name: "origin"},
		Spec: apiv1.ObjectStoreSpec{Configuration: apiv1.BarmanObjectStoreConfiguration{
			DestinationPath: "https://acct.blob.core.windows.net/c/p",
			EndpointCA:      cnpgitest.Ref("ca", "ca.crt"),
			BarmanCredentials: apiv1.BarmanCredentials{Azure: &apiv1.AzureCredentials{
				ConnectionString: cnpgitest.Ref("azure", "AZURE_CONNECTION_STRING")}},
		}}}
	c := cnpgitest.FakeClient(t, archive, origin)
	p := startOperator(t, c)
	cl := cnpgitest.Cluster{Name: "pg", Namespace: "db", UID: "uid-7", TypeMeta: true,
		Archive: map[string]string{"barmanObjectName": "store"}, Recovery: map[string]string{"barmanObjectName": "origin"}}

	res, err := pre(t, p, cl.JSON(t))
	if err != nil || res.GetBehavior() != reconciler.ReconcilerHooksResult_BEHAVIOR_CONTINUE {
		t.Fatalf("Pre: %v %v", res, err)
	}
	var role rbacv1.Role
	if err := c.Get(ctx(t), types.NamespacedName{Namespace: "db", Name: "pg-barman-cloud"}, &role); err != nil {
		t.Fatal(err)
	}
	want := []rbacv1.PolicyRule{
		{APIGroups: []string{"barmancloud.cnpg.io"}, Resources: []string{"objectstores"}, Verbs: []string{"get", "watch", "list"}, ResourceNames: []string{"origin", "store"}},
		{APIGroups: []string{"barmancloud.cnpg.io"}, Resources: []string{"objectstores/status"}, Verbs: []string{"update"}, ResourceNames: []string{"origin", "store"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "watch", "list"}, ResourceNames: []string{"azure", "minio", "region"}},
	}
	if !rulesEqual(role.Rules, want) {
		t.Fatalf("rules %+v", role.Rules)
	}
	checkMeta(t, role.ObjectMeta)
	var rb rbacv1.RoleBinding
	if err := c.Get(ctx(t), types.NamespacedName{Namespace: "db", Name: "pg-barman-cloud"}, &rb); err != nil {
		t.Fatal(err)
	}
	checkMeta(t, rb.ObjectMeta)
	if len(rb.Subjects) != 1 || rb.Subjects[0].Kind != "ServiceAccount" || rb.Subjects[0].Name != "pg" || rb.Subjects[0].Namespace != "db" ||
		rb.RoleRef.Kind != "Role" || rb.RoleRef.Name != "pg-barman-cloud" {
		t.Fatalf("role binding %+v", rb)
	}

	// Credentials move to another Secret; someone adds a subject and a
	// label: rules are replaced, the extra subject and label stay.
	archive.Spec.Configuration.AWS.SecretAccessKeyReference = cnpgitest.Ref("rotated", "KEY")
	if err := c.Update(ctx(t), archive); err != nil {
		t.Fatal(err)
	}
	rb.Subjects = append(rb.Subjects, rbacv1.Subject{Kind: "ServiceAccount", Name: "debugger", Namespace: "db"})
	rb.Labels["team"] = "dba"
	if err := c.Update(ctx(t), &rb); err != nil {
		t.Fatal(err)
	}
	if _, err := pre(t, p, cl.JSON(t)); err != nil {
		t.Fatal(err)
	}
	_ = c.Get(ctx(t), client.ObjectKeyFromObject(&role), &role)
	if !slices.Equal(role.Rules[2].ResourceNames, []string{"azure", "minio", "region", "rotated"}) {
		t.Errorf("secret names after rotation: %v", role.Rules[2].ResourceNames)
	}
	_ = c.Get(ctx(t), client.ObjectKeyFromObject(&rb), &rb)
	if len(rb.Subjects) != 2 || rb.Labels["team"] != "dba" {
		t.Errorf("role binding lost what others added: %+v", rb)
	}

	// A RoleBinding pointing elsewhere cannot be fixed in place.
	rb.RoleRef.Name = "other"
	bad := rb.DeepCopy()
	_ = c.Delete(ctx(t), &rb)
	bad.ResourceVersion = ""
	if err := c.Create(ctx(t), bad); err != nil {
		t.Fatal(err)
	}
	if _, err := pre(t, p, cl.JSON(t)); err == nil || !strings.Contains(err.Error(), "delete the RoleBinding") {
		t.Errorf("divergent roleRef: %v", err)
	}

	// A missing ObjectStore requeues the Cluster.
	missing := cnpgitest.Cluster{Name: "later", Namespace: "db", Archive: map[string]string{"barmanObjectName": "not-yet"}}
	res, err = pre(t, p, missing.JSON(t))
	if err != nil || res.GetBehavior() != reconciler.ReconcilerHooksResult_BEHAVIOR_REQUEUE || res.GetRequeueAfter() == 0 {
		t.Errorf("missing ObjectStore: %v %v", res, err)
	}
	// Backup reconciles and Clusters without the plugin just continue,
	// and no Role granting everything is created.
	plain := cnpgitest.Cluster{Name: "plain", Namespace: "db"}
	if res, err := pre(t, p, plain.JSON(t)); err != nil || res.GetBehavior() != reconciler.ReconcilerHooksResult_BEHAVIOR_CONTINUE {
		t.Errorf("plain cluster: %v %v", res, err)
	}
	if err := c.Get(ctx(t), types.NamespacedName{Namespace: "db", Name: "plain-barman-cloud"}, &role); err == nil {
		t.Error("role created for a cluster naming no ObjectStore")
	}
	res, err = reconciler.NewReconcilerHooksClient(p.Conn).Pre(ctx(t), &reconciler.ReconcilerHooksRequest{
		ClusterDefinition: cl.JSON(t), ResourceDefinition: cnpgitest.BackupJSON(t, cl, "b1")})
	if err != nil || res.GetBehavior() != reconciler.ReconcilerHooksResult_BEHAVIOR_CONTINUE {
		t.Errorf("backup reconcile: %v %v", res, err)
	}
	if res, err := reconciler.NewReconcilerHooksClient(p.Conn).Post(ctx(t), &reconciler.ReconcilerHooksRequest{
		ClusterDefinition: cl.JSON(t), ResourceDefinition: cl.JSON(t)}); err != nil || res.GetBehavior() != reconciler.ReconcilerHooksResult_BEHAVIOR_CONTINUE {
		t.Errorf("Post: %v %v", res, err)
	}
}

func checkMeta(t *testing.T, m metav1.ObjectMeta) {
	t.Helper()
	for k, v := range map[string]string{cnpgi.ClusterLabel: "pg", "app.kubernetes.io/name": "barman-cloud-plugin",
		"app.kubernetes.io/instance": "pg", "app.kubernetes.io/component": "database",
		"app.kubernetes.io/managed-by": "plugin-barman-cloud", "app.kubernetes.io/version": cnpgi.Version} {
		if m.Labels[k] != v {
			t.Errorf("%s label %s=%q, want %q", m.Name, k, m.Labels[k], v)
		}
	}
	if len(m.OwnerReferences) != 1 {
		t.Fatalf("owner references %+v", m.OwnerReferences)
	}
	o := m.OwnerReferences[0]
	if o.Kind != "Cluster" || o.APIVersion != "postgresql.cnpg.io/v1" || o.Name != "pg" || o.UID != "uid-7" ||
		o.Controller == nil || !*o.Controller || o.BlockOwnerDeletion == nil || !*o.BlockOwnerDeletion {
		t.Errorf("owner reference %+v", o)
	}
}

func rulesEqual(a, b []rbacv1.PolicyRule) bool {
	return slices.EqualFunc(a, b, func(x, y rbacv1.PolicyRule) bool {
		return slices.Equal(x.APIGroups, y.APIGroups) && slices.Equal(x.Resources, y.Resources) &&
			slices.Equal(x.Verbs, y.Verbs) && slices.Equal(x.ResourceNames, y.ResourceNames)
	})
}
