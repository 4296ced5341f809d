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

// One requantized 1x1 stage of one pixel on the host (the CPU handlers'
// int8 pointwise parts): out[o] = requantize(bias[o] + in . rows[o]) for
// o < outs, rows being the kernel transposed ([outs][ins]).
inline void requantized_pixel(const int8_t* in, int64_t ins, const int8_t* rows, const int32_t* bias,
                              const float* multiplier, int64_t outs, int qmin, int qmax, int8_t* out) {
  for (int64_t o = 0; o < outs; ++o) {
    const int8_t* row = rows + o * ins;
    int32_t sum = bias[o];
    for (int64_t i = 0; i < ins; ++i) sum += int32_t(in[i]) * int32_t(row[i]);
    out[o] = int8_t(requantize(sum, multiplier[o], qmin, qmax));
  }
}

#if defined(__CUDACC__)
// The same steps without conversion instructions, for the kernels' hot loops
// (I2F, F2I and FRND issue at a quarter of the fp32 rate on H100: three per
// value made the int8 depthwise stage slower than the bf16 one). `sum` is
// fp32(acc) already, and the value is left unrounded: clamping before
// rounding gives the same integer (the bounds are integers), and the int8
// stores round half to even (Elem<int8_t>::pack4 by adding 1.5 * 2^23,
// from_float by __float2int_rn).
__device__ __forceinline__ float requantize_unrounded(float sum, float multiplier, int qmin, int qmax) {
  return fminf(fmaxf(__fmul_rn(sum, multiplier), float(qmin)), float(qmax));
}

// fp32 of an int32 in (-2^22, 2^22) by an integer and an fp32 add: v in the
// low mantissa bits of 1.5 * 2^23, less 1.5 * 2^23 (both steps exact).
__device__ __forceinline__ float small_int_to_float(int32_t v) {
  return __int_as_float(v + 0x4B400000) - 12582912.f;
}

// A DP4A accumulator that yields fp32(sum + bias) with one fp32 add, rounding
// once as requantize's fp32 of the int32 sum, for an int32 bias and integer
// products summing to |sum| < 2^20 (a depthwise window's): the accumulator
// starts at the bit pattern of 1.5 * 2^23 plus the bias's low 12 bits, so
// its final bits are the fp32 1.5 * 2^23 + sum + low exactly; the addend, the
// bias's high part less 1.5 * 2^23, is a multiple of 2^12 below 2^36 (exact):
// fp32(sum + bias) = __int_as_float(acc) + addend.
struct BiasedAccumulator {
  int32_t start;
  float addend;
  __device__ __forceinline__ explicit BiasedAccumulator(int32_t bias)
      : start(0x4B400000 + (bias & 0xfff)), addend(small_int_to_float(bias >> 12) * 4096.f - 12582912.f) {}
};
#endif

}  // namespace jax_fcm
