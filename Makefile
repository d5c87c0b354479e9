# Tally: `make run` serves on 127.0.0.1:9201 with data under ./storage; `make test` runs every test.
# Both install what they need from Debian first (as root, or through sudo).

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_PACKAGES := libsnappy-dev zlib1g-dev pkg-config prometheus
SWIFT_TEST_FLAGS ?=

.PHONY: deps build run test release clean

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

build: deps
	swift build

release: deps
	swift build -c release --product tally

run: release
	.build/release/tally serve

# XCTest only: the suite has no Swift Testing tests, and its empty run must not be the last word.
test: deps
	swift build --build-tests
	swift test --skip-build --disable-swift-testing $(SWIFT_TEST_FLAGS)

clean:
	swift package clean
