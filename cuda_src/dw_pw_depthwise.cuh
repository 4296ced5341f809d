// Depthwise stage of the fused kernel: one staged channel chunk -> the GEMM's
// A tile [pixels][KC] in shared memory, fp32 arithmetic, bias and activation
// applied, channels past C written as zeros (the GEMM reads them).
#pragma once

#include "activations.h"
#include "dw_pw_params.h"
#include "element.cuh"
#include "mma_sync.cuh"

namespace jax_fcm {
namespace dw_pw_detail {

// acc[r] += one filter row's K taps (4 channels each) times the input window
// of output r, for R outputs S input pixels apart in a staged row whose pixels
// are InPix elements apart: each loaded input pixel feeds every (output, tap)
// pair that uses it.
template <typename T, int K, int S, int R, int InPix>
__device__ __forceinline__ void accumulate_tap_row(const T* row, const float (&taps)[K][4], float (&acc)[R][4]) {
#pragma unroll
  for (int j = 0; j < (R - 1) * S + K; ++j) {
    float v[4];
    Elem<T>::load4(row + j * InPix, v);
#pragma unroll
    for (int r = 0; r < R; ++r) {
      const int kx = j - r * S;
      if (kx >= 0 && kx < K) {
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[r][e] = fmaf(v[e], taps[kx][e], acc[r][e]);
      }
    }
  }
}

// Each thread owns 4 channels x kRun neighbouring output pixels of one row:
// every input pixel it loads feeds all (pixel, tap) pairs that use it.
template <class Tr>
__device__ __forceinline__ void depthwise_chunk(const typename Tr::T* in_s, const typename Tr::T* taps_s,
                                                typename Tr::T* a_s, const DwPwShape& s, int c0, int act) {
  using T = typename Tr::T;
  constexpr int K = Tr::K, S = Tr::S, R = Tr::kRun;
  constexpr int kGroups = Tr::KC / 4, kSegs = Tr::TW / R;
  const int u = threadIdx.x;
  const int g = u % kGroups, seg = u / kGroups % kSegs, oy = u / (kGroups * kSegs);
  const int c = c0 + 4 * g, channels = int(s.c);
  float out[R][4];
  if (c < channels) {
    float acc[R][4] = {};
#pragma unroll
    for (int ky = 0; ky < K; ++ky) {
      float taps[K][4];
#pragma unroll
      for (int kx = 0; kx < K; ++kx) Elem<T>::load4(taps_s + (ky * K + kx) * Tr::KC + 4 * g, taps[kx]);
      const T* row = in_s + ((oy * S + ky) * Tr::kInW + seg * R * S) * Tr::kInPix + 4 * g;
      accumulate_tap_row<T, K, S, R, Tr::kInPix>(row, taps, acc);
    }
    float bias[4];  // staged after the taps
    Elem<T>::load4(taps_s + K * K * Tr::KC + 4 * g, bias);
    with_activation(act, [&](auto kind) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const bool real = c + e < channels;
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const float v = real ? apply_activation(acc[r][e] + bias[e], kind.value) : 0.f;
          out[r][e] = Tr::kTf32 ? __uint_as_float(tf32_bits(v)) : v;
        }
      }
    });
  } else {
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int e = 0; e < 4; ++e) out[r][e] = 0.f;
  }
  T* dst = a_s + (oy * Tr::TW + seg * R) * Tr::kLdA + 4 * g;
#pragma unroll
  for (int r = 0; r < R; ++r) Elem<T>::store4(dst + r * Tr::kLdA, out[r]);
}

}  // namespace dw_pw_detail
}  // namespace jax_fcm
