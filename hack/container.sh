#!/usr/bin/env bash
# container.sh runs a container engine command with what this project needs:
#   hack/container.sh <engine arguments...>     e.g. hack/container.sh images
#   hack/container.sh --which                   prints the engine it would use
# It uses podman when it works, else docker when its daemon answers. With
# neither, and CI=true, it installs podman and runc with apt-get. Podman gets
# the settings sandboxes like this one need: runtime runc, cgroupfs as the
# cgroup manager, host networking and no default ulimits (a containers.conf
# under .cache/containers, selected with CONTAINERS_CONF). Exit status 3
# means no engine can run here.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CONF_DIR="$ROOT/.cache/containers"

podman_conf() {
	mkdir -p "$CONF_DIR"
	cat >"$CONF_DIR/containers.conf" <<'CONF'
# Written by hack/container.sh.
[containers]
# The sandbox refuses to raise rlimits: set none by default.
default_ulimits = []
netns = "host"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
	export CONTAINERS_CONF="$CONF_DIR/containers.conf"
}

podman_ok() {
	command -v podman >/dev/null 2>&1 || return 1
	podman_conf
	podman --runtime runc --cgroup-manager cgroupfs info >/dev/null 2>&1
}

docker_ok() {
	command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1
}

install_podman() {
	command -v apt-get >/dev/null 2>&1 || return 1
	echo ">> installing podman and runc with apt-get (CI=true, no container engine works)" >&2
	local sudo=""
	[[ $(id -u) == 0 ]] || sudo="sudo -n"
	# Another process may hold the dpkg lock for a while.
	$sudo apt-get -o DPkg::Lock::Timeout=300 update -qq >&2 || true
	DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
		podman runc uidmap fuse-overlayfs >&2
}

engine() {
	if podman_ok; then echo podman; return; fi
	if docker_ok; then echo docker; return; fi
	if [[ "${CI:-}" == "true" ]] && install_podman && podman_ok; then echo podman; return; fi
	return 1
}

if ! e="$(engine)"; then
	echo "no container engine can run here: podman is not installed (apt-get install podman runc, or CI=true make image) and docker has no daemon" >&2
	exit 3
fi
if [[ "${1:-}" == "--which" ]]; then
	echo "$e"
	exit 0
fi
if [[ $e == podman ]]; then
	podman_conf
	exec podman --runtime runc --cgroup-manager cgroupfs "$@"
fi
exec docker "$@"
