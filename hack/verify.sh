#!/usr/bin/env bash
# verify.sh fails when generated files are out of date or the tree is not
# gofmt/tidy clean; make verify then runs make lint (go vet included) and
# make check-contract. It regenerates into the work tree and compares with
# what was there, so it works before and after a commit.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local

fail=0
unformatted="$(gofmt -l $(git ls-files -co --exclude-standard '*.go'))"
if [[ -n "$unformatted" ]]; then
	echo "gofmt: these files need formatting (run make fmt):" >&2
	echo "$unformatted" >&2
	fail=1
fi

generated=(api/v1alpha1/zz_generated.deepcopy.go internal/mesh/linkerd/zz_generated.deepcopy.go config/crd/bases config/rbac/role.yaml
	charts/meshplane/crds charts/meshplane/templates/clusterrole.yaml charts/meshplane/templates/metrics-reader-clusterrole.yaml
	charts/meshplane/Chart.yaml charts/meshplane/values.yaml bundle
	config/argocd/meshplane.io config/argocd/argocd-cm-patch.yaml)
before="$(mktemp -d)"
trap 'rm -rf "$before"' EXIT
for p in "${generated[@]}"; do
	[[ -e "$p" ]] && mkdir -p "$before/$(dirname "$p")" && cp -r "$p" "$before/$p"
done
make -s generate manifests chart bundle argocd >/dev/null
for p in "${generated[@]}"; do
	if ! diff -r "$before/$p" "$p" >/dev/null 2>&1; then
		echo "generated file $p was out of date (regenerated now; commit the result):" >&2
		diff -r "$before/$p" "$p" | head -40 >&2 || true
		fail=1
	fi
done

if ! go mod tidy -diff >/dev/null 2>&1; then
	echo "go.mod/go.sum are not tidy (run go mod tidy):" >&2
	go mod tidy -diff >&2 || true
	fail=1
fi
# go vet is not run here: make verify runs make lint next, whose govet runs
# go vet's analyzers over the same packages (tests included).
[[ $fail == 0 ]] && echo ">> verify: generated code, CRDs, RBAC, gofmt and go.mod are clean" >&2
exit $fail
