#!/usr/bin/env bash
# image.sh builds Meshplane's image (Containerfile) from binaries built on
# this machine, so no base image is pulled.
#   hack/image.sh build IMAGE VERSION [GOARCH]   build and tag IMAGE
#   hack/image.sh tar IMAGE FILE                 write IMAGE as an OCI archive
# The binaries are static (CGO_ENABLED=0), -trimpath, without VCS stamps or
# build ids, and carry VERSION (-X): the same sources give the same bytes.
# The image's timestamps are the last commit's (podman --timestamp), so the
# image is reproducible too.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export GOTOOLCHAIN=local

build() {
	local image="$1" version="$2" arch="${3:-$(go env GOARCH)}"
	local ctx="$ROOT/.cache/image" rootfs="$ROOT/.cache/image/rootfs-$arch"
	rm -rf "$rootfs"
	mkdir -p "$rootfs/etc/ssl/certs" "$rootfs/tmp"
	chmod 1777 "$rootfs/tmp"
	local ldflags="-s -w -buildid= -X github.com/meshplane/meshplane/internal/metrics.stampedVersion=$version"
	echo ">> building the manager and kubectl-meshplane for linux/$arch" >&2
	CGO_ENABLED=0 GOOS=linux GOARCH="$arch" go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$rootfs/manager" ./cmd/manager
	CGO_ENABLED=0 GOOS=linux GOARCH="$arch" go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$rootfs/kubectl-meshplane" ./cmd/kubectl-meshplane
	local ca
	for ca in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do
		[[ -f $ca ]] && break
	done
	[[ -f $ca ]] || { echo "no CA bundle on this host (install ca-certificates)" >&2; exit 1; }
	cp "$ca" "$rootfs/etc/ssl/certs/ca-certificates.crt"
	printf 'root:x:0:0:root:/:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/tmp:/sbin/nologin\n' >"$rootfs/etc/passwd"
	printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"
	chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group" "$rootfs/etc/ssl/certs/ca-certificates.crt"
	chmod 0755 "$rootfs/manager" "$rootfs/kubectl-meshplane"
	local revision epoch engine
	revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
	epoch="$(git log -1 --format=%ct 2>/dev/null || echo 0)"
	# Same modification times for every file, so layers are reproducible.
	find "$rootfs" -exec touch -h -d "@$epoch" {} +
	engine="$("$ROOT/hack/container.sh" --which)"
	local args=(build -f "$ROOT/Containerfile" -t "$image" --platform "linux/$arch"
		--build-arg "GOARCH=$arch" --build-arg "VERSION=$version" --build-arg "REVISION=$revision")
	if [[ $engine == podman ]]; then
		args+=(--timestamp "$epoch" --network host --pull=never)
	else
		args+=(--build-arg "SOURCE_DATE_EPOCH=$epoch")
	fi
	"$ROOT/hack/container.sh" "${args[@]}" "$ctx" >&2
	echo ">> built $image ($engine, linux/$arch, version $version, revision $revision)" >&2
}

save() {
	local image="$1" file="$2" engine
	engine="$("$ROOT/hack/container.sh" --which)"
	mkdir -p "$(dirname "$file")"
	rm -f "$file"
	if [[ $engine == podman ]]; then
		"$ROOT/hack/container.sh" save --format oci-archive -o "$file" "$image"
	else
		# docker save writes an OCI image layout (Docker 25 and later).
		"$ROOT/hack/container.sh" save -o "$file" "$image"
	fi
	echo ">> wrote $file ($(du -h "$file" | cut -f1)): load it with podman load -i, skopeo copy oci-archive:$file docker://REGISTRY/..., or crane push" >&2
}

case "${1:-}" in
build) shift; build "$@" ;;
tar) shift; save "$@" ;;
*) echo "usage: $0 build IMAGE VERSION [GOARCH] | tar IMAGE FILE" >&2; exit 2 ;;
esac
