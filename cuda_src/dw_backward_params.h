// Plain description of one depthwise backward call (the input and weight
// gradients of a k x k depthwise convolution, NHWC). Shared by the FFI
// handlers (C++) and the CUDA launcher; holds no CUDA or FFI types.
#pragma once

#include <cstdint>

#include "dw_pw_params.h"

namespace jax_fcm {

struct DwBackwardShape {
  int64_t n = 0, h = 0, w = 0, c = 0;  // x and dx, NHWC
  int64_t ho = 0, wo = 0;              // the depthwise output (and its gradient dy)
  int64_t kernel = 0, stride = 0;
  int64_t pad_top = 0, pad_left = 0;
  int64_t pad_bottom = 0, pad_right = 0;  // implied by ho/wo; kept for the range check
  int64_t groups = 1;                  // weight-gradient partial sums per image (see below)
};

// dw_partials is float32 (N, groups, k*k + 1, C): per image and group, the sum
// over that group's output pixels of x-window * dy for every tap (rows 0 ..
// k*k-1) and of dy (row k*k, the bias gradient). The caller sums over N and
// groups; how pixels are divided among groups is the implementation's choice
// (deterministic for a given call).
struct DwBackwardPointers {
  const void* x = nullptr;          // (N, H, W, C)
  const void* dy = nullptr;         // (N, Ho, Wo, C): gradient of the pre-activation depthwise output
  const void* kernel = nullptr;     // (k, k, 1, C)
  void* dx = nullptr;               // (N, H, W, C)
  float* dw_partials = nullptr;     // (N, groups, k*k + 1, C)
};

// What the kernels (CUDA and CPU) handle: k in {3, 5, 7}, stride 1 or 2,
// padding at most k - 1 per side (every output window touches the image, and
// a tile's own outputs lie in its dy halo), at least one output pixel, and
// 32-bit offsets within one image (the CUDA kernel's index arithmetic).
inline bool dw_backward_shape_supported(const DwBackwardShape& s) {
  constexpr int64_t kMax = 0x7fffffff;
  const bool k_ok = s.kernel == 3 || s.kernel == 5 || s.kernel == 7;
  const bool pads_ok = s.pad_top >= 0 && s.pad_left >= 0 && s.pad_top < s.kernel && s.pad_left < s.kernel &&
                       s.pad_bottom >= 0 && s.pad_right >= 0 && s.pad_bottom < s.kernel && s.pad_right < s.kernel;
  return k_ok && (s.stride == 1 || s.stride == 2) && pads_ok && s.ho >= 1 && s.wo >= 1 && s.groups >= 1 &&
         s.h * s.w * s.c <= kMax && s.ho * s.wo * s.c <= kMax && s.groups * (s.kernel * s.kernel + 1) * s.c <= kMax;
}

}  // namespace jax_fcm
