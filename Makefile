# cocobuild: build, test, demo, lint, fuzz, bench.
GO        ?= go
BIN       ?= bin/cocobuild
FUZZTIME  ?= 30s
VECTORS   ?= $(abspath ../shared/vectors)
export COCOBUILD_VECTORS ?= $(VECTORS)

.PHONY: build test demo lint fuzz bench clean deps demo-deps

# Debian packages: what building the sample needs, and what the tests use
# (.ci/run installs the same list).
DEMO_PKGS = erofs-utils qemu-utils \
            gcc libc6-dev make binutils flex bison bc perl tar xz-utils libelf-dev libssl-dev
TEST_PKGS = $(DEMO_PKGS) zstd cpio osslsigncode qemu-system-x86 ovmf uefitool-cli \
            cryptsetup-bin squashfs-tools e2fsprogs dosfstools mtools gdisk docker-registry
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
define install
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing:" $$missing; \
	  $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends $$missing; fi
endef

demo-deps:
	$(call install,$(DEMO_PKGS))

deps:
	$(call install,$(TEST_PKGS))

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/cocobuild

# The test command of the README (and of .ci/run). The timeout leaves room
# for the one cold build of the sample's kernel on a fresh machine (10-20
# minutes on 2 cores); the tests share it through the cocobuild cache.
test: deps
	$(GO) vet ./...
	$(GO) test -timeout 50m ./...

# The main job: build the sample recipe, print its measurements, publish
# signed reference values (to OUT/publish and the feed out/feed), verify them.
PUB = out/sample/publish/sample
# TDX's RTMR0 covers the ACPI tables of the QEMU the TDs run on: the sample
# models Debian forky's QEMU 11.1.2, which scripts/tdx-qemu fetches (pinned)
# into the cache once.
TOOLS ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/cocobuild/tools
demo: demo-deps build
	qemu=$$(scripts/tdx-qemu $(TOOLS)/qemu-forky) && \
	./$(BIN) build -var 'feeds=["dir:out/feed"]' -var "acpi_qemu=$$qemu" recipes/sample
	@echo
	@echo "The sample is signed with the public DEVELOPMENT key on purpose (anyone can rebuild it"
	@echo "byte for byte); it proves nothing, so verify accepts it only with --allow-dev-key, and"
	@echo "with the key 'cocobuild keygen --dev' shows, never the cosign.pub inside the release."
	devpub=$$(./$(BIN) keygen --dev 2>/dev/null | sed -n 's/^public key: *//p') && test -n "$$devpub" && \
	./$(BIN) verify --allow-dev-key --key "$$devpub" $(PUB) && \
	./$(BIN) verify --allow-dev-key --key "$$devpub" --state out/verify-state --name sample dir:out/feed && \
	echo && \
	echo "Verify the RVPS message with cosign:  cosign verify-blob --key $$devpub --signature $(PUB)/rvps.json.sig --insecure-ignore-tlog $(PUB)/rvps.json" && \
	echo "  (a real release: --key with the publisher's public key obtained out of band, and no --allow-dev-key)"
	@echo "Register it with Trustee:             rvps-tool register --path $(PUB)/rvps.json"
	@echo "Serve the feed to verifiers:          ./$(BIN) serve out/feed --addr 127.0.0.1:8080"
	@echo "Rebuild (nothing runs, all cached):   ./$(BIN) plan recipes/sample"

# Unformatted code, go vet findings, an untidy go.mod or an unformatted
# shipped recipe fail the lint (CI runs it first).
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "run gofmt -w"; exit 1; }
	$(GO) vet ./...
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	$(GO) run ./cmd/cocobuild fmt -check recipes/sample recipes/prebuilt

# Every fuzz target for FUZZTIME each (make fuzz FUZZTIME=5m).
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; \
	    $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -parallel 1 $$pkg || exit 1; \
	  done; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin out
