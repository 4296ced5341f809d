// Host-side entry points of the standalone pointwise CUDA kernel (no device
// code): the FFI handler includes this and links against the instantiations
// compiled from pointwise_kernel.cuh.
#pragma once

#include <cuda_runtime.h>

#include "pointwise_params.h"

namespace jax_fcm {

template <typename T, int Math, int TP, int TN, int KC>
cudaError_t launch_pointwise(const PointwiseShape& shape, const PointwisePointers& ptrs, int activation, int splits,
                             cudaStream_t stream);

// Picks the plan (plan_pointwise, for the current device) and the instantiation; cudaErrorInvalidValue for shapes the
// kernel does not index (pointwise_shape_supported).
cudaError_t dispatch_pointwise(ElementType type, PwMath math, const PointwiseShape& shape,
                               const PointwisePointers& ptrs, int activation, cudaStream_t stream);

}  // namespace jax_fcm
