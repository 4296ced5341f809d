// One output pixel of a depthwise convolution on the CPU, shared by the
// standalone depthwise handler and the fused DW -> PW loop: fp32 sums over
// the window's in-image taps (padding contributes nothing).
#pragma once

#include <cstdint>

#include "float16_convert.h"

namespace jax_fcm {

// Adds, for every channel c, sum over taps of x[n, oy*S - pad_top + ky,
// ox*S - pad_left + kx, c] * taps[ky, kx, c] to m[c]. Shape: any struct with
// the fields h, w, c, kernel, stride, pad_top, pad_left (DwPwShape, DepthwiseShape).
template <typename Storage, class Shape>
void add_depthwise_pixel(const Shape& s, const Storage* x, const float* taps, int64_t n, int64_t oy, int64_t ox,
                         float* m) {
  using C = Conv<Storage>;
  const int64_t k = s.kernel;
  for (int64_t ky = 0; ky < k; ++ky) {
    const int64_t iy = oy * s.stride - s.pad_top + ky;
    if (iy < 0 || iy >= s.h) continue;
    for (int64_t kx = 0; kx < k; ++kx) {
      const int64_t ix = ox * s.stride - s.pad_left + kx;
      if (ix < 0 || ix >= s.w) continue;
      const Storage* in = x + ((n * s.h + iy) * s.w + ix) * s.c;
      const float* w = taps + (ky * k + kx) * s.c;
      for (int64_t c = 0; c < s.c; ++c) m[c] += C::to_float(in[c]) * w[c];
    }
  }
}

}  // namespace jax_fcm
