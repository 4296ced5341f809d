// One output pixel of a depthwise convolution on the CPU, shared by the
// standalone depthwise handler and the fused DW -> PW loop: fp32 sums over
// the window's in-image taps (padding contributes nothing); and a whole
// image through it (the standalone handler, pw_dw's).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "activations.h"
#include "float16_convert.h"

namespace jax_fcm {

// An input value in the accumulator's type: fp32 for the float storage
// types, int32 for int8 (the quantized handler's exact integer sums).
template <typename Storage>
float widen(Storage v) {
  return Conv<Storage>::to_float(v);
}
inline int32_t widen(int8_t v) { return v; }

// Adds, for every channel c, sum over taps of x[n, oy*S - pad_top + ky,
// ox*S - pad_left + kx, c] * taps[ky, kx, c] to m[c]: fp32 taps and sums, or
// int8 taps and int32 sums. Shape: any struct with the fields h, w, c, kernel,
// stride, pad_top, pad_left (DwPwShape, DepthwiseShape).
template <typename Storage, class Shape, typename Tap, typename Acc>
void add_depthwise_pixel(const Shape& s, const Storage* x, const Tap* taps, int64_t n, int64_t oy, int64_t ox,
                         Acc* m) {
  const int64_t k = s.kernel;
  for (int64_t ky = 0; ky < k; ++ky) {
    const int64_t iy = oy * s.stride - s.pad_top + ky;
    if (iy < 0 || iy >= s.h) continue;
    for (int64_t kx = 0; kx < k; ++kx) {
      const int64_t ix = ox * s.stride - s.pad_left + kx;
      if (ix < 0 || ix >= s.w) continue;
      const Storage* in = x + ((n * s.h + iy) * s.w + ix) * s.c;
      const Tap* w = taps + (ky * k + kx) * s.c;
      for (int64_t c = 0; c < s.c; ++c) m[c] += widen(in[c]) * w[c];
    }
  }
}

// Every output pixel of image n of x: y_image[oy][ox][c] = act(bias[c] + the
// window sum), one rounding to Storage (the standalone depthwise handler's
// output, pw_dw's).
template <typename Storage, class Shape>
void depthwise_image_cpu(const Shape& s, const Storage* x, const float* taps, const float* bias, int activation,
                         int64_t n, Storage* y_image) {
  using Cv = Conv<Storage>;
  std::vector<float> m(s.c);
  for (int64_t oy = 0; oy < s.ho; ++oy)
    for (int64_t ox = 0; ox < s.wo; ++ox) {
      std::copy(bias, bias + s.c, m.begin());
      add_depthwise_pixel(s, x, taps, n, oy, ox, m.data());
      Storage* dst = y_image + (oy * s.wo + ox) * s.c;
      for (int64_t c = 0; c < s.c; ++c) dst[c] = Cv::from_float(apply_activation(m[c], activation));
    }
}

}  // namespace jax_fcm
