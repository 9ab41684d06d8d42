package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
)

// cnpgVersion is the CloudNativePG release the harness runs; scripts/deps.sh
// cnpg builds its manager into .cache/cnpg/<version>/manager.
const cnpgVersion = "v1.30.0"

// cnpgModuleDir returns the cloudnative-pg module in the module cache
// (downloaded by scripts/deps.sh cnpg), whose config/crd/bases holds the
// CRDs the operator needs, or "".
func cnpgModuleDir() string {
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		return ""
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "github.com", "cloudnative-pg", "cloudnative-pg@"+cnpgVersion)
	if _, err := os.Stat(filepath.Join(dir, "config", "crd", "bases", "postgresql.cnpg.io_clusters.yaml")); err != nil {
		return ""
	}
	return dir
}

// writeKubeconfig writes a kubeconfig for cfg's server. With token empty it
// carries cfg's client certificate (the envtest admin); otherwise it
// authenticates with the bearer token, as a pod's projected ServiceAccount
// token does.
func writeKubeconfig(path string, cfg *rest.Config, token string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	auth := &clientcmdapi.AuthInfo{Token: token}
	if token == "" {
		auth = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	}
	kc.AuthInfos["user"] = auth
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "user"}
	kc.CurrentContext = "envtest"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

// serviceAccountToken asks the API server for a token of a ServiceAccount,
// as the kubelet does for a pod's projected token volume.
func serviceAccountToken(ctx context.Context, cs kubernetes.Interface, ns, name string) (string, error) {
	req := &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](24 * 3600)}}
	resp, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, req, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("request a token for service account %s/%s: %w", ns, name, err)
	}
	return resp.Status.Token, nil
}
