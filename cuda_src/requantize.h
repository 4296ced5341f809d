// Requantization of an int32 accumulator to int8, shared by the CUDA kernels
// and the CPU handlers so both compute the same bits (and jax_fcm/quantization.py
// writes the same steps with lax ops): fp32(acc) (round to nearest) times the
// fp32 multiplier (one rounding, no fused add), rounded to the nearest
// integer (ties to even), clamped to [qmin, qmax] (the activation's range).
#pragma once

#include <cmath>
#include <cstdint>

#include "activations.h"  // FCM_HOST_DEVICE

namespace jax_fcm {

FCM_HOST_DEVICE float requantize(int32_t acc, float multiplier, int qmin, int qmax) {
#if defined(__CUDA_ARCH__)
  const float scaled = rintf(__fmul_rn(__int2float_rn(acc), multiplier));
#else
  const float scaled = std::nearbyint(static_cast<float>(acc) * multiplier);
#endif
  return fminf(fmaxf(scaled, float(qmin)), float(qmax));
}

}  // namespace jax_fcm
