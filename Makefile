# ceylon-go: see README.md. `make run` runs the main example, `make test`
# runs everything CI runs.
GO       ?= go
PKGS     := ./...
FUZZTIME ?= 30s
export GOLOG_LOG_LEVEL ?= error

.PHONY: run test lint vet fmt-check bench fuzz tidy

run:
	$(GO) run ./examples/skill_routing

test: lint
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

lint: fmt-check vet

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

# Each fuzz target runs for FUZZTIME (not part of `make test`).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeEnvelope$$' -fuzztime $(FUZZTIME) ./messages

tidy:
	$(GO) mod tidy
