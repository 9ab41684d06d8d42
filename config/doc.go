// Package config holds the Kubernetes manifests of the plugin as kustomize
// bases: crd/ (generated from api/v1 by `make manifests`), rbac/, manager/
// (Deployment and discovery Service), certificates/ (cert-manager), default/
// (all of them, rendered into manifest.yaml by scripts/manifest.sh) and
// samples/ (the ObjectStores of docs/object-stores.md). Its tests apply them
// to a real kube-apiserver (envtest).
package config
