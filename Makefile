# Build and test cvmfs-graphdriver.
#
#   make demo       as root: the one-command demo (scripts/demo.sh)
#   make build      bin/cvmfs-graphdriver and bin/docker2cvmfs, version from git
#   make test       as root: vet, unit tests with -race, end-to-end tests
#   make test-unit  unit tests with -race (no root needed)
#   make test-e2e   as root: the plugin under a real dockerd
#   make test-aufs  as root, on a kernel with aufs: the aufs backend's tests
#                   mounting the kernel's aufs; fails when aufs is missing
#   make vet        go vet
#   make bench      as root: the benchmarks (BENCHMARKS.md), under 30 minutes
#   make bench-quick
#                   as root: the same with a small image, under 5 minutes
#   make bench-applydiff
#                   ApplyDiff of 3,000 small files against GNU tar
#   make clean      remove what the build made
#
# The managed (v2) plugin, against the daemon DOCKER_HOST names:
#
#   make plugin-dir     build/plugin/{config.json,rootfs/}, no daemon needed;
#                       with CVMFS_CLIENT=/usr/bin/cvmfs2, as root, the host's
#                       CernVM-FS client goes in too, for MOUNT_METHOD=internal
#   make plugin         plugin-dir, then docker plugin create $(PLUGIN_NAME)
#   make plugin-enable  docker plugin enable $(PLUGIN_NAME)
#   make install        plugin, docker plugin set $(PLUGIN_SETTINGS), enable
#   make plugin-push REGISTRY=host:port
#                       create $(REGISTRY)/$(PLUGIN_NAME):$(PLUGIN_TAG), push it
#   make plugin-image   the same root file system as an image, with Dockerfile

GO      ?= go
BIN     := bin/cvmfs-graphdriver
PKG     := ./cmd/cvmfs-graphdriver
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION)

# The end-to-end tests start daemons and mount overlays: they run only when
# asked to, as root, and never from the test cache.
E2E_ENV     := CVMFS_GRAPHDRIVER_E2E=1
E2E_TIMEOUT ?= 30m

.PHONY: all build test test-unit test-e2e test-aufs vet clean require-root

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

# Without this the aufs tests mount through an emulator of aufs's branch
# rules, since most kernels, this project's CI included, have no aufs.
test-aufs: require-root
	CVMFS_GRAPHDRIVER_AUFS=1 $(GO) test -count=1 -v ./aufs/

vet:
	$(GO) vet ./...

clean:
	rm -rf bin/ build/

require-root:
	@if [ "$$(id -u)" -ne 0 ]; then \
		echo "this target needs root: the end-to-end tests start dockerd and mount overlays;" >&2; \
		echo "run it as root, or run 'make test-unit' for the tests that need no root" >&2; \
		exit 1; \
	fi

# The benchmarks: bench/ is a program that starts its own daemons, registry
# and file server, and writes bench/results/. Built images are kept in
# BENCH_CACHE between runs; bench-clean removes them.
BENCH_OUT   ?= bench/results
BENCH_CACHE ?= /var/cache/cvmfs-bench
BENCH_FLAGS ?=

.PHONY: bench bench-quick bench-deps bench-clean
bench: require-root bench-deps
	$(GO) run ./bench --out $(BENCH_OUT) --cache $(BENCH_CACHE) $(BENCH_FLAGS)

bench-quick: require-root bench-deps
	$(GO) run ./bench --quick --out $(BENCH_OUT)/quick --cache $(BENCH_CACHE) $(BENCH_FLAGS)

bench-deps: require-root
	scripts/bench-deps.sh

bench-clean:
	rm -rf $(BENCH_CACHE)

# Figures for docs/whiteouts.md: the AUFS marker walk and whiteout layers.
.PHONY: bench-markers bench-applydiff
bench-markers:
	$(GO) test -run '^$$' -bench 'ScanMarkers|BuildWhiteoutLayer' -benchtime 5x ./overlay2/

# ApplyDiff of a commit-sized layer against go-archive's Unpack and GNU tar
# (BENCHMARKS.md, docker commit); the driver's part needs root.
bench-applydiff:
	$(GO) test -run '^$$' -bench 'ApplyDiff' -benchtime 5x ./overlay2/

