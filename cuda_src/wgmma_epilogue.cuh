// The epilogue of the warpgroup-MMA kernels (pointwise_wgmma_kernel.cuh,
// pw_pw_wgmma_kernel.cuh): each warpgroup's 64 x TN fp32 accumulators go
// through shared memory so that bias, activation and the stores run on 8
// consecutive channels per thread (16-byte stores, the fused kernel's
// store_outputs). H100: a version storing 4-byte pairs straight from the
// registers (with a run-time ring depth) ran the pointwise 960 -> 320 layer
// at N = 64 1.3x slower.
#pragma once

#include "activations.h"
#include "dw_pw_pointwise.cuh"

namespace jax_fcm {

// Scratch row length (floats) of a TN-column tile.
template <int TN>
constexpr int kWgmmaScratchLd = TN + 8;

// Warpgroup threadIdx.x / 128 holds rows 64 g + 16 w + l / 4 (+ 8) and, per
// 8-column group j, columns 8 j + 2 (l % 4) (+ 1) of the tile (lane l of
// warp w in the warpgroup: wgmma's accumulator layout). Threads 0 ..
// Threads - 1 take part; scratch holds TileM rows of kWgmmaScratchLd<TN> floats and must
// be free (every thread past its last read of what it overlays); sync() is
// the barrier over those threads. y_tile is the tile's first pixel row of
// the output, rows of `cout` channels, this block's starting at co0.
// finish(row, col, v) may change a group's 8 values (tile row, column of
// the block's first) before bias and activation: ConvNeXt's layer scale and
// residual (pw_pw_wgmma_kernel.cuh).
template <int TN, int TileM, int Threads, typename T, class Sync, class Finish>
__device__ __forceinline__ void wgmma_store_tile(const float (&acc)[TN / 2], float* scratch, Sync&& sync, T* y_tile,
                                                 const T* bias_s, int rows, int co0, int cout, int activation,
                                                 Finish&& finish) {
  constexpr int kLd = kWgmmaScratchLd<TN>;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int r0 = threadIdx.x / 128 * 64 + warp % 4 * 16 + lane / 4, c0 = 2 * (lane % 4);
#pragma unroll
  for (int j = 0; j < TN / 8; ++j) {
    *reinterpret_cast<float2*>(scratch + r0 * kLd + 8 * j + c0) = make_float2(acc[4 * j], acc[4 * j + 1]);
    *reinterpret_cast<float2*>(scratch + (r0 + 8) * kLd + 8 * j + c0) = make_float2(acc[4 * j + 2], acc[4 * j + 3]);
  }
  sync();
  with_activation(activation, [&](auto kind) {
    constexpr int kGroups = TN / 8;  // 8-channel groups per row
    for (int i = threadIdx.x; i < TileM * kGroups; i += Threads) {
      const int row = i / kGroups, col = i % kGroups * 8;
      if (row >= rows || co0 + col >= cout) continue;
      const float4* src = reinterpret_cast<const float4*>(scratch + row * kLd + col);
      const float4 lo = src[0], hi = src[1];
      float v[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
      finish(row, col, v);
      dw_pw_detail::store_outputs<kind.value>(y_tile + row * cout + co0 + col, bias_s + col, v, co0 + col, cout, true);
    }
  });
}

template <int TN, int TileM, int Threads, typename T, class Sync>
__device__ __forceinline__ void wgmma_store_tile(const float (&acc)[TN / 2], float* scratch, Sync&& sync, T* y_tile,
                                                 const T* bias_s, int rows, int co0, int cout, int activation) {
  wgmma_store_tile<TN, TileM, Threads>(acc, scratch, sync, y_tile, bias_s, rows, co0, cout, activation,
                                       [](int, int, float(&)[8]) {});
}

}  // namespace jax_fcm
