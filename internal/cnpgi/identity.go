package cnpgi

import (
	"context"

	"github.com/cloudnative-pg/cnpg-i/pkg/identity"
)

// Identity is the Identity service of one plugin process: the same
// metadata everywhere, and the services that process offers.
type Identity struct {
	identity.UnimplementedIdentityServer
	// Services are the capabilities advertised. Every one of them must be
	// registered on the server, or CloudNativePG drops the plugin.
	Services []identity.PluginCapability_Service_Type
	// Ready, when set, answers Probe; nil means always ready.
	Ready func(context.Context) bool
}

// GetPluginMetadata returns the plugin's metadata.
func (i *Identity) GetPluginMetadata(context.Context, *identity.GetPluginMetadataRequest) (*identity.GetPluginMetadataResponse, error) {
	return &identity.GetPluginMetadataResponse{
		Name:          PluginName,
		Version:       Version,
		DisplayName:   DisplayName,
		Description:   Description,
		ProjectUrl:    ProjectURL,
		RepositoryUrl: RepositoryURL,
		License:       License,
		LicenseUrl:    LicenseURL,
		Maturity:      Maturity,
		Vendor:        Vendor,
	}, nil
}

// GetPluginCapabilities lists the services of this process.
func (i *Identity) GetPluginCapabilities(context.Context, *identity.GetPluginCapabilitiesRequest) (*identity.GetPluginCapabilitiesResponse, error) {
	caps := make([]*identity.PluginCapability, 0, len(i.Services))
	for _, t := range i.Services {
		caps = append(caps, &identity.PluginCapability{
			Type: &identity.PluginCapability_Service_{Service: &identity.PluginCapability_Service{Type: t}},
		})
	}
	return &identity.GetPluginCapabilitiesResponse{Capabilities: caps}, nil
}

// Probe reports readiness. CloudNativePG only looks at the error.
func (i *Identity) Probe(ctx context.Context, _ *identity.ProbeRequest) (*identity.ProbeResponse, error) {
	ready := i.Ready == nil || i.Ready(ctx)
	return &identity.ProbeResponse{Ready: ready}, nil
}
