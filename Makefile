# The two commands: `make demo` runs gos on its embedded default, `make test` builds and runs the suite.
BUILD_DIR ?= build
JOBS ?= 2
GOS := $(BUILD_DIR)/gos

.PHONY: setup build test demo clean

setup:
	@scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	@scripts/run-tests.sh $(BUILD_DIR) $(JOBS)

demo: build
	@scripts/demo.sh $(GOS)

clean:
	rm -rf $(BUILD_DIR)
