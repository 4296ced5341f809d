// Host-side entry points of the Hopper warpgroup-MMA pointwise kernel (no
// device code); instantiations are compiled from pointwise_wgmma_kernel.cuh
// for sm_90a builds only (CMakeLists.txt).
#pragma once

#include <cuda_runtime.h>

#include "dw_pw_launch.h"
#include "pointwise_params.h"

namespace jax_fcm {

// Blocks of 128 pixel rows and TN (64 or 128) output channels, BlocksPerSm
// (1 or 2) resident per SM; T a 16-bit type. cudaErrorInvalidValue unless Cin and Cout are multiples of 8 and x,
// kernel and y 16-byte aligned; cudaErrorNotSupported when the driver builds
// no tensor map for the shape.
template <typename T, int TN, int BlocksPerSm>
cudaError_t launch_pointwise_wgmma(const PointwiseShape& shape, const PointwisePointers& ptrs, int activation,
                                   cudaStream_t stream);

// Whether this build has the wgmma kernel for the device described.
bool pointwise_wgmma_available(const DeviceLimits& limits);

}  // namespace jax_fcm
