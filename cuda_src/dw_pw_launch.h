// Host-side entry points of the fused DW->PW CUDA kernels. This header has no
// device code: the FFI handler includes it and links against the explicit
// instantiations compiled from dw_pw_kernel.cuh.
#pragma once

#include <cuda_runtime.h>

#include "dw_pw_params.h"

namespace jax_fcm {

// One compiled configuration; defined in dw_pw_kernel.cuh.
template <typename T, int Math, int K, int S, int TN>
cudaError_t launch_dw_pw(const DwPwShape& shape, const DwPwEpilogue& epilogue, const DwPwPointers& ptrs,
                         cudaStream_t stream);

// Picks the instantiation matching the runtime description. Returns
// cudaErrorInvalidValue for a configuration that was not compiled.
cudaError_t dispatch_dw_pw(ElementType type, PwMath math, const DwPwShape& shape, const DwPwTileConfig& tile,
                           const DwPwEpilogue& epilogue, const DwPwPointers& ptrs, cudaStream_t stream);

// Whether dispatch_dw_pw has a kernel for this configuration.
bool dw_pw_config_supported(const DwPwShape& shape, const DwPwTileConfig& tile);

}  // namespace jax_fcm
