// Plain description of one dense k x k convolution call (jax_fcm.conv2d):
// NHWC input, HWIO weights, + bias, then the activation. Shared by the FFI
// handlers (C++) and the CUDA launcher; holds no CUDA or FFI types.
#pragma once

#include <cstdint>

#include "pointwise_params.h"

namespace jax_fcm {

struct Conv2dShape {
  int64_t n = 0, h = 0, w = 0, cin = 0;  // input
  int64_t ho = 0, wo = 0, cout = 0;      // output
  int64_t kh = 0, kw = 0, stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_left = 0;  // bottom/right padding only shows in ho, wo

  // The implicit GEMM: output pixels x (kh*kw*Cin, in window order) -> Cout.
  PointwiseShape gemm() const {
    PointwiseShape g;
    g.m = n * ho * wo, g.cin = kh * kw * cin, g.cout = cout;
    return g;
  }
};

struct Conv2dPointers {
  const void* x = nullptr;       // (N, H, W, Cin)
  const void* kernel = nullptr;  // (kh, kw, Cin, Cout) == [kh*kw*Cin][Cout]
  const void* bias = nullptr;    // (Cout,)
  void* y = nullptr;             // (N, Ho, Wo, Cout)
};

// What the CUDA kernel indexes: 32-bit element offsets across the whole input
// (a window's offset from its tile's pixels), and the GEMM's own limits.
inline bool conv2d_shape_supported(const Conv2dShape& s) {
  constexpr int64_t kMax = 0x7fffffff;
  const bool sizes = s.n >= 0 && s.h >= 1 && s.w >= 1 && s.cin >= 1 && s.cout >= 1 && s.kh >= 1 && s.kw >= 1 &&
                     s.stride_h >= 1 && s.stride_w >= 1 && s.ho >= 0 && s.wo >= 0 && s.pad_top >= 0 &&
                     s.pad_left >= 0 && s.pad_top < kMax && s.pad_left < kMax && s.kh < kMax && s.kw < kMax;
  // Every window offset, padding included, every output coordinate times the
  // stride, and the output pixel index (up to a tile past the last).
  return sizes && (s.n * s.h + s.pad_top + s.kh) * (s.w + s.pad_left + s.kw) * s.cin <= kMax &&
         s.ho * s.stride_h <= kMax && s.wo * s.stride_w <= kMax && s.n * s.ho * s.wo <= kMax - 128 &&
         pointwise_shape_supported(s.gemm());
}

// The launch layout: the pointwise kernel's plan for the implicit GEMM (the
// mma.sync kernel; the wgmma one loads A by TMA boxes, not window gathers).
inline PointwisePlan plan_conv2d(ElementType type, const Conv2dShape& s, int sm_count, bool clusters) {
  return plan_pointwise(type, s.gemm(), sm_count, clusters, false);
}

}  // namespace jax_fcm
