// Package v1alpha1 contains the API of Meshplane, group meshplane.io,
// version v1alpha1: MeshInstall, MeshRevision, TrafficSplit,
// ZeroTrustPolicy, Canary, MeshFederation and BreakGlass.
//
// +kubebuilder:object:generate=true
// +groupName=meshplane.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of Meshplane's API.
	GroupVersion = schema.GroupVersion{Group: "meshplane.io", Version: "v1alpha1"}

	// SchemeBuilder registers Meshplane's types with a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds Meshplane's types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
