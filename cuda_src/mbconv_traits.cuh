// Geometry and shared-memory plan of the fused MBConv kernel. Its depthwise
// and projection stages are the DW->PW kernel's (dw_pw_traits.cuh, 8x8 pixel
// tiles, 32-channel chunks of the expanded tensor); what it adds is the
// expansion: x's input window with all Cin channels, resident for the whole
// block, and per chunk the expansion's columns.
#pragma once

#include "dw_pw_traits.cuh"

namespace jax_fcm {
namespace mbconv_detail {

template <typename T, int Math, int K, int S, int TN>
using Traits = dw_pw_detail::Traits<T, Math, K, S, TN, /*TH=*/8, /*KC=*/32>;

// The expansion GEMM of one chunk, [window pixels x Cin] x [Cin x KC], seen
// through the pointwise stage's accumulator: one warp owns 16 window pixels
// and all KC columns, and calls accumulate once per 16 input channels.
template <class Tr>
struct ExpandView {
  using T = typename Tr::T;
  static constexpr bool kTensorCores = Tr::kTensorCores;
  static constexpr int KC = 16;              // input channels per accumulate call
  static constexpr int kLdA = 0;             // x rows: a run-time stride (Cin)
  static constexpr int kLdB = Tr::KC + 8;    // expansion columns, padded as the pointwise rows
  static constexpr int kWarpN = Tr::KC;      // every column of the chunk
  static constexpr int kFragsN = kWarpN / 16;
  static constexpr int kScratchLd = Tr::kScratchLd;
  static constexpr int kWindowPixels = Tr::kInH * Tr::kInW;
  static constexpr int kMTiles = (kWindowPixels + 15) / 16;  // 16-pixel GEMM rows of the window
};

// x's channels in shared memory: Cin, then a channel of ones (zeros outside
// the image) whose expansion row is the bias, so the GEMM adds the bias and
// leaves exact zeros where the depthwise conv pads; padded to whole
// 16-channel GEMM steps. x's row stride: 16 more bytes, so ldmatrix rows of
// 16 window pixels (an odd number of 16-byte units apart) hit distinct banks.
__host__ __device__ constexpr int padded_cin(int cin) { return (cin + 1 + 15) / 16 * 16; }
template <class Tr>
__host__ __device__ constexpr int x_row_stride(int cin) {
  return padded_cin(cin) + Tr::kVec;
}

// [x window | expanded chunk | 2 x taps | 2 x expansion columns | 2 x
// projection rows | A tile | epilogue scratch]; the weight regions are
// double-buffered (the next chunk's copies fly during this chunk's compute).
// With channel splits, the fp32 partial tile the cluster reduces overlays the
// x window and the expanded chunk (dead after the last depthwise step) when
// it fits there, else it comes last.
struct SmemPlan {
  int off_mid, off_taps, off_expand, off_project, off_a, off_scratch, off_partial, bytes;
};

// Without the projection (pw_dw) its rows take no space.
template <class Tr>
__host__ __device__ constexpr SmemPlan make_smem_plan(int cin, int splits, bool project = true) {
  using Ex = ExpandView<Tr>;
  constexpr int sz = int(sizeof(typename Tr::T));
  const int x_bytes = Ex::kMTiles * 16 * x_row_stride<Tr>(cin) * sz;
  const int expand_bytes = padded_cin(cin) * Ex::kLdB * sz;  // the bias is row Cin
  SmemPlan p{};
  p.off_mid = x_bytes;
  p.off_taps = p.off_mid + Tr::kInStageBytes;
  p.off_expand = p.off_taps + 2 * Tr::kTapsStageBytes;
  p.off_project = p.off_expand + 2 * expand_bytes;
  p.off_a = p.off_project + (project ? 2 * Tr::kWStageBytes : 0);
  p.off_scratch = p.off_a + Tr::kASlotBytes;
  p.bytes = p.off_scratch + Tr::kScratchBytes;
  p.off_partial = 0;
  if (splits > 1 && Tr::kPartialBytes > p.off_taps) {
    p.off_partial = p.bytes;
    p.bytes += Tr::kPartialBytes;
  }
  return p;
}

// Resident blocks per SM the registers are budgeted for (__launch_bounds__):
// the kernel is latency-bound (three barriers per chunk), so more warps per
// SM pay where the accumulators and taps leave room (80 registers without
// spills for 16-bit types; float32 spilled 32-112 bytes there).
template <class Tr>
constexpr int min_blocks() {
  return sizeof(typename Tr::T) == 2 && Tr::TN <= 64 && Tr::K < 7 ? 3 : 2;
}

// Per launch: the channel split and the 16-byte copy paths allowed (channel
// counts and alignment).
struct MbconvRun {
  int splits;        // blocks per cluster, each expanding a slice of the Cmid chunks (1: no cluster; pw_dw: 1)
  bool vec_x;        // x rows (Cin)
  bool vec_mid;      // expansion columns, depthwise taps and biases (Cmid)
  bool vec_project;  // projection rows and bias (Cout)
  bool vec_y;        // 8-channel output stores (and residual loads); pw_dw: 16-byte stores of Cmid rows
};

}  // namespace mbconv_detail
}  // namespace jax_fcm
