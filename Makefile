# mcstack — build, test, fuzz, benchmark.
#
#   make test      vet + staticcheck + race tests (+ interop tests when root)
#                  + wire's portable code (make purego) + the test-only
#                  modules (make crosscheck) + short fuzzing
#   make fuzz      longer fuzzing of every parser (FUZZTIME=60s by default)
#   make interop   only the Linux-kernel interop tests (root)
#   make bench     every benchmark (see BENCHMARKS.md)

GO        ?= go
FUZZTIME  ?= 60s
# SHORTFUZZ is a count, not a duration: Go 1.26's fuzzer can fail at a
# -fuzztime deadline under load with no failing input (golang/go#75804).
SHORTFUZZ ?= 20000x
# staticcheck is installed at this version into .bin/ (not the user's PATH).
STATICCHECK_VERSION ?= v0.8.2
STATICCHECK := $(CURDIR)/.bin/staticcheck
# Test-only modules: their own go.mod (mcstack replaced by this tree), so
# that heavy test dependencies (gopacket) stay out of mcstack's module graph.
TEST_MODULES := wire/crosscheck
# Packages with fuzz targets: "pkg:FuzzName" pairs are discovered by grep.
FUZZ_PKGS := $(shell grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./bench/' | xargs -r -n1 dirname | sort -u)

.PHONY: all test deps vet staticcheck race purego interop-recvmsg crosscheck fuzz-short fuzz interop bench demo build

all: build

build:
	$(GO) build ./...

# deps installs, when running as root, the Debian packages the tests use
# (tshark for the dissector checks, iproute2 for namespaces and bridges,
# promtool extracted from the prometheus package for the metrics check).
# As a normal user it installs nothing and the tests that need them skip.
deps:
	@bash scripts/install-test-deps.sh

test: deps vet staticcheck race purego interop-recvmsg crosscheck fuzz-short

vet:
	$(GO) vet ./...
	@for m in $(TEST_MODULES); do echo "(cd $$m && $(GO) vet ./...)"; (cd $$m && $(GO) vet ./...) || exit 1; done

staticcheck:
	@GOBIN=$(CURDIR)/.bin $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(STATICCHECK) ./...
	@for m in $(TEST_MODULES); do echo "(cd $$m && $(STATICCHECK) ./...)"; (cd $$m && $(STATICCHECK) ./...) || exit 1; done

# crosscheck runs the test-only modules' tests (wire against gopacket).
crosscheck:
	@for m in $(TEST_MODULES); do echo "(cd $$m && $(GO) test -race -count=1 ./...)"; (cd $$m && $(GO) test -race -count=1 ./...) || exit 1; done

race:
	$(GO) test -race -count=1 -timeout 20m ./...

# purego tests wire's portable code on a machine where assembly would take
# over (the AVX2 checksum on amd64).
purego:
	$(GO) test -race -count=1 -tags purego ./wire/...

# interop-recvmsg reruns the interop suite (run by race on the default
# TPACKET_V3 ring) on the recvmsg fallback. As a normal user it skips.
interop-recvmsg:
	MCSTACK_AFPACKET_MODE=recvmsg $(GO) test -race -count=1 ./interop/...

# fuzz-short runs every fuzz target for SHORTFUZZ executions: a smoke test in CI.
fuzz-short:
	@bash scripts/fuzz.sh $(SHORTFUZZ) $(FUZZ_PKGS)

fuzz:
	@bash scripts/fuzz.sh $(FUZZTIME) $(FUZZ_PKGS)

interop: deps
	MCSTACK_AFPACKET_MODE=ring $(GO) test -race -count=1 -v -run 'Interop' ./interop/...
	MCSTACK_AFPACKET_MODE=recvmsg $(GO) test -race -count=1 -v -run 'Interop' ./interop/...

bench:
	@bash scripts/bench.sh

demo:
	$(GO) run ./cmd/mcast demo