# The managed plugin. Its root file system is made of plain files, without
# docker and without a base image: a static binary and the empty directories
# the runtime mounts over. Every file gets the same fixed time, so that the
# same commit gives the same tree and the same layer digest.
DOCKER          ?= docker
PLUGIN_NAME     ?= cvmfs/overlay2-graphdriver
PLUGIN_TAG      ?= latest
PLUGIN_DIR      ?= build/plugin
PLUGIN_SETTINGS ?=
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
PLUGIN_LDFLAGS  := -s -w -buildid= -X main.version=$(VERSION)
# Mount points inside the plugin: the runtime's own, /cvmfs, and the
# propagated mount that holds dockerd's layers and the plugin's state.
PLUGIN_MOUNTPOINTS := dev proc sys tmp cvmfs run/docker/plugins var/lib/docker-graph
# A CernVM-FS client of this machine to stage into the root file system
# (scripts/stage-cvmfs-client.sh), with its configuration and user.
CVMFS_CLIENT ?=
CVMFS_CONFIG ?= /etc/cvmfs
CVMFS_USER   ?= cvmfs

.PHONY: plugin-dir plugin plugin-enable plugin-push plugin-image install

plugin-dir:
	rm -rf $(PLUGIN_DIR)
	mkdir -p $(PLUGIN_DIR)/rootfs
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags "$(PLUGIN_LDFLAGS)" \
		-o $(PLUGIN_DIR)/rootfs/cvmfs-graphdriver $(PKG)
	cd $(PLUGIN_DIR)/rootfs && mkdir -p $(PLUGIN_MOUNTPOINTS) && \
		find . -type d -exec chmod 755 {} + && chmod 1777 tmp && chmod 755 cvmfs-graphdriver
	$(if $(strip $(CVMFS_CLIENT)),CVMFS_CONFIG=$(CVMFS_CONFIG) CVMFS_USER=$(CVMFS_USER) \
		scripts/stage-cvmfs-client.sh $(PLUGIN_DIR)/rootfs $(CVMFS_CLIENT))
	sed 's|^\(  "description": ".*\)",$$|\1 (version $(VERSION))",|' config.json >$(PLUGIN_DIR)/config.json
	grep -q '(version $(VERSION))' $(PLUGIN_DIR)/config.json
	find $(PLUGIN_DIR) -exec touch -h -d @$(SOURCE_DATE_EPOCH) {} +

plugin: plugin-dir
	$(DOCKER) plugin create $(PLUGIN_NAME):$(PLUGIN_TAG) $(PLUGIN_DIR)

plugin-enable:
	$(DOCKER) plugin enable $(PLUGIN_NAME):$(PLUGIN_TAG)

install: plugin
	$(if $(strip $(PLUGIN_SETTINGS)),$(DOCKER) plugin set $(PLUGIN_NAME):$(PLUGIN_TAG) $(PLUGIN_SETTINGS))
	$(DOCKER) plugin enable $(PLUGIN_NAME):$(PLUGIN_TAG)
	@echo "installed $(PLUGIN_NAME):$(PLUGIN_TAG); now run dockerd with --experimental -s $(PLUGIN_NAME)"

# The plugin is created under its name in the registry only to push it, and
# removed again: dockerd 20.10 refuses to create a second plugin from the
# same layer ("content ... already exists"), so a copy left behind would
# block `make plugin` on this daemon, and one already there blocks this.
plugin-push: plugin-dir
	@if [ -z "$(REGISTRY)" ]; then echo "plugin-push needs REGISTRY=host:port" >&2; exit 1; fi
	$(DOCKER) plugin create $(REGISTRY)/$(PLUGIN_NAME):$(PLUGIN_TAG) $(PLUGIN_DIR)
	$(DOCKER) plugin push $(REGISTRY)/$(PLUGIN_NAME):$(PLUGIN_TAG); \
		status=$$?; $(DOCKER) plugin rm $(REGISTRY)/$(PLUGIN_NAME):$(PLUGIN_TAG) && exit $$status

plugin-image: plugin-dir
	DOCKER_BUILDKIT=0 $(DOCKER) build -f Dockerfile -t $(PLUGIN_NAME)-rootfs:$(PLUGIN_TAG) $(PLUGIN_DIR)/rootfs
