# Build and test cvmfs-graphdriver.
#
#   make demo       as root: the one-command demo (scripts/demo.sh)
#   make build      bin/cvmfs-graphdriver and bin/docker2cvmfs, version from git
#   make test       as root: vet, unit tests with -race, end-to-end tests
#   make test-unit  unit tests with -race (no root needed)
#   make test-e2e   as root: the plugin under a real dockerd
#   make vet        go vet
#   make clean      remove what the build made

GO      ?= go
BIN     := bin/cvmfs-graphdriver
PKG     := ./cmd/cvmfs-graphdriver
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION)

# The end-to-end tests start daemons and mount overlays: they run only when
# asked to, as root, and never from the test cache.
E2E_ENV     := CVMFS_GRAPHDRIVER_E2E=1
E2E_TIMEOUT ?= 30m

.PHONY: all build test test-unit test-e2e vet clean require-root

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) $(PKG)
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/docker2cvmfs ./cmd/docker2cvmfs

# The README's first command: a private dockerd with the plugin, a regular
# image made thin into a local directory standing for /cvmfs, and a run.
.PHONY: demo demo-clean
demo:
	scripts/demo.sh

demo-clean:
	scripts/demo.sh --clean

test: require-root vet test-unit test-e2e

test-unit:
	$(GO) test -race ./...

test-e2e: require-root
	$(E2E_ENV) $(GO) test -count=1 -v -timeout $(E2E_TIMEOUT) ./test/e2e/

vet:
	$(GO) vet ./...

clean:
	rm -rf bin/

require-root:
	@if [ "$$(id -u)" -ne 0 ]; then \
		echo "this target needs root: the end-to-end tests start dockerd and mount overlays;" >&2; \
		echo "run it as root, or run 'make test-unit' for the tests that need no root" >&2; \
		exit 1; \
	fi

# Figures for docs/whiteouts.md: the AUFS marker walk and whiteout layers.
.PHONY: bench-markers
bench-markers:
	$(GO) test -run '^$$' -bench 'ScanMarkers|BuildWhiteoutLayer' -benchtime 5x ./overlay2/
