// Package v1alpha1 contains the API of Meshplane, group meshplane.io,
// version v1alpha1: MeshInstall, MeshRevision, TrafficSplit,
// ZeroTrustPolicy, Canary, MeshFederation and BreakGlass.
//
// +kubebuilder:object:generate=true
// +groupName=meshplane.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of Meshplane's API.
	GroupVersion = schema.GroupVersion{Group: "meshplane.io", Version: "v1alpha1"}

	// SchemeBuilder registers Meshplane's types with a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds Meshplane's types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme

	// knownTypes are the kinds of this group version; each kind's file
	// adds its object and list in an init function through register.
	knownTypes []runtime.Object
)

// register adds objects to the kinds AddToScheme registers.
func register(objs ...runtime.Object) {
	knownTypes = append(knownTypes, objs...)
}

// addKnownTypes registers every kind of this group version and the meta/v1
// types (ListOptions, WatchEvent…) under it.
func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, knownTypes...)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
