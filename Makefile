# cocobuild: build, test, demo, lint, fuzz, bench.
GO        ?= go
BIN       ?= bin/cocobuild
FUZZTIME  ?= 30s
VECTORS   ?= $(abspath ../shared/vectors)
export COCOBUILD_VECTORS ?= $(VECTORS)

.PHONY: build test demo lint fuzz bench clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/cocobuild

# The test command of the README (and of .ci/run).
test:
	$(GO) vet ./...
	$(GO) test -timeout 20m ./...

# The main job: build the sample recipe and show what it made.
demo: build
	./$(BIN) build recipes/sample
	@echo
	@echo "Try: ./$(BIN) plan recipes/sample   (everything is cached now)"

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "run gofmt -w"; exit 1; }
	$(GO) vet ./...
	./$(BIN) fmt -check recipes/sample 2>/dev/null || $(GO) run ./cmd/cocobuild fmt -check recipes/sample

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
