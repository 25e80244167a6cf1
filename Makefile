# mcstack — build, test, fuzz, benchmark.
#
#   make test      vet + race tests (+ interop tests when root) + short fuzzing
#   make fuzz      longer fuzzing of every parser (FUZZTIME=60s by default)
#   make interop   only the Linux-kernel interop tests (root)
#   make bench     every benchmark (see BENCHMARKS.md)

GO        ?= go
FUZZTIME  ?= 60s
SHORTFUZZ ?= 4s
# Packages with fuzz targets: "pkg:FuzzName" pairs are discovered by grep.
FUZZ_PKGS := $(shell grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./bench/' | xargs -r -n1 dirname | sort -u)

.PHONY: all test deps vet race fuzz-short fuzz interop bench demo build

all: build

build:
	$(GO) build ./...

# deps installs, when running as root, the Debian packages the tests use
# (tshark for the dissector checks, iproute2 for namespaces and bridges).
# As a normal user it installs nothing and the tests that need them skip.
deps:
	@bash scripts/install-test-deps.sh

test: deps vet race fuzz-short

vet:
	$(GO) vet ./...

race:
	$(GO) test -race -count=1 -timeout 20m ./...

# fuzz-short runs every fuzz target for SHORTFUZZ: a smoke test in CI.
fuzz-short:
	@bash scripts/fuzz.sh $(SHORTFUZZ) $(FUZZ_PKGS)

fuzz:
	@bash scripts/fuzz.sh $(FUZZTIME) $(FUZZ_PKGS)

interop: deps
	$(GO) test -race -count=1 -v -run 'Interop' ./interop/...

bench:
	@bash scripts/bench.sh

demo:
	$(GO) run ./cmd/mcast demo
