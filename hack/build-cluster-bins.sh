#!/usr/bin/env bash
# build-cluster-bins.sh builds the binaries of the local clusters used by the
# tests and the demo from the Go module proxy into $BIN_DIR:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
#       (k8s.io/kubernetes v1.37.0, version stamped so Helm's kubeVersion
#       checks pass)
#   etcd (go.etcd.io/etcd/server/v3 v3.6.15)
#   kwok, kwokctl (sigs.k8s.io/kwok v0.8.0)
# Each wrapper module under hack/clusterbins pins one upstream module. A
# stamp file records the hash of the wrapper's go.mod and go.sum and of the
# build flags; binaries whose stamp matches are reused.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN_DIR="${BIN_DIR:-$ROOT/bin}"
K8S_VERSION="v1.37.0"
mkdir -p "$BIN_DIR"

stamp_of() { # module dir, ldflags
	cat "$1/go.mod" "$1/go.sum" <(echo "$2") | sha256sum | cut -d' ' -f1
}

# ensure module-dir ldflags output=package...: builds every output whose
# binary is missing or whose stamp is stale.
ensure() {
	local mod="$1" ldflags="$2"; shift 2
	local want; want="$(stamp_of "$mod" "$ldflags")"
	for spec in "$@"; do
		local out="${spec%%=*}" pkg="${spec#*=}"
		local stamp="$BIN_DIR/.$out.stamp"
		if [[ -x "$BIN_DIR/$out" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
			continue
		fi
		echo ">> building $out from $pkg" >&2
		(cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$BIN_DIR/$out" "$pkg")
		echo "$want" > "$stamp"
	done
}

V=k8s.io/component-base/version
minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
ensure "$ROOT/hack/clusterbins/kubernetes" \
	"-s -w -X $V.gitVersion=$K8S_VERSION -X $V.gitMajor=1 -X $V.gitMinor=$minor -X $V.gitTreeState=clean -X $V.buildDate=2026-01-01T00:00:00Z" \
	kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
	kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager \
	kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler \
	kubectl=k8s.io/kubernetes/cmd/kubectl
ensure "$ROOT/hack/clusterbins/etcd" "-s -w" etcd=go.etcd.io/etcd/server/v3
ensure "$ROOT/hack/clusterbins/kwok" "-s -w" kwok=sigs.k8s.io/kwok/cmd/kwok kwokctl=sigs.k8s.io/kwok/cmd/kwokctl
echo ">> cluster binaries ready in $BIN_DIR" >&2
