// Plain description of one fused PW -> PW call (two 1x1 convolutions with the
// intermediate kept on chip): y = act2(act1(x . w1 + b1) . w2 + b2) over the
// M = N*H*W pixels of an NHWC tensor. Shared by the FFI handlers (C++) and
// the CUDA launcher; holds no CUDA or FFI types.
#pragma once

#include <cstdint>

#include "dw_pw_params.h"

namespace jax_fcm {

struct PwPwShape {
  int64_t m = 0;  // pixels (N * H * W)
  int64_t cin = 0, hidden = 0, cout = 0;
};

// ConvNeXt's block around its MLP (jax_fcm.convnext_block; all null for a
// plain PW -> PW call): each pixel row of x is layer-normalized over its Cin
// channels (ln_scale, ln_bias, eps) before the first GEMM, and
// y = residual + layer_scale * (h . w2 + b2), with Cout == Cin and no act2.
struct PwPwBlockEnds {
  const void* ln_scale = nullptr;     // (Cin,)
  const void* ln_bias = nullptr;      // (Cin,)
  const void* layer_scale = nullptr;  // (Cout,)
  const void* residual = nullptr;     // (N, H, W, Cout) == [M][Cout]
  float eps = 0.f;
  bool active() const { return residual != nullptr; }
};

// The int8 op (jax_fcm.pw_pw_int8; ElementType::kS8): x, the kernels and y
// int8, the biases int32, the kernels stored transposed (w1 (hidden, Cin),
// w2 (Cout, hidden): rows per output channel, as the int8 MMA takes B), and
// each stage's int32 sums requantized with these fp32 multipliers and clamps
// (cuda_src/requantize.h) instead of the activations.
struct PwPwQuant {
  const float* m1 = nullptr;  // (hidden,)
  const float* m2 = nullptr;  // (Cout,)
  int q1min = -128, q1max = 127, q2min = -128, q2max = 127;
};

struct PwPwPointers {
  const void* x = nullptr;   // (N, H, W, Cin) == [M][Cin]
  const void* w1 = nullptr;  // (1, 1, Cin, hidden) == [Cin][hidden]
  const void* b1 = nullptr;  // (hidden,)
  const void* w2 = nullptr;  // (1, 1, hidden, Cout) == [hidden][Cout]
  const void* b2 = nullptr;  // (Cout,)
  void* y = nullptr;         // (N, H, W, Cout) == [M][Cout]
  PwPwBlockEnds block;       // only the wgmma kernel takes these
  PwPwQuant quant;           // int8 only
};

// The widest input the CUDA kernel takes: a block keeps its 128 input rows
// and a double-buffered slice of w1 (all Cin rows) in shared memory, which
// must fit one block on an A100 (163 KB) as well as on an H100.
// (The same 384 bytes of input row for 16-bit types and int8.)
inline int64_t pw_pw_max_cin(ElementType type) {
  return type == ElementType::kF32 ? 96 : type == ElementType::kS8 ? 384 : 192;
}

// What the CUDA kernel indexes with 32-bit offsets: the weight matrices and
// one 128-pixel tile of x and y (tile bases are 64-bit).
inline bool pw_pw_shape_supported(ElementType type, const PwPwShape& s) {
  constexpr int64_t kMax = 0x7fffffff;
  return s.m >= 0 && s.cin >= 1 && s.hidden >= 1 && s.cout >= 1 && s.cin <= pw_pw_max_cin(type) &&
         s.hidden * s.cout <= kMax && s.cin * s.hidden <= kMax && 128 * s.cout <= kMax;
}

// Output channels per block: 32, 64, 96 or 128, the widest on a tie. Every
// column tile recomputes the first GEMM (Cin multiply-adds per intermediate
// value) before its second (tile_n per intermediate value, padding
// included), so a tile costs ~ Cin + tile_n.
inline int pw_pw_tile_n(int64_t cin, int64_t cout) {
  int best = 128;
  int64_t best_cost = -1;
  for (int tn : {128, 96, 64, 32}) {
    const int64_t tiles = (cout + tn - 1) / tn;
    const int64_t cost = tiles * (tn + cin);
    if (best_cost < 0 || cost < best_cost) best_cost = cost, best = tn;
  }
  return best;
}

// The Hopper wgmma kernel's output tile: pw_pw_tile_n's, but 192 for
// ConvNeXt's 192-channel blocks (with its block ends): one column tile of
// 128-row blocks instead of two of 192 rows, each recomputing the first GEMM.
inline int pw_pw_wgmma_tile_n(int64_t cin, int64_t cout, bool block) {
  return block && cout > 128 && cout <= 192 ? 192 : pw_pw_tile_n(cin, cout);
}

// Pixel rows per block of the wgmma kernel for an output tile (its
// warpgroups of 64 rows: three, or two for the 192-wide tile).
constexpr int pw_pw_wgmma_tile_m(int tile_n) { return tile_n > 128 ? 128 : 192; }

}  // namespace jax_fcm
