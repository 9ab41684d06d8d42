package rbac

import (
	"context"
	"fmt"
	"log/slog"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	apiv1 "github.com/bcloud-dev/bcloud/api/v1"
	"github.com/bcloud-dev/bcloud/internal/cnpgi"
)

// EnsureRole creates the Cluster's Role, owned by the Cluster, or brings
// an existing one's rules and labels up to date: rules are replaced,
// labels merged (other labels are kept), with optimistic locking.
func EnsureRole(ctx context.Context, c client.Client, cluster *cnpgi.Cluster, stores []apiv1.ObjectStore) error {
	want := Role(cluster, stores)
	key := client.ObjectKeyFromObject(want)
	var cur rbacv1.Role
	err := c.Get(ctx, key, &cur)
	switch {
	case apierrors.IsNotFound(err):
		slog.InfoContext(ctx, "creating role", "role", key.String())
		err = c.Create(ctx, want)
		if err == nil {
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create role %s: %w", key, err)
		}
	case err != nil:
		return fmt.Errorf("read role %s: %w", key, err)
	}
	return patchRole(ctx, c, key, want.Rules, want.Labels)
}

// EnsureRoleRules refreshes the rules of an existing Role from the
// current ObjectStores (the ObjectStore controller's path, which has no
// Cluster at hand). A missing Role is left for the next Cluster reconcile.
func EnsureRoleRules(ctx context.Context, c client.Client, key client.ObjectKey, stores []apiv1.ObjectStore) error {
	err := patchRole(ctx, c, key, Rules(stores), nil)
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

func patchRole(ctx context.Context, c client.Client, key client.ObjectKey, rules []rbacv1.PolicyRule, labels map[string]string) error {
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		var role rbacv1.Role
		if err := c.Get(ctx, key, &role); err != nil {
			return err
		}
		if equality.Semantic.DeepEqual(rules, role.Rules) && !needsLabels(role.Labels, labels) {
			return nil
		}
		slog.InfoContext(ctx, "updating role", "role", key.String())
		before := role.DeepCopy()
		role.Rules = rules
		role.Labels = mergeLabels(role.Labels, labels)
		return c.Patch(ctx, &role, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	})
	if err != nil {
		return fmt.Errorf("update role %s: %w", key, err)
	}
	return nil
}

// EnsureRoleBinding creates the Cluster's RoleBinding or completes an
// existing one: its subject is added (subjects others added are kept) and
// labels merged. A RoleBinding pointing at another Role cannot be fixed
// in place (roleRef is immutable): the error asks to delete it.
func EnsureRoleBinding(ctx context.Context, c client.Client, cluster *cnpgi.Cluster) error {
	want := RoleBinding(cluster)
	key := client.ObjectKeyFromObject(want)
	var cur rbacv1.RoleBinding
	err := c.Get(ctx, key, &cur)
	if apierrors.IsNotFound(err) {
		slog.InfoContext(ctx, "creating role binding", "roleBinding", key.String())
		if err = c.Create(ctx, want); err == nil {
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create role binding %s: %w", key, err)
		}
	} else if err != nil {
		return fmt.Errorf("read role binding %s: %w", key, err)
	}
	err = retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		var rb rbacv1.RoleBinding
		if err := c.Get(ctx, key, &rb); err != nil {
			return err
		}
		if !equality.Semantic.DeepEqual(rb.RoleRef, want.RoleRef) {
			return fmt.Errorf("role binding %s refers to %s %s instead of Role %s, and roleRef cannot change: delete the RoleBinding so that it is recreated",
				key, rb.RoleRef.Kind, rb.RoleRef.Name, want.RoleRef.Name)
		}
		missing := missingSubjects(rb.Subjects, want.Subjects)
		if len(missing) == 0 && !needsLabels(rb.Labels, want.Labels) {
			return nil
		}
		before := rb.DeepCopy()
		rb.Subjects = append(rb.Subjects, missing...)
		rb.Labels = mergeLabels(rb.Labels, want.Labels)
		return c.Patch(ctx, &rb, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}))
	})
	if err != nil {
		return fmt.Errorf("update role binding %s: %w", key, err)
	}
	return nil
}

func missingSubjects(have, want []rbacv1.Subject) []rbacv1.Subject {
	var out []rbacv1.Subject
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || equality.Semantic.DeepEqual(h, w)
		}
		if !found {
			out = append(out, w)
		}
	}
	return out
}

func needsLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return true
		}
	}
	return false
}

func mergeLabels(have, want map[string]string) map[string]string {
	if len(want) == 0 {
		return have
	}
	if have == nil {
		have = make(map[string]string, len(want))
	}
	for k, v := range want {
		have[k] = v
	}
	return have
}
