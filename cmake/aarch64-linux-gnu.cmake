# Cross-compiles gos for 64-bit ARM Linux (Debian bookworm arm64, e.g. Raspberry Pi OS 64-bit) on an
# amd64 Debian host: Debian's aarch64-linux-gnu-g++ (crossbuild-essential-arm64) against a sysroot of
# arm64 Debian packages that scripts/setup-arm64.sh unpacks into build-arm64/sysroot. Debian's
# libtorch-dev is not multiarch (its arm64 package cannot be installed beside the amd64 one), hence a
# sysroot rather than `apt-get install libfoo-dev:arm64`. docs/arm64-notes.md says why each line is here.
#
#   cmake -S . -B build-arm64 -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake
#
# GOS_ARM64_SYSROOT names another sysroot (a cache variable or the environment variable of that name).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

if(NOT GOS_ARM64_SYSROOT)
  if(DEFINED ENV{GOS_ARM64_SYSROOT})
    set(GOS_ARM64_SYSROOT "$ENV{GOS_ARM64_SYSROOT}")
  else()
    get_filename_component(GOS_ARM64_SYSROOT "${CMAKE_CURRENT_LIST_DIR}/../build-arm64/sysroot" ABSOLUTE)
  endif()
endif()
if(NOT EXISTS "${GOS_ARM64_SYSROOT}/usr/lib/aarch64-linux-gnu/cmake/Torch/TorchConfig.cmake")
  message(FATAL_ERROR "gos: no arm64 sysroot with libtorch at ${GOS_ARM64_SYSROOT}; scripts/setup-arm64.sh makes it")
endif()
# try_compile projects re-read this file without the cache: hand them the sysroot.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES GOS_ARM64_SYSROOT)

# --sysroot for the compiler and linker; find_package/find_library/find_path search below it only,
# programs (protoc, python) on the host.
set(CMAKE_SYSROOT "${GOS_ARM64_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH "${GOS_ARM64_SYSROOT}")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config (libzip, cpp-httplib): the host's pkg-config reading the sysroot's .pc files, with
# their -I and -L paths moved into the sysroot.
set(ENV{PKG_CONFIG_SYSROOT_DIR} "${GOS_ARM64_SYSROOT}")
set(ENV{PKG_CONFIG_LIBDIR} "${GOS_ARM64_SYSROOT}/usr/lib/aarch64-linux-gnu/pkgconfig:${GOS_ARM64_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")

# The arm64 binaries built here (gos, tests) run on this host through qemu-user (qemu-user-static).
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static -L "${GOS_ARM64_SYSROOT}")
