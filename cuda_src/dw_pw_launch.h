// Host-side entry points of the fused DW->PW CUDA kernels. This header has no
// device code: the FFI handler includes it and links against the explicit
// instantiations compiled from dw_pw_kernel.cuh.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "dw_pw_params.h"

namespace jax_fcm {

// Per-device caches are sized for this many devices (more still work, uncached).
inline constexpr int kMaxDevices = 64;

// One compiled configuration; defined in dw_pw_kernel.cuh. Of the tile
// description it reads the run-time fields (see DwPwTileConfig); passes are
// reduced to 1 when the resident tiles do not fit in shared memory.
template <typename T, int Math, int K, int S, int TN, int TH, int KC>
cudaError_t launch_dw_pw(const DwPwShape& shape, const DwPwEpilogue& epilogue, const DwPwPointers& ptrs,
                         const DwPwTileConfig& tile, cudaStream_t stream);

// Picks the instantiation matching the runtime description. Returns
// cudaErrorInvalidValue for a configuration that was not compiled.
cudaError_t dispatch_dw_pw(ElementType type, PwMath math, const DwPwShape& shape, const DwPwTileConfig& tile,
                           const DwPwEpilogue& epilogue, const DwPwPointers& ptrs, cudaStream_t stream);

// Whether dispatch_dw_pw has a kernel for this configuration.
bool dw_pw_config_supported(ElementType type, const DwPwShape& shape, const DwPwTileConfig& tile);

// What the launcher needs to know about the current device (cached per device).
struct DeviceLimits {
  int max_dynamic_smem = 0;  // shared memory one block may opt in to
  bool clusters = false;     // thread-block clusters (compute capability >= 9.0)
  int sm_count = 1;          // streaming multiprocessors (sizes persistent grids)
  int major = 0;             // compute capability major version
};
cudaError_t device_limits(DeviceLimits* limits);

}  // namespace jax_fcm
