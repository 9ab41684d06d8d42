package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	admv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/yaml"
)

// installWebhooks registers the operator's own admission webhooks
// (config/webhook/manifests.yaml of the module) with the API server,
// reaching the operator's webhook server on 127.0.0.1:port by URL instead
// of through the cnpg-webhook-service Service. The operator then defaults
// and validates Clusters and Backups exactly as in a cluster.
func (h *Harness) installWebhooks(ctx context.Context, modDir string, port int, caPEM []byte) error {
	raw, err := os.ReadFile(filepath.Join(modDir, "config", "webhook", "manifests.yaml"))
	if err != nil {
		return fmt.Errorf("read webhook manifests: %w", err)
	}
	base := fmt.Sprintf("https://127.0.0.1:%d", port)
	url := func(path *string) *string {
		u := base
		if path != nil {
			u += *path
		}
		return &u
	}
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("decode webhook manifests: %w", err)
		}
		if doc == nil {
			continue
		}
		one, err := yamlRoundTrip(doc)
		if err != nil {
			return err
		}
		switch doc["kind"] {
		case "MutatingWebhookConfiguration":
			var c admv1.MutatingWebhookConfiguration
			if err := decodeInto(one, &c); err != nil {
				return err
			}
			c.Name = "cnpg-mutating-webhook-configuration"
			for i := range c.Webhooks {
				cc := &c.Webhooks[i].ClientConfig
				cc.URL, cc.CABundle = url(cc.Service.Path), caPEM
				cc.Service = nil
			}
			if err := h.Client.Create(ctx, &c); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("create %s: %w", c.Name, err)
			}
		case "ValidatingWebhookConfiguration":
			var c admv1.ValidatingWebhookConfiguration
			if err := decodeInto(one, &c); err != nil {
				return err
			}
			c.Name = "cnpg-validating-webhook-configuration"
			for i := range c.Webhooks {
				cc := &c.Webhooks[i].ClientConfig
				cc.URL, cc.CABundle = url(cc.Service.Path), caPEM
				cc.Service = nil
			}
			if err := h.Client.Create(ctx, &c); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("create %s: %w", c.Name, err)
			}
		}
	}
}
