# Tally: `make run` serves on 127.0.0.1:9201 with data under ./storage; `make test` runs every test.
# Both install what they need from Debian first (as root, or through sudo).

# bash for `set -o pipefail` in the test recipe.
SHELL := /bin/bash
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# systemd for systemd-analyze, which checks docs/deploy/tally.service (most Debian images have it already).
APT_PACKAGES := libsnappy-dev zlib1g-dev libcrypt-dev libprotobuf-c-dev pkg-config prometheus openssl curl systemd
BENCH_PACKAGES := victoria-metrics
SWIFT_TEST_FLAGS ?=
BENCH_FLAGS ?=
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := fuzz-remote-write fuzz-wal fuzz-block-index fuzz-head-chunks fuzz-selector fuzz-query-params

.PHONY: deps bench-deps build run test release bench bench-quick fuzz fuzz-build fuzz-seeds proto-c clean

# Installs the Debian packages named in $(1) that are missing.
define apt_install
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
endef

deps:
	$(call apt_install,$(APT_PACKAGES))

# Regenerates the protobuf-c oracle the wire tests use (committed, so only after a change to proto/).
# `string` fields become `bytes`: the same on the wire, and C then keeps their exact length (a C string
# would end at the first NUL).
proto-c:
	$(call apt_install,protobuf-c-compiler)
	tmp=$$(mktemp -d) && for f in remote types write_v2; do sed -E 's/^( *)(repeated )?string /\1\2bytes /' proto/$$f.proto > $$tmp/$$f.proto; done && \
	protoc-c -I$$tmp --c_out=Tests/RemoteWriteProtobufC $$tmp/remote.proto $$tmp/types.proto $$tmp/write_v2.proto && rm -r $$tmp
	mv Tests/RemoteWriteProtobufC/*.pb-c.h Tests/RemoteWriteProtobufC/include/

bench-deps: deps
	$(call apt_install,$(BENCH_PACKAGES))

build: deps
	swift build

release: deps
	swift build -c release --product tally

run: release
	.build/release/tally serve

# XCTest only: the suite has no Swift Testing tests, and its empty run must not be the last word.
# TALLY_REQUIRE_TOOLS=1: a missing promtool or prometheus (or one other than 2.42) fails the tests
# that need it, and .ci/check-skips fails the run if any test was skipped. The exit status is
# swift test's unless that passed and something was skipped.
test: export TALLY_REQUIRE_TOOLS = 1
test: deps
	swift build --build-tests
	set -o pipefail; swift test --skip-build --disable-swift-testing $(SWIFT_TEST_FLAGS) | .ci/check-skips

# Tally, Prometheus 2.42 and VictoriaMetrics 1.79 on the same requests, one at a time; appends the
# tables (with date, machine, versions and command) to docs/benchmarks.md.
bench: bench-deps
	swift build -c release --product tally
	swift build -c release --product tally-bench
	.build/release/tally-bench --markdown docs/benchmarks.md $(BENCH_FLAGS)

# The same on a small dataset, printed only: about 3 minutes once built.
bench-quick: bench-deps
	swift build -c release --product tally
	swift build -c release --product tally-bench
	.build/release/tally-bench --quick $(BENCH_FLAGS)

# libFuzzer targets with AddressSanitizer (docs/fuzzing.md), in a package of their own so the
# build above never sees the fuzzer flags; each runs FUZZ_SECONDS on a copy of its fuzz/corpus/.
fuzz: fuzz-build
	fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-build: deps
	swift build --package-path fuzz -c debug -Xswiftc -sanitize=fuzzer,address --scratch-path .build-fuzz

# Rewrites the committed seeds from the project's own writers (after a format change); the crash
# inputs kept beside them stay.
fuzz-seeds: fuzz-build
	scratch=$$(mktemp -d) && for t in $(FUZZ_TARGETS); do \
		TMPDIR=$$scratch TALLY_FUZZ_SEEDS=fuzz/corpus/$$t .build-fuzz/debug/$$t || exit 1; \
	done; rm -rf $$scratch

clean:
	swift package clean
