# bcloud: two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
BIN := bin
CMDS := wal-archive wal-restore check-wal-archive backup restore backup-list backup-show backup-delete backup-keep
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/bcloud-dev/bcloud/internal/cli.Version=$(VERSION)
# Packages whose tests are slow or need every real part run after the fast ones.
TEST_TIMEOUT ?= 25m

.PHONY: all build deps test test-short demo lint fmt vet fuzz bench bench-wal bench-backup e2e clean help

all: build

help:
	@echo "make demo    archive, back up, change data, restore to a point in time, verify (file:// store)"
	@echo "make test    install what tests need (.cache/) and run every test"
	@echo "make build   bin/bcloud and the bin/barman-cloud-<cmd> links"
	@echo "make lint    golangci-lint with the layer rules"
	@echo "make bench   benchmarks side by side with barman-cloud and pgBackRest"

build:
	@mkdir -p $(BIN)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/bcloud ./cmd/bcloud
	@for c in $(CMDS); do ln -sf bcloud $(BIN)/barman-cloud-$$c; done

deps:
	scripts/deps.sh all

test: deps build
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed on:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) test -timeout $(TEST_TIMEOUT) -p 2 ./...
	FUZZTIME=3s scripts/fuzz.sh
	scripts/e2e.sh

test-short: build
	$(GO) test -short ./...

demo: build
	scripts/demo.sh

lint:
	scripts/deps.sh lint
	.cache/bin/golangci-lint run ./...

fuzz:
	scripts/fuzz.sh

fmt:
	gofmt -w $$(git ls-files '*.go')

vet:
	$(GO) vet ./...

bench: bench-wal bench-backup

bench-wal: deps build
	scripts/bench-wal.sh

bench-backup: deps build
	scripts/bench-backup.sh

# e2e: the real CloudNativePG 1.30 operator and instance manager with bcloud
# as the plugin, on an envtest API server (own module test/e2e; needs root).
e2e: deps build
	scripts/e2e.sh

clean:
	rm -rf $(BIN)

# --- Kubernetes API (api/v1) and manifests (config/, manifest.yaml) ---
CONTROLLER_GEN ?= .cache/bin/controller-gen
IMG ?= ghcr.io/bcloud-dev/bcloud:latest

.PHONY: generate manifests

# generate: deepcopy functions of api/v1.
generate:
	scripts/deps.sh controller-gen
	$(CONTROLLER_GEN) object paths=./api/...

# manifests: the ObjectStore CRD from api/v1, then manifest.yaml from config/.
manifests: generate
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:dir=config/crd/bases
	IMG=$(IMG) scripts/manifest.sh
