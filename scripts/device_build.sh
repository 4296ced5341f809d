#!/usr/bin/env bash
# Incremental GPU build for a device session: CMake + Ninja into a build folder
# outside the tree, which survives between calls while the machine stays warm,
# so a call after a kernel edit recompiles only the changed translation units.
# The extension is copied into jax_fcm/, so `PYTHONPATH=$PWD` runs this tree
# (ahead of any pip-installed copy).
#   usage (GPU machine, repo root): bash scripts/device_build.sh
set -euo pipefail
build=${FCM_BUILD_DIR:-/tmp/fcm_build}
# The device copies the tree to a fresh folder each call: a cache made for
# another source folder cannot be reused.
if [ -f "$build/CMakeCache.txt" ] && ! grep -q "CMAKE_HOME_DIRECTORY:INTERNAL=$PWD\$" "$build/CMakeCache.txt"; then
  rm -rf "$build"
fi
cmake -S . -B "$build" -G Ninja -DJAX_FCM_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="${FCM_CUDA_ARCH:-90a-real}" \
  -DPython_EXECUTABLE="$(command -v python3)" ${FCM_CMAKE_ARGS:-}
cmake --build "$build" -j "$(nproc)"
cp "$build"/_jax_fcm*.so jax_fcm/
