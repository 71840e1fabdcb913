# ceylon-go: see README.md. `make run` runs the main example, `make test`
# runs everything CI runs.
GO       ?= go
PKGS     := ./...
FUZZTIME ?= 30s
export GOLOG_LOG_LEVEL ?= error
# A binary built with the race detector sleeps a second when it exits with
# status 0 (the race runtime's atexit_sleep_ms): every test binary, and
# every command, example or manager process the tests start and let end.
# Dozens of such exits made up a fifth of the tests' wall time.
export GORACE ?= atexit_sleep_ms=0

.PHONY: run test lint vet staticcheck fmt-check bench bench-scale fuzz tidy breakages

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

run:
	$(GO) run ./examples/skill_routing

# Three test binaries at once on two cores: much of the tests' time is
# spent waiting (for processes, namespaces, browsers, timeouts), and with
# go test's default of one per core the machine idled a quarter of the
# run. go test starts packages in the order given: the four longest go
# first, or they start last and run alone (97 s -> 70 s here). Vet ran in
# lint already. -trimpath keeps the checkout's directory out of the build
# cache's keys: a fresh clone reuses what another checkout compiled.
SLOWPKGS := ./internal/hatest ./task ./examples/skill_routing ./peer
test: lint
	$(GO) test -trimpath -race -p 3 -vet=off -count=1 -timeout 30m $(SLOWPKGS) $(PKGS)
	# The tests on a simulated network (testing/synctest) once more without
	# the race detector, which they trip a Go runtime bug with (peer/race_test.go).
	$(GO) test -trimpath -count=1 -run '^TestSim' ./peer

lint: fmt-check vet staticcheck

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)

staticcheck:
	$(GO) run $(STATICCHECK) $(PKGS)

# Benchmarks that start a second OS process (agents, workers) say so in
# their doc comments; figures are per run on this machine, so run twice.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./messages
	$(GO) test -run '^$$' -bench 'Direct|Broadcast|TCPFloor|LocalRoundTrip' -benchtime 2s ./agent
	$(GO) test -run '^$$' -bench 'TaskThroughput|TaskSubmit' -benchtime 20000x ./task # with and without the journal; Submit and SubmitAsync from one goroutine
	$(GO) test -run '^$$' -bench 'TaskRoundTrip' -benchtime 1000x ./task
	$(GO) test -run '^$$' -bench 'RemoteProducer' -benchtime 20000x ./task # producer in a third process, with and without the journal
	cd internal/brokerbench && $(GO) test -run '^$$' -bench JetStream -benchtime 20000x # NATS JetStream on the same workload and layout (a module of its own)
	cd internal/brokerbench && $(GO) test -run '^$$' -bench CommitFloor -benchtime 2000x # one synced commit: append+fdatasync, bbolt, pebble
	$(GO) test -run '^$$' -bench 'JoinByWorkspaceID' -benchtime 20x ./task
	$(GO) test -run '^$$' -bench 'RelayedWorker' -benchtime 20000x ./internal/nattest # needs root (namespaces); skips otherwise
	$(GO) test -run '^$$' -bench 'DAG|PendingMemory' -benchtime 100000x -timeout 30m ./playground
	$(GO) test -run '^$$' -bench 'ReplicatedThroughput' -benchtime 20000x ./internal/hatest # one manager on its journal, then three replicating, in processes
	$(GO) test -run '^$$' -bench 'Failover' -benchtime 1x -v ./internal/hatest # ten leader SIGKILLs

# A workspace of 25 to 1,000 workers, each its own agent and libp2p host,
# in 4 child processes around one manager (see internal/scalebench).
# CEYLON_SCALE_SIZES=25,100 picks sizes; CEYLON_SCALE_PROFILE=dir writes
# CPU and heap profiles.
bench-scale:
	$(GO) test -run '^$$' -bench Scale -benchtime 1x -timeout 60m -v ./internal/scalebench

# One-line breakages of important checks, each of which a unit test must
# catch (see scripts/breakages.sh); every line it prints should say FAIL.
breakages:
	bash scripts/breakages.sh

# Each fuzz target runs for FUZZTIME (not part of `make test`); an input
# found interesting is minimized for 2,000 runs at most (the default, 60 s
# each, starves the fuzzing itself).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeEnvelope$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2000x ./messages
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeTaskMessages$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2000x ./messages
	$(GO) test -run '^$$' -fuzz '^FuzzReadFrame$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2000x ./internal/frame
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeHello$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2000x ./peer
	$(GO) test -run '^$$' -fuzz '^FuzzApplyEntry$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2000x ./task
	$(GO) test -run '^$$' -fuzz '^FuzzAdminRequest$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2000x ./task
	$(GO) test -run '^$$' -fuzz '^FuzzParseGrant$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2000x ./task

tidy:
	$(GO) mod tidy
