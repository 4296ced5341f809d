// Depthwise stage of the fused kernel: one staged channel chunk -> the GEMM's
// A tile [pixels][KC] in shared memory, fp32 arithmetic (int8: DP4A), bias and activation
// applied, channels past C written as zeros (the GEMM reads them).
#pragma once

#include "activations.h"
#include "dw_pw_depthwise_int8.cuh"
#include "dw_pw_depthwise_unit.cuh"
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

// A thread's depthwise sums (kRun pixels x 4 channels from c) -> the values
// it stores: + bias (staged after the taps: bias_s) and activation; channels
// past C are zeros.
template <class Tr, bool RoundTf32, int R = Tr::kRun>
__device__ __forceinline__ void depthwise_outputs(const float (&acc)[R][4], const typename Tr::T* bias_s, int c,
                                                  int channels, int act, float (&out)[R][4]) {
  float bias[4];
  Elem<typename Tr::T>::load4(bias_s, bias);
  with_activation(act, [&](auto kind) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const bool real = c + e < channels;
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const float v = real ? apply_activation(acc[r][e] + bias[e], kind.value) : 0.f;
        out[r][e] = RoundTf32 ? __uint_as_float(tf32_bits(v)) : v;
      }
    }
  });
}

// Each thread owns one DepthwiseUnit (4 channels x kRun neighbouring output
// pixels of one row): every input pixel it loads feeds all (pixel, tap) pairs
// that use it.
// RoundTf32: the A tile feeds TF32 tensor cores (float32 with TF32 math);
// off where it is a result of its own (pw_dw's output).
template <class Tr, bool RoundTf32>
__device__ __forceinline__ void depthwise_chunk_fp32(const typename Tr::T* in_s, const typename Tr::T* taps_s,
                                                     typename Tr::T* a_s, const DwPwShape& s, int c0, int act) {
  using T = typename Tr::T;
  constexpr int K = Tr::K, S = Tr::S, R = Tr::kRun;
  const DepthwiseUnit<Tr> unit;
  const int c = c0 + 4 * unit.g, channels = int(s.c);
  float out[R][4] = {};  // zeros for channel groups past C
  if (c < channels) {
    float acc[R][4] = {};
#pragma unroll
    for (int ky = 0; ky < K; ++ky) {
      float taps[K][4];
#pragma unroll
      for (int kx = 0; kx < K; ++kx) Elem<T>::load4(taps_s + (ky * K + kx) * Tr::KC + 4 * unit.g, taps[kx]);
      accumulate_tap_row<T, K, S, R, Tr::kInPix>(unit.input_row(in_s, ky), taps, acc);
    }
    depthwise_outputs<Tr, RoundTf32>(acc, taps_s + K * K * Tr::KC + 4 * unit.g, c, channels, act, out);
  }
  unit.store(a_s, out);
}

// One staged channel chunk -> the A tile: fp32 arithmetic, or for int8
// (Tr::kQuantized) DP4A (dw_pw_depthwise_int8.cuh), requantized with rq
// instead of bias + act.
template <class Tr, bool RoundTf32 = Tr::kTf32>
__device__ __forceinline__ void depthwise_chunk(const typename Tr::T* in_s, const typename Tr::T* taps_s,
                                                typename Tr::T* a_s, const DwPwShape& s, int c0, int act,
                                                const Requant& rq = {}) {
  if constexpr (Tr::kQuantized)
    depthwise_chunk_int8<Tr>(in_s, taps_s, a_s, s, c0, rq);
  else
    depthwise_chunk_fp32<Tr, RoundTf32>(in_s, taps_s, a_s, s, c0, act);
}

// The A tile of channels c0 .. c0 + KC (pixels of the 8-wide tile at oy0,
// ox0) to an NHWC image of `channels` channels and ho x wo pixels: 16-byte
// stores with vec (channels a multiple of the vector, image aligned), else
// element-wise; pixels and channels outside the image are skipped. (The
// standalone depthwise kernel's output, pw_dw's.)
template <class Tr>
__device__ __forceinline__ void store_a_tile(const typename Tr::T* a_s, typename Tr::T* __restrict__ y_image, int ho,
                                             int wo, int channels, int oy0, int ox0, int c0, bool vec) {
  using T = typename Tr::T;
  constexpr int V = Tr::kVec, kPerPix = Tr::KC / V;
  for (int i = threadIdx.x; i < Tr::kTileP * kPerPix; i += Tr::kThreads) {
    const int pix = i / kPerPix, c = c0 + i % kPerPix * V;
    const int oy = oy0 + pix / Tr::TW, ox = ox0 + pix % Tr::TW;
    if (oy >= ho || ox >= wo || c >= channels) continue;
    const T* src = a_s + pix * Tr::kLdA + i % kPerPix * V;
    T* dst = y_image + (oy * wo + ox) * channels + c;
    if (vec) {
      const uint4 v = *reinterpret_cast<const uint4*>(src);
      store_global_u32x4(dst, v.x, v.y, v.z, v.w);
    } else {
      for (int e = 0; e < V && c + e < channels; ++e) dst[e] = src[e];
    }
  }
}

}  // namespace dw_pw_detail
}  // namespace jax_fcm
