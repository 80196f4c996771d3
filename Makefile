# cocobuild: build, test, demo, lint, fuzz, bench.
GO        ?= go
BIN       ?= bin/cocobuild
FUZZTIME  ?= 30s
VECTORS   ?= $(abspath ../shared/vectors)
export COCOBUILD_VECTORS ?= $(VECTORS)

.PHONY: build test demo lint fuzz bench clean deps demo-deps tools

# Tools kept between runs (the cocobuild tools cache).
TOOLS ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/cocobuild/tools
# cosign and oras, the clients the tests check published documents with,
# built from the Go module proxy at pinned versions (internal/testenv's
# GoTools pins the same) into a directory kept between runs. The tests find
# them through $$COCOBUILD_TOOLS_BIN.
TOOLS_BIN ?= $(TOOLS)/go-bin
GO_TOOLS   = github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3 oras.land/oras/cmd/oras@v1.3.6
export COCOBUILD_TOOLS_BIN ?= $(abspath $(TOOLS_BIN))

# Debian packages: what building the sample needs, and what the tests use
# (.ci/run installs the same list).
DEMO_PKGS = erofs-utils qemu-utils mmdebstrap apt-utils uidmap fakeroot \
            gcc libc6-dev make binutils flex bison bc perl tar xz-utils libelf-dev libssl-dev
TEST_PKGS = $(DEMO_PKGS) zstd cpio osslsigncode qemu-system-x86 ovmf uefitool-cli \
            cryptsetup-bin squashfs-tools e2fsprogs dosfstools mtools gdisk docker-registry systemd \
            systemd-boot-efi sbsigntool swtpm tpm2-tools fakechroot \
            linux-source
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
define install
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing:" $$missing; \
	  $(SUDO) apt-get -o DPkg::Lock::Timeout=600 update -q && $(SUDO) apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $$missing; fi
endef

demo-deps:
	$(call install,$(DEMO_PKGS))

deps:
	$(call install,$(TEST_PKGS))

# Installs each of GO_TOOLS with `go install` unless TOOLS_BIN already holds
# it at the pinned version (go version -m reads the module version a binary
# was built from): building cosign takes minutes, once.
tools:
	@mkdir -p "$(COCOBUILD_TOOLS_BIN)"
	@for t in $(GO_TOOLS); do \
	  pkg=$${t%@*}; ver=$${t#*@}; mod=$${pkg%/cmd/*}; bin="$(COCOBUILD_TOOLS_BIN)/$${pkg##*/}"; \
	  if $(GO) version -m "$$bin" 2>/dev/null | grep -qF "$$(printf '\tmod\t%s\t%s\t' "$$mod" "$$ver")"; then \
	    echo "$$bin: $$mod $$ver"; \
	  else \
	    echo "go install $$t (into $(COCOBUILD_TOOLS_BIN))"; \
	    GOBIN="$(COCOBUILD_TOOLS_BIN)" $(GO) install "$$t" || exit 1; \
	  fi; \
	done

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/cocobuild

# The test command of the README (and of .ci/run). The timeout leaves room
# for the one cold build of the sample's kernel on a fresh machine (10-20
# minutes on 2 cores); the tests share it through the cocobuild cache.
test: deps tools
	$(GO) vet ./...
	$(GO) test -timeout 50m ./...

# The main job: build the sample recipe, print its measurements, publish
# signed reference values (to OUT/publish and the feed out/feed), verify them.
PUB = out/sample/publish/sample
# The predicate type of the in-toto statement (publish.PredicateType).
PREDICATE_TYPE = https://github.com/cocobuild/cocobuild/reference-values/v1
# TDX's RTMR0 covers the ACPI tables of the QEMU the TDs run on: the sample
# models Debian forky's QEMU 11.1.2, which scripts/tdx-qemu fetches (pinned)
# into the cache once.
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
	echo "Verify the RVPS message with cosign v3:  cosign verify-blob --key $$devpub --bundle $(PUB)/rvps.json.sigstore.json --insecure-ignore-tlog $(PUB)/rvps.json" && \
	echo "Verify the statement with cosign v3:     COSIGN_MAX_ATTACHMENT_SIZE=1GiB cosign verify-blob-attestation --key $$devpub --type $(PREDICATE_TYPE) --bundle $(PUB)/statement.sigstore.json --insecure-ignore-tlog out/sample/disk/guest/disk.qcow2" && \
	echo "  (COSIGN_MAX_ATTACHMENT_SIZE: the disk is over the 128 MiB cosign reads by default)" && \
	echo "  (--type: cosign finds only the predicate types it knows by name without it)" && \
	echo "  (a real release: --key with the publisher's public key obtained out of band, and no --allow-dev-key)" && \
	if [ -x "$(COCOBUILD_TOOLS_BIN)/cosign" ]; then \
	  echo "Running them with $(COCOBUILD_TOOLS_BIN)/cosign (make tools):" && \
	  "$(COCOBUILD_TOOLS_BIN)/cosign" verify-blob --key "$$devpub" --bundle $(PUB)/rvps.json.sigstore.json --insecure-ignore-tlog $(PUB)/rvps.json && \
	  COSIGN_MAX_ATTACHMENT_SIZE=1GiB "$(COCOBUILD_TOOLS_BIN)/cosign" verify-blob-attestation --key "$$devpub" --type $(PREDICATE_TYPE) --bundle $(PUB)/statement.sigstore.json --insecure-ignore-tlog out/sample/disk/guest/disk.qcow2; \
	fi
	@echo "Register it with Trustee:             rvps-tool register --path $(PUB)/rvps.json"
	@echo "Serve the feed to verifiers:          ./$(BIN) serve out/feed --addr 127.0.0.1:8080"
	@echo "Rebuild (nothing runs, all cached):   ./$(BIN) plan recipes/sample"
	@echo
	@echo "The peer-pod variant: the same guest booted as a UKI from its disk, and its vTPM PCRs (tpm_pcr11, snp_pcr11, tdx_pcr11):"
	./$(BIN) build recipes/peerpod

# Unformatted code, go vet findings, an untidy go.mod or an unformatted
# shipped recipe fail the lint (CI runs it first).
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "run gofmt -w"; exit 1; }
	$(GO) vet ./...
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	$(GO) run ./cmd/cocobuild fmt -check recipes/sample recipes/prebuilt recipes/peerpod

# Every fuzz target for FUZZTIME each (make fuzz FUZZTIME=5m). Minimizing is
# bounded in runs: with go test's default (60s per input) a target whose
# seed is a few KB (an SNP report, a TDX quote) spent a 45s run minimizing
# its first new input, 3 inputs run in all.
FUZZMINIMIZE ?= 200x
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; \
	    $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZE) -parallel 1 $$pkg || exit 1; \
	  done; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin out
