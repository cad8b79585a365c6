# Meshplane — everything a fresh machine with only Go needs.
#   make demo   simulated cluster + CRDs + manager + samples (first run builds the cluster binaries)
#   make test   verify generated code, build test assets, run unit, envtest and simulated-cluster tests

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec
.DEFAULT_GOAL := help

ROOT := $(shell pwd)
BIN_DIR := $(ROOT)/bin
CRD_CACHE := $(ROOT)/.cache/crds
DEMO_DIR := $(ROOT)/.demo
export GOTOOLCHAIN := local
export MESHPLANE_BIN_DIR := $(BIN_DIR)
export MESHPLANE_CRD_DIR := $(CRD_CACHE)

# The one place of the version and the image: `make image` builds and stamps
# $(IMG); `make chart` and `make bundle` write the same reference into the
# chart's values/appVersion and the CSV's containerImage/relatedImages.
VERSION := $(shell cat $(ROOT)/VERSION)
IMAGE_REPO ?= ghcr.io/meshplane/meshplane
IMG ?= $(IMAGE_REPO):v$(VERSION)
GOARCH ?= $(shell go env GOARCH)
IMAGE_TAR ?= $(ROOT)/dist/meshplane-v$(VERSION)-linux-$(GOARCH).oci.tar

CONTROLLER_GEN := go run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0
GOLANGCI_LINT := go run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
GO_TEST_FLAGS ?= -count=1 -timeout 30m
PKGS ?= ./...

##@ General

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make <target>\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  %-16s %s\n", $$1, $$2 } /^##@/ { printf "\n%s\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: generate
generate: ## Generate deepcopy code.
	$(CONTROLLER_GEN) object paths=./api/... paths=./internal/mesh/linkerd/...

.PHONY: manifests
manifests: ## Generate CRDs and RBAC from the API and controller markers.
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=manager-role paths=./... output:rbac:artifacts:config=config/rbac

.PHONY: docs
docs: ## Regenerate docs generated from code (capability matrix, resilience fields).
	go test ./internal/mesh/providers -run 'TestCapabilityMatrixDoc|TestResilienceDoc' -update

.PHONY: chart
chart: ## Sync the Helm chart's CRDs and ClusterRole from config/ (charts/meshplane).
	go run ./hack/chart -version $(VERSION) -image-repo $(IMAGE_REPO)

.PHONY: bundle
bundle: ## Generate the OperatorHub bundle into bundle/ from config/ (hack/bundle).
	go run ./hack/bundle -version $(VERSION) -image $(IMG)

.PHONY: argocd
argocd: ## Generate the Argo CD health checks in config/argocd from config/argocd/src (hack/argocd).
	go run ./hack/argocd

.PHONY: fmt
fmt: ## gofmt the tree.
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## go vet.
	go vet ./...

.PHONY: lint
lint: ## golangci-lint (.golangci.yml): go vet's analyzers, staticcheck, importas, errorlint, an 80-line function limit.
	$(GOLANGCI_LINT) run --allow-serial-runners ./...

.PHONY: check-contract
check-contract: ## No mesh names or mesh packages in controllers/ (but meshrevision); no run of more than 10 lines shared by two controller packages.
	go run ./hack/checkcontract

.PHONY: verify
verify: ## Fail when generated code or CRDs are stale, gofmt/go mod tidy/lint (with go vet) are not clean, or the provider contract is broken.
	./hack/verify.sh
	$(MAKE) -s lint
	$(MAKE) -s check-contract

.PHONY: build
build: ## Build the manager and the kubectl plugin into bin/.
	go build -o $(BIN_DIR)/manager ./cmd/manager
	go build -o $(BIN_DIR)/kubectl-meshplane ./cmd/kubectl-meshplane

##@ Image

.PHONY: image
image: ## Build the image $(IMG) (Containerfile, FROM scratch; podman or docker; GOARCH=arm64 for another architecture).
	./hack/image.sh build $(IMG) $(VERSION) $(GOARCH)

.PHONY: image-tar
image-tar: image ## Write $(IMG) as an OCI archive to $(IMAGE_TAR) (for air-gapped registries).
	./hack/image.sh tar $(IMG) $(IMAGE_TAR)

##@ Test

.PHONY: test-assets
test-assets: ## Build kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd, kwok, kwokctl into bin/ (reused when present).
	./hack/build-cluster-bins.sh

.PHONY: test-crds
test-crds: ## Collect the real Istio, Gateway API, Cilium and Linkerd CRDs from their Go modules into .cache/crds.
	go run ./hack/collectcrds -out $(CRD_CACHE)

.PHONY: test
test: verify test-assets test-crds fuzz-smoke ## Run every test: unit, envtest and simulated-cluster end to end.
	go test $(GO_TEST_FLAGS) $(PKGS)

FUZZ_TARGETS := FuzzTrafficSplitTranslation FuzzZeroTrustPolicyTranslation FuzzEgressPolicyTranslation FuzzIngressGatewayTranslation FuzzProxyPolicyTranslation
FUZZ_PKG := ./internal/mesh/providers
FUZZ_TIME ?= 10s

.PHONY: fuzz-smoke
fuzz-smoke: test-crds ## Run each translation fuzz target briefly (FUZZ_TIME, 10s).
	for f in $(FUZZ_TARGETS); do go test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZ_TIME) -parallel 1 $(FUZZ_PKG); done

FUZZ_LONG ?= 5m

ORACLE_SPECS ?= 20000

.PHONY: fuzz
fuzz: ## Run each translation fuzz target and the semantic oracle (test/oracle) longer (FUZZ_LONG, 5m; ORACLE_SPECS random specs).
	$(MAKE) fuzz-smoke FUZZ_TIME=$(FUZZ_LONG)
	go test -count=1 -run '^TestOracle$$' ./test/oracle -oracle.specs=$(ORACLE_SPECS)
	go test -run '^$$' -fuzz '^FuzzOracle$$' -fuzztime $(FUZZ_LONG) -parallel 1 ./test/oracle

.PHONY: bench
bench: test-assets test-crds ## Run the benchmarks under test/bench (not part of make test) and print their figures.
	@pkgs="$$(go list ./test/bench/... 2>/dev/null || true)"; \
	if [[ -z "$$pkgs" ]]; then echo "no benchmarks yet"; exit 0; fi; \
	go test -count=1 -timeout 60m -run '^$$' -bench . -benchtime 1x $$pkgs

.PHONY: test-unit
test-unit: ## Run only the tests that need no cluster.
	go test $(GO_TEST_FLAGS) -short $(PKGS)

##@ Demo

.PHONY: demo
demo: build test-assets test-crds ## Start the simulated cluster, install CRDs, run the manager, apply the samples.
	go build -o $(BIN_DIR)/meshplane-demo ./hack/demo
	$(BIN_DIR)/meshplane-demo up -dir $(DEMO_DIR)

.PHONY: demo-down
demo-down: ## Stop the demo cluster and remove its data.
	go build -o $(BIN_DIR)/meshplane-demo ./hack/demo
	$(BIN_DIR)/meshplane-demo down -dir $(DEMO_DIR)

.PHONY: clean
clean: ## Remove built binaries and caches (keeps the Go module cache).
	rm -rf $(BIN_DIR) $(ROOT)/.cache
