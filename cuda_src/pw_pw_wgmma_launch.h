// Host-side entry points of the Hopper warpgroup-MMA PW -> PW kernel (no
// device code); instantiations are compiled from pw_pw_wgmma_kernel.cuh for
// sm_90a builds only (CMakeLists.txt).
#pragma once

#include <cuda_runtime.h>

#include "pw_pw_params.h"

namespace jax_fcm {

// Blocks of 192 pixel rows and TN (64, 96 or 128) output channels, or 128
// rows and 192 channels (ConvNeXt's block ends only); T a 16-bit type.
// cudaErrorInvalidValue unless pw_pw_wgmma_operands_ok; cudaErrorNotSupported
// when the driver builds no tensor map for the shape.
template <typename T, int TN>
cudaError_t launch_pw_pw_wgmma(const PwPwShape& shape, const PwPwPointers& ptrs, int act1, int act2,
                               cudaStream_t stream);

// Operands the wgmma kernel takes: channel counts multiples of 8 (the tensor
// maps' row strides are then 16-byte multiples), Cin up to 192 (three
// 64-channel boxes of input rows stay in shared memory), and x, the two
// kernels and y 16-byte aligned (XLA's buffers are); with ConvNeXt's block
// ends (p.block) also those operands and b2, and Cout == Cin.
inline bool pw_pw_wgmma_operands_ok(const PwPwShape& s, const PwPwPointers& p) {
  const PwPwBlockEnds& b = p.block;
  const bool block_ok = !b.active() || (aligned16(b.ln_scale) && aligned16(b.ln_bias) && aligned16(b.layer_scale) &&
                                        aligned16(b.residual) && aligned16(p.b2) && s.cout == s.cin);
  return s.cin % 8 == 0 && s.hidden % 8 == 0 && s.cout % 8 == 0 && s.cin <= 192 && aligned16(p.x) &&
         aligned16(p.w1) && aligned16(p.w2) && aligned16(p.y) && block_ok;
}

// Whether a call runs the wgmma kernel rather than the mma.sync one (on an
// sm_90a build and a 9.x device): operands it takes and an intermediate of at
// least 384 channels. H100, bf16, N = 64: ConvNeXt's 96 -> 384 -> 96 195 us
// (mma.sync 222), 192 -> 768 -> 192 195 (263); narrower intermediates were
// slower on it (64-channel steps and 64-channel boxes of Cin pad them):
// 144 -> 288 -> 144 163 (132), 144 -> 24 -> 144 113 (84), 192 -> 32 -> 192 34 (29).
inline bool pw_pw_use_wgmma(const PwPwShape& s, const PwPwPointers& p) {
  return s.hidden >= 384 && pw_pw_wgmma_operands_ok(s, p);
}

}  // namespace jax_fcm
