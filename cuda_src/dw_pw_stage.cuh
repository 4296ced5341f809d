// Staging of one channel chunk into shared memory with cp.async: the input
// tile with its halo, the chunk's depthwise taps and its pointwise rows, all
// in the operands' own dtype. Out-of-image pixels and channels past C / Cout
// become zeros (zero-filling copies), so the compute stages need no bounds
// checks. Rows that are not 16-byte aligned (C or Cout not a multiple of the
// vector width) take a synchronous element-wise path instead.
//
// Index math is 32-bit (dw_pw_offsets_fit_int32), and what depends only on
// the pixel tile (image base, halo bounds, pixel offsets) is worked out once
// per tile by InputCopies::locate: Nsight Compute showed 40-50 instructions
// per 16-byte copy, a third of a deep layer's instructions, when every chunk
// redid the 64-bit address and bounds arithmetic of every copy.
#pragma once

#include <cstdint>
#include <type_traits>

#include "async_copy.cuh"
#include "dw_pw_params.h"

namespace jax_fcm {
namespace dw_pw_detail {

using jax_fcm::aligned16;  // dw_pw_params.h

// The shape sizes the staging indexes with, as 32-bit values.
struct StageDims {
  int h, w, c, cout;
  __device__ explicit StageDims(const DwPwShape& s) : h(int(s.h)), w(int(s.w)), c(int(s.c)), cout(int(s.cout)) {}
};

// 16 bytes of T into shared memory: `valid` leading elements from src, zeros
// after. With Vec, src is 16-byte aligned and valid is 0 or the full width.
template <bool Vec, typename T>
__device__ __forceinline__ void copy16(T* dst, const T* src, int valid) {
  if constexpr (Vec) {
    cp_async16(dst, src, valid > 0 ? 16 : 0);
  } else {
    uint4 raw = make_uint4(0, 0, 0, 0);
    T* vals = reinterpret_cast<T*>(&raw);
#pragma unroll
    for (int e = 0; e < int(16 / sizeof(T)); ++e)
      if (e < valid) vals[e] = src[e];
    *reinterpret_cast<uint4*>(dst) = raw;
  }
}

__device__ __forceinline__ int clamp_valid(int remaining, int width) {
  return remaining <= 0 ? 0 : (remaining < width ? remaining : width);
}

// Runs body.template operator()<Vec>() with Vec = vec as a constant, so each
// copy loop is compiled without a per-copy branch between the two paths.
template <class Body>
__device__ __forceinline__ void with_vec(bool vec, Body&& body) {
  if (vec)
    body(std::true_type{});
  else
    body(std::false_type{});
}

// The copies of the input tile (kInH x kInW pixels of KC channels, kInPix
// apart in shared memory) that this thread issues: copy j is vector
// j * kThreads + threadIdx.x of the tile.
template <class Tr>
struct InputCopies {
  using T = typename Tr::T;
  static constexpr int V = Tr::kVec, kPerPixel = Tr::KC / V, kVecs = Tr::kInH * Tr::kInW * kPerPixel;
  static constexpr int kCount = (kVecs + Tr::kThreads - 1) / Tr::kThreads;
  const T* image = nullptr;  // the tile's image
  int offset[kCount];        // element offset of the copy's chunk-0 source in the image; -1: halo outside it

  // For the tile whose input window starts at (iy0, ix0) of image n.
  __device__ __forceinline__ void locate(const T* __restrict__ x, const StageDims& d, int n, int iy0, int ix0) {
    image = x + int64_t(n) * d.h * d.w * d.c;
#pragma unroll
    for (int j = 0; j < kCount; ++j) {
      const int i = j * Tr::kThreads + int(threadIdx.x);
      const int pix = i / kPerPixel, gy = iy0 + pix / Tr::kInW, gx = ix0 + pix % Tr::kInW;
      const bool inside = i < kVecs && gy >= 0 && gy < d.h && gx >= 0 && gx < d.w;
      offset[j] = inside ? (gy * d.w + gx) * d.c + i % kPerPixel * V : -1;
    }
  }

