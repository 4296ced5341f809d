// Host-side entry points of the standalone depthwise CUDA kernel (no device
// code): the FFI handler includes this and links against the instantiations
// compiled from depthwise_kernel.cuh.
#pragma once

#include <cuda_runtime.h>

#include "depthwise_params.h"

namespace jax_fcm {

template <typename T, int K, int S>
cudaError_t launch_depthwise(const DepthwiseShape& shape, const DepthwisePointers& ptrs, int activation,
                             cudaStream_t stream);

// Picks the instantiation for the element type, kernel size and stride;
// cudaErrorInvalidValue for anything not compiled or not supported
// (depthwise_shape_supported).
cudaError_t dispatch_depthwise(ElementType type, const DepthwiseShape& shape, const DepthwisePointers& ptrs,
                               int activation, cudaStream_t stream);

}  // namespace jax_fcm
