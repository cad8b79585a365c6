#!/usr/bin/env bash
# build-cluster-bins.sh builds the binaries of the local clusters used by the
# tests and the demo (kube-apiserver, kube-controller-manager, kube-scheduler,
# etcd, kwok, kwokctl) from the Go module proxy into $BIN_DIR. Each wrapper
# module under hack/clusterbins pins one upstream module; a binary that is
# already present and newer than its wrapper's go.mod is reused.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN_DIR="${BIN_DIR:-$ROOT/bin}"
K8S_VERSION="v1.37.0"
mkdir -p "$BIN_DIR"

# fresh reports whether every named binary exists and is newer than go.sum.
fresh() {
	local mod="$1"; shift
	for b in "$@"; do
		[[ -x "$BIN_DIR/$b" && "$BIN_DIR/$b" -nt "$mod/go.sum" ]] || return 1
	done
}

build() {
	local mod="$1" ldflags="$2"; shift 2
	echo ">> building $* (module $(basename "$mod"))" >&2
	(cd "$mod" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$BIN_DIR/" "$@")
}

K8S="$ROOT/hack/clusterbins/kubernetes"
if ! fresh "$K8S" kube-apiserver kube-controller-manager kube-scheduler; then
	V=k8s.io/component-base/version
	minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
	build "$K8S" "-s -w -X $V.gitVersion=$K8S_VERSION -X $V.gitMajor=1 -X $V.gitMinor=$minor -X $V.gitTreeState=clean -X $V.buildDate=2026-01-01T00:00:00Z" \
		k8s.io/kubernetes/cmd/kube-apiserver \
		k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler
fi

ETCD="$ROOT/hack/clusterbins/etcd"
if ! fresh "$ETCD" etcd; then
	echo ">> building etcd (module etcd)" >&2
	(cd "$ETCD" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/etcd" go.etcd.io/etcd/server/v3)
fi

KWOK="$ROOT/hack/clusterbins/kwok"
if ! fresh "$KWOK" kwok kwokctl; then
	build "$KWOK" "-s -w" \
		sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl
fi
echo ">> cluster binaries ready in $BIN_DIR" >&2
