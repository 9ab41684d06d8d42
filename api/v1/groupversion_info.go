// Package v1 holds the ObjectStore API of the Barman Cloud plugin, group
// barmancloud.cnpg.io, version v1. The schema is the upstream plugin's, so
// existing ObjectStores apply unchanged; bcloud adds admission-time CEL rules
// that reject incomplete or conflicting credentials.
//
// +kubebuilder:object:generate=true
// +groupName=barmancloud.cnpg.io
package v1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of the ObjectStore API.
	GroupVersion = schema.GroupVersion{Group: "barmancloud.cnpg.io", Version: "v1"}

	// SchemeBuilder registers the ObjectStore types with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the ObjectStore types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
