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

}  // namespace jax_fcm
