// Host-side entry points of the dense conv2d CUDA kernel (no device code):
// the FFI handler includes this and links against the instantiations
// compiled from conv2d_kernel.cuh.
#pragma once

#include <cuda_runtime.h>

#include "conv2d_params.h"

namespace jax_fcm {

template <typename T, int Math, int TP, int TN, int KC>
cudaError_t launch_conv2d(const Conv2dShape& shape, const Conv2dPointers& ptrs, int activation, int splits,
                          cudaStream_t stream);

// Picks the plan (plan_conv2d, for the current device) and the instantiation;
// cudaErrorInvalidValue for shapes the kernel does not index (conv2d_shape_supported).
cudaError_t dispatch_conv2d(ElementType type, PwMath math, const Conv2dShape& shape, const Conv2dPointers& ptrs,
                            int activation, cudaStream_t stream);

}  // namespace jax_fcm
