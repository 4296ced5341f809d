// Host-side entry points of the depthwise backward CUDA kernel (no device
// code): the FFI handler includes this and links against the instantiations
// compiled from dw_backward_kernel.cuh.
#pragma once

#include <cuda_runtime.h>

#include "dw_backward_params.h"

namespace jax_fcm {

template <typename T, int K, int S>
cudaError_t launch_dw_backward(const DwBackwardShape& shape, const DwBackwardPointers& ptrs, cudaStream_t stream);

// Picks the instantiation for the element type, kernel size and stride;
// cudaErrorInvalidValue for anything not compiled (k not in {3, 5, 7},
// stride not in {1, 2}, padding above k - 1, 32-bit offset overflow).
cudaError_t dispatch_dw_backward(ElementType type, const DwBackwardShape& shape, const DwBackwardPointers& ptrs,
                                 cudaStream_t stream);

}  // namespace jax_fcm
