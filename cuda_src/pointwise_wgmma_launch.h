// Host-side entry points of the Hopper warpgroup-MMA pointwise kernel (no
// device code); instantiations are compiled from pointwise_wgmma_kernel.cuh
// for sm_90a builds only (CMakeLists.txt).
#pragma once

#include <cuda_runtime.h>

#include "pointwise_params.h"

namespace jax_fcm {

// Blocks of 128 pixel rows and TN (64 or 128) output channels, BlocksPerSm
// (1 or 2) resident per SM; T a 16-bit type. cudaErrorInvalidValue unless
// pointwise_wgmma_operands_ok; cudaErrorNotSupported when the driver builds
// no tensor map for the shape.
template <typename T, int TN, int BlocksPerSm>
cudaError_t launch_pointwise_wgmma(const PointwiseShape& shape, const PointwisePointers& ptrs, int activation,
                                   cudaStream_t stream);

// Operands the wgmma kernel takes: Cin and Cout multiples of 8 (the tensor
// maps' row strides are then 16-byte multiples) and x, kernel and y 16-byte
// aligned (XLA's buffers are).
inline bool pointwise_wgmma_operands_ok(const PointwiseShape& s, const PointwisePointers& p) {
  return s.cin % 8 == 0 && s.cout % 8 == 0 && aligned16(p.x) && aligned16(p.kernel) && aligned16(p.y);
}

}  // namespace jax_fcm
