// Package kubernetes is a wrapper module that pins k8s.io/kubernetes so the
// Makefile can build kube-apiserver, kube-controller-manager and
// kube-scheduler from the Go module proxy (see hack/build-cluster-bins.sh).
package kubernetes
