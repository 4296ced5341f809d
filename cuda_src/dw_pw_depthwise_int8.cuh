// Depthwise stage of the int8 fused kernel (jax_fcm.dw_pw_int8) on DP4A:
// int32 sums of 4 taps per instruction, then the per-channel requantization.
//
// The staged input and taps hold 4 channels per 32-bit word ([pixel][channel]),
// while a DP4A multiplies the 4 bytes of two words pairwise: it needs 4 taps
// (or pixels) of one channel per word. Each thread transposes the words it
// reads (a 4x4 byte transpose is 8 permutes), then a row of K taps costs
// ceil(K / 4) DP4A per output instead of K fp32 FMAs plus a decode of every
// int8 value to fp32 (what made the fp32 version slower than bf16).
#pragma once

#include <cstdint>

#include "dw_pw_depthwise_unit.cuh"
#include "dw_pw_params.h"
#include "requantize.h"

namespace jax_fcm {
namespace dw_pw_detail {

// The int8 kernels' per-channel requantization of a stage's int32 sums
// (global arrays: each thread reads its few channels, cached).
struct Requant {
  const int32_t* bias = nullptr;
  const float* multiplier = nullptr;
  int qmin = -128, qmax = 127;
};

// out[i] byte j = in[j] byte i: 4 words of 4 channels (one pixel or tap each)
// -> 4 words of 4 pixels or taps (one channel each).
__device__ __forceinline__ void transpose_bytes(const uint32_t (&in)[4], uint32_t (&out)[4]) {
  const uint32_t lo01 = __byte_perm(in[0], in[1], 0x5140), hi01 = __byte_perm(in[0], in[1], 0x7362);
  const uint32_t lo23 = __byte_perm(in[2], in[3], 0x5140), hi23 = __byte_perm(in[2], in[3], 0x7362);
  out[0] = __byte_perm(lo01, lo23, 0x5410);
  out[1] = __byte_perm(lo01, lo23, 0x7632);
  out[2] = __byte_perm(hi01, hi23, 0x5410);
  out[3] = __byte_perm(hi01, hi23, 0x7632);
}

// N words of 4 channels -> per channel, Words words of 4 consecutive
// positions (zeros past N): bytes p .. p + 3 of channel e are out[e][p / 4].
template <int N, int Words>
__device__ __forceinline__ void channel_words(const uint32_t (&by_position)[N], uint32_t (&out)[4][Words]) {
#pragma unroll
  for (int w = 0; w < Words; ++w) {
    uint32_t in[4], t[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) in[i] = 4 * w + i < N ? by_position[4 * w + i] : 0u;
    transpose_bytes(in, t);
#pragma unroll
    for (int e = 0; e < 4; ++e) out[e][w] = t[e];
  }
}

// Bytes o .. o + 3 of a channel's positions: one word, or a funnel shift of
// two (past the last word, zeros: they meet zero taps). o is a constant once
// the callers' loops are unrolled, so the words stay in registers.
template <int Words>
__device__ __forceinline__ uint32_t bytes_from(const uint32_t (&words)[Words], int o) {
  const int w = o / 4, shift = o % 4;
  if (shift == 0) return words[w];
  return __funnelshift_r(words[w], w + 1 < Words ? words[w + 1] : 0u, 8 * shift);
}

// Each thread owns one DepthwiseUnit (4 channels x kRun neighbouring output
// pixels of one row, as the fp32 stage): per filter row it reads its window's
// pixels and the row's taps, transposes both, and adds one DP4A per 4 taps
// and output; the sums start biased (BiasedAccumulator). Outputs are the
// requantized values (the int8 store rounds them); channels past C are zeros.
template <class Tr>
__device__ __forceinline__ void depthwise_chunk_int8(const int8_t* in_s, const int8_t* taps_s, int8_t* a_s,
                                                     const DwPwShape& s, int c0, const Requant& rq) {
  constexpr int K = Tr::K, S = Tr::S, R = Tr::kRun;
  constexpr int kWin = (R - 1) * S + K;  // input pixels of one row of the unit's windows
  constexpr int kWinWords = (kWin + 3) / 4, kTapWords = (K + 3) / 4;
  const DepthwiseUnit<Tr> unit;
  const int c = c0 + 4 * unit.g, channels = int(s.c);
  float out[R][4] = {};  // zeros for channel groups past C
  if (c < channels) {
    int32_t acc[R][4];
    float addend[4];  // BiasedAccumulator's, per channel
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const BiasedAccumulator biased(c + e < channels ? __ldg(rq.bias + c + e) : 0);
      addend[e] = biased.addend;
#pragma unroll
      for (int r = 0; r < R; ++r) acc[r][e] = biased.start;
    }
#pragma unroll
    for (int ky = 0; ky < K; ++ky) {
      uint32_t tap_words[K], pixel_words[kWin];
#pragma unroll
      for (int kx = 0; kx < K; ++kx)
        tap_words[kx] = *reinterpret_cast<const uint32_t*>(taps_s + (ky * K + kx) * Tr::KC + 4 * unit.g);
      const int8_t* row = unit.input_row(in_s, ky);
#pragma unroll
      for (int j = 0; j < kWin; ++j) pixel_words[j] = *reinterpret_cast<const uint32_t*>(row + j * Tr::kInPix);
      uint32_t taps[4][kTapWords], window[4][kWinWords];
      channel_words(tap_words, taps);
      channel_words(pixel_words, window);
#pragma unroll
      for (int r = 0; r < R; ++r)
#pragma unroll
        for (int t = 0; t < kTapWords; ++t)
#pragma unroll
          for (int e = 0; e < 4; ++e)  // output r's taps 4t .. 4t + 3 meet window pixels r * S + 4t ..
            acc[r][e] = __dp4a(int(bytes_from(window[e], r * S + 4 * t)), int(taps[e][t]), acc[r][e]);
    }
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const bool real = c + e < channels;
      const float multiplier = real ? __ldg(rq.multiplier + c + e) : 0.f;
#pragma unroll
      for (int r = 0; r < R; ++r)
        out[r][e] = real ? requantize_unrounded(__int_as_float(acc[r][e]) + addend[e], multiplier, rq.qmin, rq.qmax)
                         : 0.f;
    }
  }
  unit.store(a_s, out);
}

}  // namespace dw_pw_detail
}  // namespace jax_fcm
