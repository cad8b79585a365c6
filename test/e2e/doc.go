// Package e2e runs Meshplane end to end on the simulated cluster
// (test/cluster: kube-apiserver, kube-controller-manager, kube-scheduler and
// kwok), with the manager running every controller, charts served from a
// local chart repository, and an in-process fake injector (test/fakeistiod)
// standing in for istiod's webhook.
package e2e