  // Channels c0 .. c0 + KC of the located tile into in_s.
  __device__ __forceinline__ void stage(T* in_s, const StageDims& d, int c0, bool vec) const {
    with_vec(vec, [&](auto vec_c) {
#pragma unroll
      for (int j = 0; j < kCount; ++j) {
        const int i = j * Tr::kThreads + int(threadIdx.x);
        if (kVecs % Tr::kThreads != 0 && i >= kVecs) break;
        const int lane_c = i % kPerPixel * V;
        const int valid = offset[j] < 0 ? 0 : clamp_valid(d.c - c0 - lane_c, V);
        copy16<vec_c.value>(in_s + i / kPerPixel * Tr::kInPix + lane_c, image + (valid > 0 ? offset[j] + c0 : 0),
                            valid);
      }
    });
  }
};

// The chunk's depthwise taps ([K*K][KC]) and, as row K*K, its bias (not for
// int8, whose int32 bias the requantization reads).
template <class Tr>
__device__ __forceinline__ void stage_taps(typename Tr::T* taps_s, const typename Tr::T* __restrict__ dw,
                                           const typename Tr::T* __restrict__ dw_bias, const StageDims& d, int c0,
                                           bool vec) {
  using T = typename Tr::T;
  constexpr int V = Tr::kVec, kPerPixel = Tr::KC / V;
  constexpr int kTapVecs = (Tr::K * Tr::K + (Tr::kQuantized ? 0 : 1)) * kPerPixel;
  with_vec(vec, [&](auto vec_c) {
#pragma unroll
    for (int i0 = 0; i0 < kTapVecs; i0 += Tr::kThreads) {
      const int i = i0 + int(threadIdx.x);
      if (kTapVecs % Tr::kThreads != 0 && i >= kTapVecs) break;
      const int tap = i / kPerPixel, c = c0 + i % kPerPixel * V;
      const int valid = clamp_valid(d.c - c, V);
      const T* row = tap < Tr::K * Tr::K ? dw + tap * d.c : dw_bias;
      copy16<vec_c.value>(taps_s + i * V, valid > 0 ? row + c : dw_bias, valid);
    }
  });
}

// Rows r0 .. r0 + rows of a row-major [row_count][col_count] matrix m,
// columns col0 .. col0 + Cols, into dst [rows][Ld]; then, with BiasRow,
// bias[col0 .. col0 + Cols] as row `rows`. Rows past row_count and columns
// past col_count become zeros. (The pointwise rows of a chunk; mbconv's
// expansion columns; the standalone pointwise kernel's input rows.)
template <class Tr, int Cols, int Ld, bool BiasRow = true>
__device__ __forceinline__ void stage_matrix(typename Tr::T* dst, const typename Tr::T* __restrict__ m,
                                             const typename Tr::T* __restrict__ bias, int rows, int r0,
                                             int row_count, int col0, int col_count, bool vec) {
  using T = typename Tr::T;
  constexpr int V = Tr::kVec, kPerRow = Cols / V;
  const int vecs = (rows + (BiasRow ? 1 : 0)) * kPerRow;
  const T* first_row = m + r0 * col_count + col0;  // one product per call, not per copy
  with_vec(vec, [&](auto vec_c) {
#pragma unroll
    for (int i0 = 0; i0 < vecs; i0 += Tr::kThreads) {
      const int i = i0 + int(threadIdx.x);
      if (vecs % Tr::kThreads != 0 && i >= vecs) break;  // folded away where vecs is a constant multiple
      const int row = i / kPerRow, col = i % kPerRow * V;
      const bool bias_row = BiasRow && row == rows;
      const int valid = (bias_row || r0 + row < row_count) ? clamp_valid(col_count - col0 - col, V) : 0;
      const T* src = bias_row ? bias + col0 + col : first_row + row * col_count + col;
      copy16<vec_c.value>(dst + row * Ld + col, valid > 0 ? src : m, valid);
    }
  });
}

// Pointwise rows c0 .. c0+KC, columns co0 .. co0+TN, into [KC][kLdB], then
// the bias of those columns as row KC (read by the epilogue). int8: pw is the
// transposed [Cout][C] matrix, staged as [TN][kLdB] (rows co0 .. co0+TN,
// columns c0 .. c0+KC), no bias row.
template <class Tr>
__device__ __forceinline__ void stage_weights(typename Tr::T* w_s, const typename Tr::T* __restrict__ pw,
                                              const typename Tr::T* __restrict__ pw_bias, const StageDims& d, int c0,
                                              int co0, bool vec) {
  if constexpr (Tr::kQuantized)
    stage_matrix<Tr, Tr::KC, Tr::kLdB, false>(w_s, pw, pw, Tr::TN, co0, d.cout, c0, d.c, vec);
  else
    stage_matrix<Tr, Tr::TN, Tr::kLdB>(w_s, pw, pw_bias, Tr::KC, c0, d.c, co0, d.cout, vec);
}

}  // namespace dw_pw_detail
}  // namespace jax_fcm
