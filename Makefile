# kubemetrics metrics-server. `make help` lists the targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c

GO       ?= go
OUTPUT   ?= _output
BINARY   := $(OUTPUT)/metrics-server
# Kubernetes' version parser wants vX.Y.Z first; untagged trees get a dev version.
VERSION  ?= $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null || echo "v0.1.0-dev+$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)")
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w \
	-X k8s.io/component-base/version.gitVersion=$(VERSION) \
	-X k8s.io/component-base/version.gitCommit=$(COMMIT) \
	-X k8s.io/client-go/pkg/version.gitVersion=$(VERSION)
# `make image`: a container tag allows no '+', so a dev VERSION's '+' becomes '-'.
IMAGE    ?= kubemetrics/metrics-server:$(subst +,-,$(VERSION))
IMAGE_TAR ?= $(OUTPUT)/metrics-server-image.tar
# Every timestamp in the image: the commit's time, so two builds of one commit are byte-identical.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 1)
BENCH_OUT ?= $(OUTPUT)/bench
BENCH_COUNT ?= 6
FUZZTIME ?= 30s

K8S_BIN  := test/.cache/bin/v1.37.2
PLAYGROUND_DIR ?= /tmp/kubemetrics-playground
PLAYGROUND := $(OUTPUT)/playground

UPSTREAM := $(OUTPUT)/upstream/metrics-server
FLEET_NODES ?= 100
FLEET_STEADY ?= 1m
FLEET_ARGS ?=
FLEET_SWEEP ?= 100 1000 5000 10000

.PHONY: help build image sbom test unit e2e k8s real-node real-node-down demo-real demo demo-down bench-fleet bench-fleet-sweep bench-fleet-smoke verify vet fmt tidy-check manifests manifests-check bench fuzz generate clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

build: ## build the static binary into _output/metrics-server
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BINARY) ./cmd/metrics-server

image: build ## the image without a Docker engine: _output/metrics-server-image.tar (docker load, ctr import), tagged kubemetrics/metrics-server:VERSION or IMAGE=repo:tag
	cd test && $(GO) run ./cmd/imagebuild -binary $(abspath $(BINARY)) -out $(abspath $(IMAGE_TAR)) -image '$(IMAGE)' \
		-version '$(VERSION)' -revision '$(COMMIT)' -source-date-epoch '$(SOURCE_DATE_EPOCH)'

sbom: image ## SPDX 2.3 SBOMs of the binary and the image from Go's build info (no network, no Docker): _output/sbom/metrics-server.spdx.json, _output/sbom/metrics-server-image.spdx.json
	cd test && $(GO) build -o $(abspath $(OUTPUT))/sbom-tool ./cmd/sbom
	$(OUTPUT)/sbom-tool -binary $(BINARY) -version '$(VERSION)' -source-date-epoch '$(SOURCE_DATE_EPOCH)' -out $(OUTPUT)/sbom/metrics-server.spdx.json
	$(OUTPUT)/sbom-tool -image $(IMAGE_TAR) -version '$(VERSION)' -source-date-epoch '$(SOURCE_DATE_EPOCH)' -out $(OUTPUT)/sbom/metrics-server-image.spdx.json

test: unit e2e ## everything CI runs: unit and in-process tests, then end-to-end tests on a local cluster

unit: ## unit and in-process tests with the race detector
	$(GO) test -race -count=1 ./...

k8s: ## build the pinned Kubernetes components, etcd, kwok v0.8.0 and helm v3.22.0 into test/.cache (once; minutes on a first run)
	test/tools/build-k8s.sh

e2e: k8s $(UPSTREAM) ## end-to-end tests: real control plane on loopback, simulated kubelets, the kubectl we build, the HPA, the VPA recommender, the descheduler
	@# The consumers of test/e2econsumers, built before the tests so their
	@# minutes count against no test's timeout (cached after the first), as
	@# is upstream v0.9.0 (a prerequisite) for test/e2eswap's restart test.
	test/tools/build-k8s.sh vpa-recommender descheduler
	cd test && $(GO) vet ./... && $(GO) test -race -count=1 -timeout 30m ./...

real-node: ## as root: our image installed from the manifests and the chart on a real kubelet v1.37.2 on containerd (bridge kmrn45, 10.45.0.0/24) (docs/real-node.md)
	@[ "$$(id -u)" = 0 ] || { echo "real-node: must run as root (containerd, runc, the kubelet)" >&2; exit 1; }
	test/tools/build-k8s.sh etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy helm
	cd test && REALNODE_REQUIRED=1 $(GO) test -tags realnode -count=1 -v -timeout 45m ./realnode $(if $(REALNODE_RUN),-run '$(REALNODE_RUN)')

demo-real: ## as root: the playground on a real node (containerd, kubelet, our image from manifests/components.yaml, an HPA); Ctrl-C to stop
	@cd test && $(GO) run -tags realnode ./realnode/cmd/missing || { echo "demo-real: 'make demo' runs the playground with simulated kubelets, without root" >&2; exit 1; }
	test/tools/build-k8s.sh etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy helm
	cd test && $(GO) build -tags realnode -o ../$(OUTPUT)/demo-real ./realnode/cmd/demo
	cd test && ../$(OUTPUT)/demo-real -repo ..

