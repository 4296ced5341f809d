// Plain description of one standalone depthwise convolution call (k x k,
// NHWC, + bias, + activation). Shared by the FFI handlers (C++) and the CUDA
// launcher; holds no CUDA or FFI types.
#pragma once

#include <cstdint>

#include "dw_pw_params.h"

namespace jax_fcm {

struct DepthwiseShape {
  int64_t n = 0, h = 0, w = 0, c = 0;  // x, NHWC
  int64_t ho = 0, wo = 0;              // y, (N, Ho, Wo, C)
  int64_t kernel = 0, stride = 0;
  int64_t pad_top = 0, pad_left = 0;   // bottom/right padding is implied by ho/wo
};

struct DepthwisePointers {
  const void* x = nullptr;       // (N, H, W, C)
  const void* kernel = nullptr;  // (k, k, 1, C)
  const void* bias = nullptr;    // (C,)
  void* y = nullptr;             // (N, Ho, Wo, C)
};

// What the kernels (CUDA and CPU) handle: k in {3, 5, 7}, stride 1 or 2, any
// non-negative padding (out-of-image taps read zeros; there is no padding
// pass), at least one output pixel, and 32-bit offsets within one image and
// the taps (the CUDA kernel's index arithmetic).
inline bool depthwise_shape_supported(const DepthwiseShape& s) {
  constexpr int64_t kMax = 0x7fffffff;
  const bool k_ok = s.kernel == 3 || s.kernel == 5 || s.kernel == 7;
  return k_ok && (s.stride == 1 || s.stride == 2) && s.pad_top >= 0 && s.pad_left >= 0 && s.ho >= 1 && s.wo >= 1 &&
         s.h * s.w * s.c <= kMax && s.ho * s.wo * s.c <= kMax && s.kernel * s.kernel * s.c <= kMax;
}

// The 7x7 stride-1 kernel for large batches (depthwise_rows_kernel.cuh):
// tiles of 7 x 28 pixels with 32-channel chunks or 7 x 14 with 64, whichever
// pads the layer less (on a tie the wider tile, whose input window has less
// halo). Host-side rules here so that the CPU-only build (the planner CLI)
// reports the same choice the CUDA launcher makes.
constexpr int64_t depthwise_rows_padded_work(int64_t wo, int64_t c, int tile_w, int chunk) {
  return (wo + tile_w - 1) / tile_w * tile_w * ((c + chunk - 1) / chunk * chunk);
}

constexpr int depthwise_rows_chunk(int64_t wo, int64_t c) {
  return depthwise_rows_padded_work(wo, c, 14, 64) < depthwise_rows_padded_work(wo, c, 28, 32) ? 64 : 32;
}

constexpr int depthwise_rows_tile_w(int chunk) { return 7 * 128 / chunk; }

// Whether a layer runs on the 7x7 kernel rather than the general one: 7x7,
// stride 1, at least 14 wide, and at least two tiles per resident block (two
// blocks per SM) - where it measured faster on the H100 (docs/benchmarks.md).
inline bool use_depthwise_rows(const DepthwiseShape& d, int sm_count) {
  const int kc = depthwise_rows_chunk(d.wo, d.c), tw = depthwise_rows_tile_w(kc);
  const int64_t units = (d.ho + 6) / 7 * ((d.wo + tw - 1) / tw) * d.n * ((d.c + kc - 1) / kc);
  return d.kernel == 7 && d.stride == 1 && d.wo >= 14 && units >= 4 * int64_t(sm_count) && units <= 0x7fffffff;
}

}  // namespace jax_fcm
