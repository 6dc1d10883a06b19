# Front for the CMake build. `make demo` and `make test` are the README's two commands.
PRESET ?= default
BUILD_DIR := $(if $(filter asan,$(PRESET)),build-asan,build)
JOBS ?= 2

.PHONY: deps test-deps configure build build-cli install fuzz-build fuzz pg-start s3-start test test-asan demo demo-postgres bench bench-run bench-control bench-pause format clean

deps:
	@bash scripts/install-deps.sh

test-deps:
	@bash scripts/install-deps.sh --test

configure: deps
	@test -f $(BUILD_DIR)/build.ninja || { echo "configuring the build in $(BUILD_DIR)/ (cmake)"; \
	  cmake --preset $(PRESET) >/dev/null; }

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# The libFuzzer targets, built with clang into build-fuzz/ (their bounded runs are ctest tests).
FUZZ_TARGETS := http_fuzz mcp_fuzz config_fuzz validators_fuzz
fuzz-build: test-deps
	@test -f build-fuzz/build.ninja || cmake --preset fuzz >/dev/null
	@cmake --build build-fuzz -j $(JOBS) --target $(FUZZ_TARGETS)

# A longer run of every fuzz target: make fuzz FUZZ_SECONDS=600
FUZZ_SECONDS ?= 300
fuzz: fuzz-build
	@mkdir -p build-fuzz/work build-fuzz/artifacts
	@for t in http mcp config validators; do \
	  mkdir -p build-fuzz/work/$$t; \
	  ASAN_OPTIONS=detect_leaks=0 ./build-fuzz/$${t}_fuzz -max_total_time=$(FUZZ_SECONDS) \
	    -print_final_stats=1 -artifact_prefix=build-fuzz/artifacts/$$t- \
	    build-fuzz/work/$$t fuzz/corpus/$$t || exit 1; \
	done

# The PostgreSQL tests run against local clusters, one per region (scripts/pg-regions).
pg-start: test-deps
	@bash scripts/pg-regions start

# The S3 tests run against a local S3-protocol server (scripts/s3-local, s3rver from npm).
s3-start: test-deps
	@bash scripts/s3-local start

test: test-deps build fuzz-build pg-start s3-start
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 600

test-asan:
	@$(MAKE) --no-print-directory test PRESET=asan

# Only the binary the demo runs (not the tests and benchmarks).
build-cli: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS) --target regionmove

# Puts the CLI on the PATH: make install (PREFIX=/usr/local), or PREFIX=$HOME/.local.
PREFIX ?= /usr/local
install: build-cli
	@install -d $(DESTDIR)$(PREFIX)/bin
	@install -m 0755 $(BUILD_DIR)/regionmove $(DESTDIR)$(PREFIX)/bin/regionmove
	@echo "installed $(DESTDIR)$(PREFIX)/bin/regionmove"

# Timed, since the first run builds: about 1.5 minutes on a fresh clone of a 2-core machine.
demo:
	@start=$$(date +%s); \
	echo "make demo: checking what is installed, then building regionmove (not the tests)"; \
	$(MAKE) --no-print-directory build-cli || exit 1; built=$$(date +%s); \
	./$(BUILD_DIR)/regionmove demo || exit 1; end=$$(date +%s); \
	echo "make demo took $$((end - start)) s: $$((built - start)) s to install and build, $$((end - built)) s of demo"

# The same demo on three local PostgreSQL clusters (scripts/pg-regions; installs the server).
demo-postgres: build-cli pg-start
	@./$(BUILD_DIR)/regionmove demo --config examples/postgres.toml

# Every benchmark against its peers, one table at the end (bench/run --full: the 1 GiB sizes).
bench-run:
	@bash scripts/install-deps.sh --bench
	@python3 bench/run $(BENCH_ARGS)

bench: build
	@./$(BUILD_DIR)/regionmove_bench $(BENCH_ARGS)

# The control plane on each control-store engine (PostgreSQL: the clusters of scripts/pg-regions).
bench-control: build pg-start
	@./$(BUILD_DIR)/regionmove_control_bench $(BENCH_ARGS)

# Write pauses of an online and an offline move under continuous writers (engine, MiB, writers).
bench-pause: build pg-start
	@./$(BUILD_DIR)/regionmove_pause_bench $(BENCH_ARGS)

format:
	@clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf build build-asan
