// Plain description of one standalone pointwise (1x1) convolution call: the
// GEMM y[M][Cout] = x[M][Cin] . w[Cin][Cout] + bias, then the activation,
// where M = N*H*W pixels of an NHWC tensor. Shared by the FFI handlers (C++)
// and the CUDA launcher; holds no CUDA or FFI types.
#pragma once

#include <cstdint>
#include <limits>

#include "dw_pw_params.h"

namespace jax_fcm {

struct PointwiseShape {
  int64_t m = 0;     // pixels (N * H * W)
  int64_t cin = 0, cout = 0;
};

struct PointwisePointers {
  const void* x = nullptr;       // (N, H, W, Cin) == [M][Cin]
  const void* kernel = nullptr;  // (1, 1, Cin, Cout) == [Cin][Cout]
  const void* bias = nullptr;    // (Cout,)
  void* y = nullptr;             // (N, H, W, Cout) == [M][Cout]
};

// What the CUDA kernel indexes: 32-bit offsets inside the weight matrix and
// inside one 128-pixel tile of x and y (tile bases are 64-bit).
inline bool pointwise_shape_supported(const PointwiseShape& s) {
  constexpr int64_t kMax = 0x7fffffff;
  return s.m >= 0 && s.cin >= 1 && s.cout >= 1 && s.cin * s.cout <= kMax && 128 * s.cin <= kMax &&
         128 * s.cout <= kMax;
}

// How one CUDA launch is laid out (plan_pointwise).
struct PointwisePlan {
  int tile_m = 128;        // pixel rows per block: 128 or 64
  int tile_n = 64;         // output channels per block: 32, 64 or 128
  int channel_chunk = 32;  // input channels per step: 32, or 64 (16-bit types, tile_n >= 64)
  int splits = 1;          // blocks per cluster splitting the input channels: 1, 2, 4 or 8
  bool wgmma = false;      // Hopper warpgroup-MMA kernel (pointwise_wgmma_kernel.cuh): 128 x tile_n blocks,
                           // 64-channel steps, no splits
  int blocks_per_sm = 1;   // wgmma kernel: resident blocks per SM it is built for (1: the deeper ring; 2)
};

inline int64_t pointwise_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The launch layout for a shape on a device with sm_count SMs (clusters:
// whether it has thread-block clusters; wgmma: whether the warpgroup-MMA
// kernel was built for it and runs there). Host logic only, so the Python
// module can show it on any build (jax_fcm.pointwise_plan).
inline PointwisePlan plan_pointwise(ElementType type, const PointwiseShape& s, int sm_count, bool clusters,
                                    bool wgmma = false) {
  constexpr int kMaxSplits = 8;  // the portable cluster size
  PointwisePlan plan;
  // Deep 16-bit layers with enough pixels for half a wave of 128-row blocks
  // take the wgmma kernel. H100, bf16, N = 64 shapes of the suite, measured
  // on its first (cp.async) version: 1.1-1.6x the mma.sync kernel from
  // Cin = 160 up (960 -> 320 on 7x7: 12.9 vs 20.9 us), equal at Cin = 96-384
  // with Cout = 96-576, slower with Cout = 24. The channel tile that pads
  // fewer columns, 128 on a tie (960 -> 320: 64-column tiles 12.9 us, 128
  // 15.9; 576 -> 96: 128 11.2 us, 64 16.3).
  if (wgmma && type != ElementType::kF32 && s.cin >= 128 && s.cin % 8 == 0 && s.cout % 8 == 0 && s.cout >= 64) {
    const int64_t m_tiles = pointwise_ceil_div(s.m, 128);
    const int tn = pointwise_ceil_div(s.cout, 64) * 64 < pointwise_ceil_div(s.cout, 128) * 128 ? 64 : 128;
    const int64_t blocks = m_tiles * pointwise_ceil_div(s.cout, tn);
    if (2 * blocks >= sm_count) {
      plan.wgmma = true, plan.tile_m = 128, plan.tile_n = tn, plan.channel_chunk = 64;
      plan.blocks_per_sm = blocks > sm_count ? 2 : 1;  // more blocks than one wave: two per SM
      return plan;
    }
  }
  // Channel tile: fewest padded columns, plus 48 columns' worth per tile for
  // what every tile repeats (reading its input rows, its epilogue).
  int64_t best_cost = std::numeric_limits<int64_t>::max();
  for (int tn : {128, 64, 32}) {
    const int64_t cost = pointwise_ceil_div(s.cout, tn) * (tn + 48);
    if (cost < best_cost) best_cost = cost, plan.tile_n = tn;
  }
  // 128-row blocks (half the weight traffic, bigger warp tiles) where they
  // alone make a wave of blocks; otherwise 64 rows, twice the blocks (H100:
  // 128-row tiles made N = 1 layers up to 1.7x slower through the channel
  // splits they then need).
  const int64_t co_tiles = pointwise_ceil_div(s.cout, plan.tile_n);
  plan.tile_m = pointwise_ceil_div(s.m, 128) * co_tiles >= sm_count ? 128 : 64;
  const int64_t m_tiles = pointwise_ceil_div(s.m, plan.tile_m);
  // Too few pixels to fill the GPU even with the widest channel split:
  // narrower channel tiles for more blocks.
  while (plan.tile_n > 32 && m_tiles * pointwise_ceil_div(s.cout, plan.tile_n) * kMaxSplits < sm_count)
    plan.tile_n /= 2;
  const int64_t blocks = m_tiles * pointwise_ceil_div(s.cout, plan.tile_n);
  // 64-channel chunks (16-bit types) halve the steps of deep layers, but
  // also the chunks a channel split can share out: only without splits.
  const bool wide = type != ElementType::kF32 && plan.tile_n >= 64 && s.cin >= 128 && blocks >= sm_count;
  plan.channel_chunk = wide ? 64 : 32;
  const int64_t chunks = pointwise_ceil_div(s.cin, plan.channel_chunk);
  if (clusters)
    while (plan.splits < kMaxSplits && 2 * plan.splits <= chunks && blocks * plan.splits < sm_count) plan.splits *= 2;
  return plan;
}

}  // namespace jax_fcm
