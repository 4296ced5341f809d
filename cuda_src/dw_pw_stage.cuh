// Staging of one channel chunk into shared memory with cp.async: the input
// tile with its halo, the chunk's depthwise taps and its pointwise rows, all
// in the operands' own dtype. Out-of-image pixels and channels past C / Cout
// become zeros (zero-filling copies), so the compute stages need no bounds
// checks. Rows that are not 16-byte aligned (C or Cout not a multiple of the
// vector width) take a synchronous element-wise path instead.
#pragma once

#include <cstdint>

#include "async_copy.cuh"
#include "dw_pw_params.h"

namespace jax_fcm {
namespace dw_pw_detail {

// 16 bytes of T into shared memory: `valid` leading elements from src, zeros
// after. With vec, src is 16-byte aligned and valid is 0 or the full width.
template <typename T>
__device__ __forceinline__ void copy16(T* dst, const T* src, int valid, bool vec) {
  if (vec) {
    cp_async16(dst, src, valid > 0 ? 16 : 0);
    return;
  }
  uint4 raw = make_uint4(0, 0, 0, 0);
  T* vals = reinterpret_cast<T*>(&raw);
#pragma unroll
  for (int e = 0; e < int(16 / sizeof(T)); ++e)
    if (e < valid) vals[e] = src[e];
  *reinterpret_cast<uint4*>(dst) = raw;
}

__device__ __forceinline__ int clamp_valid(int64_t remaining, int width) {
  return remaining <= 0 ? 0 : (remaining < width ? int(remaining) : width);
}

// Input tile (kInH x kInW pixels of KC channels, kInPix apart) of the block whose
// input window starts at (iy0, ix0); x points at the tile's image.
template <class Tr>
__device__ __forceinline__ void stage_pixels(typename Tr::T* in_s, const typename Tr::T* __restrict__ x,
                                             const DwPwShape& s, int64_t iy0, int64_t ix0, int c0, bool vec) {
  constexpr int V = Tr::kVec, kPerPixel = Tr::KC / V, kInVecs = Tr::kInH * Tr::kInW * kPerPixel;
#pragma unroll
  for (int i0 = 0; i0 < kInVecs; i0 += Tr::kThreads) {
    const int i = i0 + threadIdx.x;
    if (kInVecs % Tr::kThreads != 0 && i >= kInVecs) break;
    const int pix = i / kPerPixel, c = c0 + i % kPerPixel * V;
    const int64_t gy = iy0 + pix / Tr::kInW, gx = ix0 + pix % Tr::kInW;
    const bool inside = gy >= 0 && gy < s.h && gx >= 0 && gx < s.w;
    const int valid = inside ? clamp_valid(s.c - c, V) : 0;
    copy16(in_s + pix * Tr::kInPix + i % kPerPixel * V, valid > 0 ? x + (gy * s.w + gx) * s.c + c : x, valid, vec);
  }
}

// The chunk's depthwise taps ([K*K][KC]) and, as row K*K, its bias.
template <class Tr>
__device__ __forceinline__ void stage_taps(typename Tr::T* taps_s, const typename Tr::T* __restrict__ dw,
                                           const typename Tr::T* __restrict__ dw_bias, const DwPwShape& s, int c0,
                                           bool vec) {
  using T = typename Tr::T;
  constexpr int V = Tr::kVec, kPerPixel = Tr::KC / V, kTapVecs = (Tr::K * Tr::K + 1) * kPerPixel;
#pragma unroll
  for (int i0 = 0; i0 < kTapVecs; i0 += Tr::kThreads) {
    const int i = i0 + threadIdx.x;
    if (kTapVecs % Tr::kThreads != 0 && i >= kTapVecs) break;
    const int tap = i / kPerPixel, c = c0 + i % kPerPixel * V;
    const int valid = clamp_valid(s.c - c, V);
    const T* row = tap < Tr::K * Tr::K ? dw + tap * s.c : dw_bias;
    copy16(taps_s + i * V, valid > 0 ? row + c : dw_bias, valid, vec);
  }
}

// Pointwise rows c0 .. c0+KC, columns co0 .. co0+TN, into [KC][kLdB], then
// the bias of those columns as row KC (read by the epilogue).
template <class Tr>
__device__ __forceinline__ void stage_weights(typename Tr::T* w_s, const typename Tr::T* __restrict__ pw,
                                              const typename Tr::T* __restrict__ pw_bias, const DwPwShape& s, int c0,
                                              int64_t co0, bool vec) {
  using T = typename Tr::T;
  constexpr int V = Tr::kVec, kPerRow = Tr::TN / V, kVecs = (Tr::KC + 1) * kPerRow;
#pragma unroll
  for (int i0 = 0; i0 < kVecs; i0 += Tr::kThreads) {
    const int i = i0 + threadIdx.x;
    if (kVecs % Tr::kThreads != 0 && i >= kVecs) break;
    const int row = i / kPerRow, col = i % kPerRow * V;
    const int64_t c = c0 + row, co = co0 + col;
    const bool bias_row = row == Tr::KC;
    const int valid = (bias_row || c < s.c) ? clamp_valid(s.cout - co, V) : 0;
    const T* src = bias_row ? pw_bias + co : pw + c * s.cout + co;
    copy16(w_s + row * Tr::kLdB + col, valid > 0 ? src : pw_bias, valid, vec);
  }
}

}  // namespace dw_pw_detail
}  // namespace jax_fcm
