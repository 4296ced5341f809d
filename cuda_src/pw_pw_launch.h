// Host-side entry points of the fused PW -> PW CUDA kernel (no device code):
// the FFI handler includes this and links against the instantiations
// compiled from pw_pw_kernel.cuh.
#pragma once

#include <cuda_runtime.h>

#include "pw_pw_params.h"

namespace jax_fcm {

template <typename T, int TN>
cudaError_t launch_pw_pw(const PwPwShape& shape, const PwPwPointers& ptrs, int act1, int act2, cudaStream_t stream);

// Picks the output tile (pw_pw_tile_n) and the instantiation;
// cudaErrorInvalidValue for shapes the kernel does not take (pw_pw_shape_supported);
// cudaErrorNotSupported for ConvNeXt's block ends (ptrs.block) anywhere but
// the wgmma kernel on a 9.x device (pw_pw_wgmma_operands_ok).
cudaError_t dispatch_pw_pw(ElementType type, const PwPwShape& shape, const PwPwPointers& ptrs, int act1, int act2,
                           cudaStream_t stream);

}  // namespace jax_fcm