real-node-down: ## as root: remove what a killed real-node run or demo-real left (processes, containers, mounts, cgroups, iptables chains, the bridge)
	cd test && $(GO) run -tags realnode ./realnode/cmd/sweep

demo: build k8s ## a local cluster with a small fleet and our server; prints kubectl top; Ctrl-C to stop
	cd test && $(GO) build -o ../$(PLAYGROUND) ./cmd/playground
	@# The built binary, not `go run`: go run exits 1 after Ctrl-C even when
	@# the playground stopped cleanly, and make then reported "Error 1".
	cd test && ../$(PLAYGROUND) -dir $(PLAYGROUND_DIR) -metrics-server ../$(BINARY) -bin ../$(K8S_BIN)

$(UPSTREAM):
	GOBIN=$(abspath $(OUTPUT))/upstream $(GO) install sigs.k8s.io/metrics-server/cmd/metrics-server@v0.9.0

bench-fleet: build k8s $(UPSTREAM) ## side-by-side fleet benchmark against upstream v0.9.0 (FLEET_NODES, FLEET_STEADY, FLEET_ARGS); table, JSON and plot in _output/bench-fleet
	cd test && $(GO) run ./cmd/benchfleet -nodes $(FLEET_NODES) -steady $(FLEET_STEADY) -binary ../$(BINARY) -compare ../$(UPSTREAM) -bin ../$(K8S_BIN) -out ../$(OUTPUT)/bench-fleet $(FLEET_ARGS)

bench-fleet-sweep: build k8s $(UPSTREAM) ## bench-fleet at 100, 1,000, 5,000 and 10,000 nodes (over an hour), one plot
	for n in $(FLEET_SWEEP); do $(MAKE) --no-print-directory bench-fleet FLEET_NODES=$$n; done

bench-fleet-smoke: ## the CI smoke: 100 nodes, one minute, both binaries, our server checked
	$(MAKE) --no-print-directory bench-fleet FLEET_NODES=100 FLEET_STEADY=1m FLEET_ARGS="-check -consumer-window 15s -out ../$(OUTPUT)/bench-fleet-smoke -dir /tmp/kubemetrics-bench-fleet-smoke -address-base 7"

demo-down: ## stop a playground left running
	cd test && $(GO) build -o ../$(PLAYGROUND) ./cmd/playground
	cd test && ../$(PLAYGROUND) -dir $(PLAYGROUND_DIR) -down

verify: fmt vet tidy-check manifests-check ## gofmt, go vet, go mod tidy are clean; the release manifest is current

# The release file is rendered and checked by one Go test (the kustomize
# library kubectl uses), so make and go test cannot disagree.
manifests: ## render the single-file install manifests/components.yaml from manifests/overlays/release
	$(GO) test ./manifests -run '^TestReleaseFileIsCurrent$$' -count=1 -update

manifests-check:
	@$(GO) test ./manifests -run '^TestReleaseFileIsCurrent$$' -count=1 >/dev/null || { \
		echo "manifests/components.yaml is stale (it differs from manifests/overlays/release rendered): run 'make manifests' and commit it"; exit 1; }

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

tidy-check:
	@cp go.mod $(OUTPUT)/go.mod.bak 2>/dev/null || { mkdir -p $(OUTPUT); cp go.mod $(OUTPUT)/go.mod.bak; }
	@cp go.sum $(OUTPUT)/go.sum.bak
	$(GO) mod tidy
	@if ! diff -q go.mod $(OUTPUT)/go.mod.bak >/dev/null || ! diff -q go.sum $(OUTPUT)/go.sum.bak >/dev/null; then \
		echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit"; \
		cp $(OUTPUT)/go.mod.bak go.mod; cp $(OUTPUT)/go.sum.bak go.sum; exit 1; fi

bench: ## run the Go benchmarks, keep the run, compare with the previous one (benchstat)
	@mkdir -p $(BENCH_OUT)
	@if [ -f $(BENCH_OUT)/new.txt ]; then mv $(BENCH_OUT)/new.txt $(BENCH_OUT)/old.txt; fi
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) ./pkg/... | tee $(BENCH_OUT)/new.txt
	@if [ -f $(BENCH_OUT)/old.txt ]; then $(GO) run golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da $(BENCH_OUT)/old.txt $(BENCH_OUT)/new.txt; fi

fuzz: ## run each kubelet decoder fuzzer against its reference (expfmt, encoding/json into the kubelet types) for FUZZTIME
	$(GO) test ./pkg/scraper/kubelet -run '^$$' -fuzz '^FuzzDecodeSummary$$' -fuzztime $(FUZZTIME)
	$(GO) test ./pkg/scraper/kubelet -run '^$$' -fuzz '^FuzzDecodeResource$$' -fuzztime $(FUZZTIME)

generate: ## regenerate the OpenAPI definitions
	$(GO) generate ./pkg/api/...

clean:
	rm -rf $(OUTPUT)
