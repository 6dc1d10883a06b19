# Front for the CMake build. `make demo` and `make test` are the README's two commands.
PRESET ?= default
BUILD_DIR := $(if $(filter asan,$(PRESET)),build-asan,build)
JOBS ?= 2

.PHONY: deps test-deps configure build test test-asan demo bench format clean

deps:
	@bash scripts/install-deps.sh

test-deps:
	@bash scripts/install-deps.sh --test

configure: deps
	@test -f $(BUILD_DIR)/build.ninja || cmake --preset $(PRESET) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

test: test-deps build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 600

test-asan:
	@$(MAKE) --no-print-directory test PRESET=asan

demo: build
	@./$(BUILD_DIR)/regionmove demo

bench: build
	@./$(BUILD_DIR)/regionmove_bench $(BENCH_ARGS)

format:
	@clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf build build-asan
