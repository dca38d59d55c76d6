# The two commands: `make demo` runs gos on its embedded default, `make test` builds and runs the suite.
BUILD_DIR ?= build
JOBS ?= 2
GOS := $(BUILD_DIR)/gos

.PHONY: setup build test demo clean arm64

setup:
	@scripts/setup.sh

build: setup
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	@scripts/run-tests.sh $(BUILD_DIR) $(JOBS)

demo: build
	@scripts/demo.sh $(GOS)

# gos for 64-bit ARM Linux (Debian bookworm arm64), cross-built on this amd64 machine against a
# sysroot of Debian's arm64 packages: build-arm64/gos, run here with
# qemu-aarch64-static -L build-arm64/sysroot build-arm64/gos (docs/arm64-notes.md). Configured once:
# CMake ignores a toolchain file on a second configure.
arm64:
	@scripts/setup-arm64.sh
	@test -f build-arm64/build.ninja || cmake -S . -B build-arm64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build-arm64 -j $(JOBS) --target gos

clean:
	rm -rf $(BUILD_DIR)
