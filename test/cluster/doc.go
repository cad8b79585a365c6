// Package cluster starts real Kubernetes control planes for Meshplane's
// tests, benchmarks and demo. Nothing here mocks the Kubernetes API: every
// object goes through a real kube-apiserver backed by a real etcd, and every
// CRD is the one the mesh ships.
//
// # Substrates
//
// There are three, from cheapest to most complete.
//
// StartEnvtest (and StartServer, UseEnvtest) runs controller-runtime's envtest:
// one etcd and one kube-apiserver, with Meshplane's CRDs (config/crd/bases)
// and the real third-party CRDs of Istio, Gateway API, Cilium and Linkerd
// installed and Established before it returns. There are no controllers: a
// Deployment never gets pods. This is the substrate for controller and
// translation tests, where the point is that every generated object passes
// the real OpenAPI and CEL validation. It comes up in about 5-9 seconds on
// two cores, most of it installing ~55 CRDs. envtest is started with explicit
// binary paths, so KUBEBUILDER_ASSETS and TEST_ASSET_* cannot swap in other
// Kubernetes versions; it resolves a kubectl path but never runs kubectl, and
// none is needed.
//
// StartSimulated (and UseSimulated) runs a cluster in which workloads
// behave: etcd, kube-apiserver, kube-controller-manager (all default
// controllers: deployments, replicasets, daemonsets, jobs, namespaces,
// service accounts and tokens, garbage collector, endpoint slices, node
// lifecycle...), kube-scheduler, and the kwok controller playing kubelet for
// fake nodes that StartSimulated creates (annotation kwok.x-k8s.io/node=fake).
// kwok's behaviour comes from the Stage configuration in kwok-stages.yaml:
// nodes become Ready at once and keep their Leases renewed, scheduled pods
// become Running and Ready with an IP, Job pods succeed, terminating pods are
// deleted. So Deployments become Available, ReplicaSets roll, DaemonSets put
// a pod on every node, Helm hook Jobs complete — upgrades, restarts and
// break-glass can be tested end to end. Containers never run: there is no
// image pull, no exec or logs, no kube-proxy and no pod network. The
// processes are started directly with os/exec rather than through
// `kwokctl create cluster --runtime binary`: that gives one process tree
// this package owns (on Linux each child dies with the test binary), free
// ports on 127.0.0.1 chosen here, logs in <Dir>/logs/<component>.log that
// errors point to, and no chance of a download. A two-node cluster is up in
// about 4 seconds; a Deployment is Available about 0.2 seconds after it is
// created.
//
// StartMulti (and UseMulti) runs n independent envtest servers, each with
// its own etcd and the same CRDs, started concurrently, for multi-cluster
// federation tests. Each Server carries a kubeconfig for the kubeconfig
// Secrets through which Meshplane reaches remote clusters. Two servers with
// all CRDs are up in about 10 seconds on two cores.
//
// # Loopback only
//
// Every kube-apiserver started here uses ServiceCIDR (127.96.0.0/16) as its
// service range, and kube-controller-manager gets the same. Mesh charts
// install admission webhooks; with a loopback range, the API server's calls
// to them end on this machine (connection refused: exactly an outage of the
// mesh control plane) and never reach another address. For the same reason
// API servers advertise 127.0.0.1 (so the kubernetes Service has no
// endpoints, as the endpoint reconcilers refuse loopback addresses), fake
// nodes have InternalIP 127.0.0.1, and every process listens on 127.0.0.1.
// Pod IPs come from KwokPodCIDR and are never connected to.
//
// # Assets
//
// The binaries (kube-apiserver, kube-controller-manager, kube-scheduler,
// etcd, kwok) are built from the Go module proxy into bin/ by `make
// test-assets` (hack/build-cluster-bins.sh); BinDir finds them, or
// $MESHPLANE_BIN_DIR. The third-party CRDs are read from the Go module cache
// into .cache/crds by `make test-crds` (hack/collectcrds); CRDDir finds them,
// or $MESHPLANE_CRD_DIR. Errors about missing assets name the make target to
// run. Missing binaries wrap ErrAssetsMissing, and SkipOrFail (used by the
// Use* helpers) skips the test for them — unless $CI is "true", where a
// missing binary fails the test.
//
// # Cleanup
//
// Every Start function returns something with a Stop method; the Use*
// helpers register it with t.Cleanup. A simulated cluster's temporary
// directory is removed by Stop unless KeepDir is set (UseSimulated sets it
// when the test failed) or $MESHPLANE_KEEP_CLUSTER_DIR is "true"; a failed
// start keeps it and says where. envtest's processes are managed by
// controller-runtime, which does not tie them to the test binary's lifetime:
// a test binary killed with SIGKILL leaves them running.
package cluster
